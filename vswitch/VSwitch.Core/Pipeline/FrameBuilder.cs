using VSwitch.Core.Flow;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// Builds a well-formed frame that classifies to (at least) the fields of a flow key: what
/// `vsctl trace 'in_port=a,icmp,nw_dst=...'` sends through the pipeline. Not for the hot path.
/// </summary>
public static class FrameBuilder
{
    public static byte[] FromKey(in FlowKey k, int payload = 32)
    {
        var f = new byte[1600];
        int off = 0;
        ushort type = k.DlType == 0 ? (ushort)0x88B5 : k.DlType; // 0x88B5: local experimental ethertype
        if (k.HasVlan)
        {
            EthernetHeader.Write(f, new EthernetFields(k.DlDst, k.DlSrc, EtherTypes.Vlan));
            VlanTag.Write(f.AsSpan(14), new VlanFields((byte)(k.VlanPcp & 7), false, k.VlanId, type));
            off = 18;
        }
        else
        {
            EthernetHeader.Write(f, new EthernetFields(k.DlDst, k.DlSrc, type));
            off = 14;
        }
        int l4 = payload;
        switch (type)
        {
            case EtherTypes.Arp:
                ArpPacket.Write(f.AsSpan(off), new ArpFields(k.NwProto == 0 ? (ushort)1 : k.NwProto, k.ArpSha == 0 ? k.DlSrc : k.ArpSha,
                    (uint)k.NwSrc, k.ArpTha, (uint)k.NwDst));
                off += 28;
                break;
            case EtherTypes.IPv4:
            {
                int l4len = L4Length(k.NwProto, payload);
                var ip = IPv4Header.Write(f.AsSpan(off), new IPv4Fields(k.NwTos, 1, true, false, 0, k.NwTtl == 0 ? (byte)64 : k.NwTtl,
                    k.NwProto, (uint)k.NwSrc, (uint)k.NwDst), l4len);
                int start = off + ip.HeaderLength;
                WriteL4(f.AsSpan(start, l4len), k, payload, v6: false);
                off = start + l4len;
                break;
            }
            case EtherTypes.IPv6:
            {
                int l4len = L4Length(k.NwProto, payload);
                IPv6Header.Write(f.AsSpan(off), new IPv6Fields(k.NwTos, 0, k.NwProto, k.NwTtl == 0 ? (byte)64 : k.NwTtl, k.NwSrc, k.NwDst), l4len);
                int start = off + 40;
                WriteL4(f.AsSpan(start, l4len), k, payload, v6: true);
                off = start + l4len;
                break;
            }
            default:
                off += l4;
                break;
        }
        return f.AsSpan(0, Math.Max(off, 60)).ToArray();
    }

    private static int L4Length(byte proto, int payload) => proto switch
    {
        IpProtocols.Tcp => 20 + payload,
        IpProtocols.Udp => 8 + payload,
        IpProtocols.Icmp or IpProtocols.IcmpV6 => 8 + payload,
        _ => payload,
    };

    private static void WriteL4(Span<byte> s, in FlowKey k, int payload, bool v6)
    {
        switch (k.NwProto)
        {
            case IpProtocols.Tcp:
            {
                var t = TcpHeader.Write(s, new TcpFields(k.TpSrc, k.TpDst, 1, 0, k.TcpFlags == 0 ? TcpFlags.Syn : k.TcpFlags, 65535, 0));
                if (v6) t.FillChecksum(k.NwSrc, k.NwDst); else t.FillChecksum((uint)k.NwSrc, (uint)k.NwDst);
                break;
            }
            case IpProtocols.Udp:
            {
                var u = UdpHeader.Write(s, new UdpFields(k.TpSrc, k.TpDst), payload);
                if (v6) u.FillChecksum(k.NwSrc, k.NwDst); else u.FillChecksum((uint)k.NwSrc, (uint)k.NwDst);
                break;
            }
            case IpProtocols.Icmp:
                // Type 0 with no type given would be an echo reply; a trace of "icmp" means a request.
                IcmpHeader.Write(s, new IcmpFields(k.TpSrc == 0 && k.TpDst == 0 ? (byte)8 : (byte)k.TpSrc, (byte)k.TpDst, 0x00010001)).FillChecksum();
                break;
            case IpProtocols.IcmpV6:
                IcmpV6Header.Write(s, new IcmpV6Fields(k.TpSrc == 0 ? (byte)128 : (byte)k.TpSrc, (byte)k.TpDst, 0x00010001)).FillChecksum(k.NwSrc, k.NwDst);
                break;
        }
    }
}
