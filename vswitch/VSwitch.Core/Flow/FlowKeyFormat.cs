using System.Globalization;
using System.Net;
using System.Text;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Flow;

/// <summary>
/// Prints a flow key the way ovs-ofctl prints a match, for traces and the management API
/// (not the hot path: it allocates).
/// </summary>
public static class FlowKeyFormat
{
    /// <summary>The key in ovs-ofctl syntax; <paramref name="portName"/> names in_port (a number when it gives null).</summary>
    public static string Format(in FlowKey key, Func<int, string?>? portName = null)
    {
        var sb = new StringBuilder(160);
        if (key.TunId != 0) Append(sb, "tun_id", "0x" + key.TunId.ToString("x", CultureInfo.InvariantCulture));
        if (key.TunRemote != 0) Append(sb, "tun_src", VtepRemote.Format(key.TunRemote));
        Append(sb, "in_port", portName?.Invoke(key.InPort) ?? Num(key.InPort));
        if (key.CtState != 0) Append(sb, "ct_state", CtStates.Describe((CtState)key.CtState));
        Append(sb, "dl_src", MacAddress.Format(key.DlSrc));
        Append(sb, "dl_dst", MacAddress.Format(key.DlDst));
        if (key.HasVlan)
        {
            Append(sb, "dl_vlan", Num(key.VlanId));
            Append(sb, "dl_vlan_pcp", Num(key.VlanPcp & 7));
            if ((key.VlanQinQ & FlowKey.STagBit) != 0) Append(sb, "vlan_tpid", "0x88a8");
        }

        if (key.IsArp)
        {
            Append(sb, "arp", null);
            Append(sb, "arp_op", Num(key.NwProto));
            Append(sb, "arp_spa", AddressFormat.IPv4((uint)key.NwSrc));
            Append(sb, "arp_tpa", AddressFormat.IPv4((uint)key.NwDst));
            Append(sb, "arp_sha", MacAddress.Format(key.ArpSha));
            Append(sb, "arp_tha", MacAddress.Format(key.ArpTha));
        }
        else if (key.IsIPv4 || key.IsIPv6)
        {
            bool v6 = key.IsIPv6;
            Append(sb, v6 ? "ipv6" : "ip", null);
            Append(sb, v6 ? "ipv6_src" : "nw_src", v6 ? AddressFormat.IPv6(key.NwSrc) : AddressFormat.IPv4((uint)key.NwSrc));
            Append(sb, v6 ? "ipv6_dst" : "nw_dst", v6 ? AddressFormat.IPv6(key.NwDst) : AddressFormat.IPv4((uint)key.NwDst));
            Append(sb, "nw_proto", Num(key.NwProto));
            Append(sb, "nw_tos", Num(key.NwTos));
            Append(sb, "nw_ttl", Num(key.NwTtl));
            if (key.NwFrag != 0) Append(sb, "nw_frag", key.NwFrag == 1 ? "first" : "later");
            if (key.NwFrag != 2) AppendTransport(sb, key, v6);
        }
        else
        {
            Append(sb, "dl_type", "0x" + key.DlType.ToString("x4", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    private static void AppendTransport(StringBuilder sb, in FlowKey key, bool v6)
    {
        if (key.NwProto is IpProtocols.Tcp or IpProtocols.Udp)
        {
            Append(sb, "tp_src", Num(key.TpSrc));
            Append(sb, "tp_dst", Num(key.TpDst));
            if (key.NwProto == IpProtocols.Tcp)
                Append(sb, "tcp_flags", "0x" + key.TcpFlags.ToString("x3", CultureInfo.InvariantCulture));
        }
        else if (key.NwProto == (v6 ? IpProtocols.IcmpV6 : IpProtocols.Icmp))
        {
            Append(sb, v6 ? "icmpv6_type" : "icmp_type", Num(key.TpSrc));
            Append(sb, v6 ? "icmpv6_code" : "icmp_code", Num(key.TpDst));
        }
    }

    private static void Append(StringBuilder sb, string name, string? value)
    {
        if (sb.Length > 0) sb.Append(',');
        sb.Append(name);
        if (value is not null) sb.Append('=').Append(value);
    }

    private static string Num(int n) => n.ToString(CultureInfo.InvariantCulture);
}
