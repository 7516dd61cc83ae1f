using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Tables.Rules;

/// <summary>
/// A wildcarded match over the flow key: a value and a mask of the same shape, so matching is
/// <c>(key &amp; mask) == value</c> word by word over the key's 12 words, whatever fields it names.
/// </summary>
public sealed class FlowMatch
{
    public FlowKey Value;
    public FlowKey Mask;

    public static FlowMatch Any() => new();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Matches(in FlowKey key)
    {
        var k = MemoryMarshal.Cast<byte, ulong>(MemoryMarshal.AsBytes(new ReadOnlySpan<FlowKey>(in key)));
        var m = MemoryMarshal.Cast<byte, ulong>(MemoryMarshal.AsBytes(new ReadOnlySpan<FlowKey>(in Mask)));
        var v = MemoryMarshal.Cast<byte, ulong>(MemoryMarshal.AsBytes(new ReadOnlySpan<FlowKey>(in Value)));
        for (int i = 0; i < k.Length; i++)
            if ((k[i] & m[i]) != v[i]) return false;
        return true;
    }

    /// <summary>Same fields and values: what <c>rules del</c> with --strict compares.</summary>
    public bool SameAs(FlowMatch other) => Value.Equals(other.Value) && Mask.Equals(other.Mask);

    /// <summary>True when every packet this match accepts is also accepted by <paramref name="wider"/> (non-strict delete).</summary>
    public bool IsCoveredBy(FlowMatch wider)
    {
        var a = MemoryMarshal.Cast<byte, ulong>(MemoryMarshal.AsBytes(new ReadOnlySpan<FlowKey>(in Mask)));
        var av = MemoryMarshal.Cast<byte, ulong>(MemoryMarshal.AsBytes(new ReadOnlySpan<FlowKey>(in Value)));
        var b = MemoryMarshal.Cast<byte, ulong>(MemoryMarshal.AsBytes(new ReadOnlySpan<FlowKey>(in wider.Mask)));
        var bv = MemoryMarshal.Cast<byte, ulong>(MemoryMarshal.AsBytes(new ReadOnlySpan<FlowKey>(in wider.Value)));
        for (int i = 0; i < a.Length; i++)
        {
            if ((a[i] & b[i]) != b[i]) return false; // wider constrains a bit this one leaves free
            if ((av[i] & b[i]) != bv[i]) return false;
        }
        return true;
    }

    /// <summary>The match in ovs-ofctl syntax (only the fields it constrains).</summary>
    public string Format(Func<int, string?>? portName = null)
    {
        var sb = new StringBuilder();
        ref readonly var v = ref Value;
        ref readonly var m = ref Mask;
        void Add(string s) { if (sb.Length > 0) sb.Append(','); sb.Append(s); }
        static string Hex(ulong x) => "0x" + x.ToString("x", CultureInfo.InvariantCulture);

        bool dlType = m.DlType == 0xFFFF;
        bool proto = m.NwProto == 0xFF;
        string? shorthand = null;
        if (dlType)
        {
            shorthand = v.DlType switch
            {
                EtherTypes.IPv4 when proto => v.NwProto switch { IpProtocols.Tcp => "tcp", IpProtocols.Udp => "udp", IpProtocols.Icmp => "icmp", _ => null },
                EtherTypes.IPv6 when proto => v.NwProto switch { IpProtocols.Tcp => "tcp6", IpProtocols.Udp => "udp6", IpProtocols.IcmpV6 => "icmp6", _ => null },
                _ => null,
            };
            if (shorthand is not null) Add(shorthand);
            else Add(v.DlType switch { EtherTypes.IPv4 => "ip", EtherTypes.IPv6 => "ipv6", EtherTypes.Arp => "arp", _ => "dl_type=" + "0x" + v.DlType.ToString("x4", CultureInfo.InvariantCulture) });
        }
        if (m.TunId != 0) Add("tun_id=" + Hex(v.TunId));
        if (m.TunRemote != 0) Add("tun_src=" + VtepRemote.Format(v.TunRemote));
        if (m.InPort != 0) Add("in_port=" + (portName?.Invoke(v.InPort) ?? v.InPort.ToString(CultureInfo.InvariantCulture)));
        if (m.DlSrc != 0) Add("dl_src=" + MacAddress.Format(v.DlSrc) + (m.DlSrc == MacAddress.Mask ? "" : "/" + MacAddress.Format(m.DlSrc)));
        if (m.DlDst != 0) Add("dl_dst=" + MacAddress.Format(v.DlDst) + (m.DlDst == MacAddress.Mask ? "" : "/" + MacAddress.Format(m.DlDst)));
        if (m.VlanPcp == FlowKey.VlanPresentBit && v.VlanPcp == 0) Add("dl_vlan=none");
        else if (m.VlanId != 0) Add("dl_vlan=" + v.VlanId);
        if ((m.VlanPcp & 7) != 0) Add("dl_vlan_pcp=" + (v.VlanPcp & 7));
        bool arp = dlType && v.DlType == EtherTypes.Arp;
        bool v6 = dlType && v.DlType == EtherTypes.IPv6;
        if (m.NwSrc != 0) Add((arp ? "arp_spa=" : v6 ? "ipv6_src=" : "nw_src=") + Prefix(v.NwSrc, m.NwSrc, v6));
        if (m.NwDst != 0) Add((arp ? "arp_tpa=" : v6 ? "ipv6_dst=" : "nw_dst=") + Prefix(v.NwDst, m.NwDst, v6));
        if (proto && shorthand is null) Add((arp ? "arp_op=" : "nw_proto=") + v.NwProto);
        if (m.NwTos != 0) Add("nw_tos=" + v.NwTos);
        if (m.NwTtl != 0) Add("nw_ttl=" + v.NwTtl);
        if (m.ArpSha != 0) Add("arp_sha=" + MacAddress.Format(v.ArpSha));
        if (m.ArpTha != 0) Add("arp_tha=" + MacAddress.Format(v.ArpTha));
        bool icmp = proto && v.NwProto is IpProtocols.Icmp or IpProtocols.IcmpV6;
        if (m.TpSrc != 0) Add((icmp ? "icmp_type=" : "tp_src=") + v.TpSrc);
        if (m.TpDst != 0) Add((icmp ? "icmp_code=" : "tp_dst=") + v.TpDst);
        if (m.TcpFlags != 0) Add("tcp_flags=" + Hex(v.TcpFlags) + "/" + Hex(m.TcpFlags));
        return sb.ToString();
    }

    private static string Prefix(UInt128 value, UInt128 mask, bool v6)
    {
        int bits = v6 ? (int)UInt128.PopCount(mask) : (int)UInt128.PopCount(mask & uint.MaxValue);
        string addr = v6 ? AddressFormat.IPv6(value) : AddressFormat.IPv4((uint)value);
        return bits == (v6 ? 128 : 32) ? addr : addr + "/" + bits;
    }
}
