using System.Runtime.CompilerServices;

namespace VSwitch.Core.Topology;

/// <summary>
/// What a port with port security on may send as, like OVN's <c>port_security</c> column: its MAC,
/// and its IPv4 and IPv6 addresses. An empty IPv4 list leaves IPv4 and ARP sender addresses
/// unchecked (OVN's MAC-only port security); IPv6 always allows the link-local address the kernel
/// derives from the MAC (EUI-64), so a port with only IPv4 addresses still does neighbour discovery.
/// Immutable: changing it publishes a new topology.
/// </summary>
public sealed class PortSecurity
{
    private readonly uint[] _ipv4;
    private readonly UInt128[] _ipv6;

    public PortSecurity(ulong mac, IEnumerable<uint>? ipv4 = null, IEnumerable<UInt128>? ipv6 = null)
    {
        if (mac == 0 || Wire.MacAddress.IsMulticast(mac)) throw new ArgumentException($"port security needs a unicast MAC, not {Wire.MacAddress.Format(mac)}", nameof(mac));
        Mac = mac;
        _ipv4 = ipv4?.Distinct().ToArray() ?? [];
        _ipv6 = [.. (ipv6 ?? []).Append(LinkLocal(mac)).Distinct()];
    }

    public ulong Mac { get; }
    public IReadOnlyList<uint> IPv4 => _ipv4;
    /// <summary>The configured IPv6 addresses and the EUI-64 link-local one.</summary>
    public IReadOnlyList<UInt128> IPv6 => _ipv6;

    /// <summary>Whether IPv4 (and ARP) source addresses are checked: the port has IPv4 addresses to check against.</summary>
    public bool ChecksIPv4 => _ipv4.Length > 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool AllowsIPv4(uint address)
    {
        var a = _ipv4;
        if (a.Length == 0) return true;
        for (int i = 0; i < a.Length; i++) if (a[i] == address) return true;
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool AllowsIPv6(UInt128 address)
    {
        var a = _ipv6;
        for (int i = 0; i < a.Length; i++) if (a[i] == address) return true;
        return false;
    }

    /// <summary>fe80::/64 with the modified EUI-64 interface id of <paramref name="mac"/> (RFC 4291 appendix A): U/L bit flipped, ff:fe in the middle.</summary>
    public static UInt128 LinkLocal(ulong mac)
    {
        ulong iid = ((mac >> 24) << 40 | 0xFFFEUL << 24 | (mac & 0xFFFFFF)) ^ (0x02UL << 56);
        return new UInt128(0xFE80_0000_0000_0000UL, iid);
    }
}
