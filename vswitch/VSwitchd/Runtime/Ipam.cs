using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace VSwitchd.Runtime;

/// <summary>
/// The address plan of one IPv4 subnet: which host addresses attachments may get. The network
/// address, the broadcast address (for prefixes up to /30) and the gateway are reserved and never
/// handed out. Allocation takes the lowest free address, so a released address is the next one
/// given (predictable, like Docker's default IPAM; CNI's host-local instead goes round-robin).
/// </summary>
public readonly record struct Ipv4Pool(uint Network, int PrefixLength, uint Gateway)
{
    /// <summary>
    /// The pool of a network's <c>subnet</c> and optional <c>gateway</c> (default: the first host
    /// address, like Docker and CNI's host-local). Null when the network has no subnet.
    /// </summary>
    public static Ipv4Pool? Of(string? subnet, string? gateway)
    {
        if (subnet is null) return null;
        if (!IPNetwork.TryParse(subnet, out var net) || net.BaseAddress.AddressFamily != AddressFamily.InterNetwork)
            throw new ArgumentException($"subnet '{subnet}' is not an IPv4 subnet");
        uint network = ToUInt(net.BaseAddress);
        int len = net.PrefixLength;
        uint gw;
        if (gateway is not null)
        {
            if (!IPAddress.TryParse(gateway, out var g) || g.AddressFamily != AddressFamily.InterNetwork)
                throw new ArgumentException($"gateway '{gateway}' is not an IPv4 address");
            gw = ToUInt(g);
        }
        else gw = len >= 31 ? network : network + 1;
        return new Ipv4Pool(network, len, gw);
    }

    public uint Mask => PrefixLength == 0 ? 0 : uint.MaxValue << (32 - PrefixLength);
    public uint Broadcast => Network | ~Mask;
    /// <summary>/31 and /32 have no network or broadcast address (RFC 3021).</summary>
    private bool HasNetworkAndBroadcast => PrefixLength <= 30;
    public uint FirstHost => HasNetworkAndBroadcast ? Network + 1 : Network;
    public uint LastHost => HasNetworkAndBroadcast ? Broadcast - 1 : Broadcast;
    public string Subnet => $"{ToAddress(Network)}/{PrefixLength}";
    public string GatewayAddress => ToAddress(Gateway).ToString();

    public bool Contains(uint a) => (a & Mask) == Network;

    /// <summary>Why this address may not be handed out, or null when it may.</summary>
    public string? WhyNot(uint a)
    {
        if (!Contains(a)) return $"{ToAddress(a)} is outside the subnet {Subnet}";
        if (a == Gateway) return $"{ToAddress(a)} is the gateway of {Subnet}";
        if (HasNetworkAndBroadcast && a == Network) return $"{ToAddress(a)} is the network address of {Subnet}";
        if (HasNetworkAndBroadcast && a == Broadcast) return $"{ToAddress(a)} is the broadcast address of {Subnet}";
        return null;
    }

    /// <summary>The lowest host address that is neither reserved nor in <paramref name="taken"/>; null when the subnet is full.</summary>
    public uint? NextFree(IReadOnlySet<uint> taken)
    {
        for (ulong a = FirstHost; a <= LastHost; a++)
        {
            uint u = (uint)a;
            if (u != Gateway && !taken.Contains(u)) return u;
        }
        return null;
    }

    /// <summary>Host addresses that can be handed out (excluding the reserved ones).</summary>
    public long Capacity => (long)LastHost - FirstHost + 1 - (Contains(Gateway) && Gateway >= FirstHost && Gateway <= LastHost ? 1 : 0);

    public string Cidr(uint a) => $"{ToAddress(a)}/{PrefixLength}";

    public static uint ToUInt(IPAddress a)
    {
        Span<byte> b = stackalloc byte[4];
        a.TryWriteBytes(b, out _);
        return BinaryPrimitives.ReadUInt32BigEndian(b);
    }

    public static IPAddress ToAddress(uint a)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, a);
        return new IPAddress(b);
    }

    /// <summary>Parses "10.1.0.5" or "10.1.0.5/24" (the prefix, when given, must be the subnet's).</summary>
    public uint ParseRequested(string text)
    {
        string addr = text;
        int slash = text.IndexOf('/');
        if (slash >= 0)
        {
            addr = text[..slash];
            if (!int.TryParse(text.AsSpan(slash + 1), out int len) || len != PrefixLength)
                throw new ArgumentException($"ip '{text}': the prefix must be the subnet's (/{PrefixLength}), or left out");
        }
        if (!IPAddress.TryParse(addr, out var a) || a.AddressFamily != AddressFamily.InterNetwork)
            throw new ArgumentException($"ip '{text}' is not an IPv4 address");
        return ToUInt(a);
    }
}

/// <summary>
/// The address plan of a dual-stack network's IPv6 subnet: attachments get the lowest free address
/// after the subnet-router anycast address (::0, RFC 4291 §2.6.1) that is not the gateway, as
/// IPv4 attachments do. A /64 has room for more than any switch holds, so the walk is bounded by
/// the addresses in use, not by the subnet.
/// </summary>
public readonly record struct Ipv6Pool(UInt128 Network, int PrefixLength, UInt128 Gateway)
{
    public static Ipv6Pool? Of(string? subnet, string? gateway)
    {
        if (subnet is null) return null;
        if (!IPNetwork.TryParse(subnet, out var net) || net.BaseAddress.AddressFamily != AddressFamily.InterNetworkV6)
            throw new ArgumentException($"subnet6 '{subnet}' is not an IPv6 subnet");
        UInt128 network = BinaryPrimitives.ReadUInt128BigEndian(net.BaseAddress.GetAddressBytes());
        UInt128 gw = network + 1;
        if (gateway is not null)
        {
            if (!IPAddress.TryParse(gateway, out var g) || g.AddressFamily != AddressFamily.InterNetworkV6)
                throw new ArgumentException($"gateway6 '{gateway}' is not an IPv6 address");
            gw = BinaryPrimitives.ReadUInt128BigEndian(g.GetAddressBytes());
        }
        return new Ipv6Pool(network, net.PrefixLength, gw);
    }

    public UInt128 Last => Network | (PrefixLength == 128 ? UInt128.Zero : UInt128.MaxValue >> PrefixLength);
    public string Subnet => $"{ToAddress(Network)}/{PrefixLength}";
    public string GatewayAddress => ToAddress(Gateway).ToString();

    /// <summary>The lowest address from ::1 on that is neither the gateway nor taken; null when none is left.</summary>
    public UInt128? NextFree(IReadOnlySet<UInt128> taken)
    {
        for (UInt128 a = Network + 1; a <= Last && a != UInt128.Zero; a++)
            if (a != Gateway && !taken.Contains(a)) return a;
        return null;
    }

    public string Cidr(UInt128 a) => $"{ToAddress(a)}/{PrefixLength}";

    public static IPAddress ToAddress(UInt128 a)
    {
        Span<byte> b = stackalloc byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(b, a);
        return new IPAddress(b);
    }
}
