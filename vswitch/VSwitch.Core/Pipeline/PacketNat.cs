using System.Buffers.Binary;
using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// Network address translation in place: rewrites an IPv4 packet's addresses and ports to those of a
/// tuple, patching the IP and transport checksums incrementally (RFC 1624), and the flow key with
/// them, so that what comes after (the flow lookup, the router) sees the translated packet.
/// A GSO super-frame's TCP checksum holds only the pseudo-header's sum (not complemented, its ports
/// not in it): it is patched for the addresses only, in the other sense.
/// </summary>
public static class PacketNat
{
    /// <summary>Rewrites to <paramref name="to"/>; false when the packet cannot be (not IPv4, too short).</summary>
    public static bool Rewrite(Packet p, in ConnTuple to)
    {
        var d = p.Data;
        ref var key = ref p.Key;
        if (!key.IsIPv4 || to.Family != 4) return false;
        int l4 = ConnTuple.L4Offset(in key, d);
        if (l4 < 0) return false;
        uint oldSrc = (uint)key.NwSrc, oldDst = (uint)key.NwDst, newSrc = (uint)to.Src, newDst = (uint)to.Dst;
        bool addrs = oldSrc != newSrc || oldDst != newDst;
        if (addrs)
        {
            ushort ipSum = BinaryPrimitives.ReadUInt16BigEndian(d[24..]);
            ipSum = Checksum.Update(Checksum.Update(ipSum, oldSrc, newSrc), oldDst, newDst);
            BinaryPrimitives.WriteUInt16BigEndian(d[24..], ipSum);
            BinaryPrimitives.WriteUInt32BigEndian(d[26..], newSrc);
            BinaryPrimitives.WriteUInt32BigEndian(d[30..], newDst);
            key.NwSrc = newSrc;
            key.NwDst = newDst;
        }
        if (key.NwFrag != 0 && key.NwFrag != 1) return true; // a later fragment has no transport header
        switch (key.NwProto)
        {
            case IpProtocols.Tcp when d.Length >= l4 + 18:
                Transport(p, d, l4, 16, oldSrc, oldDst, newSrc, newDst, to.SrcPort, to.DstPort, partial: p.GsoSize != 0, zeroMeansNone: false);
                break;
            case IpProtocols.Udp when d.Length >= l4 + 8:
                Transport(p, d, l4, 6, oldSrc, oldDst, newSrc, newDst, to.SrcPort, to.DstPort, partial: false, zeroMeansNone: true);
                break;
            case IpProtocols.Icmp when d.Length >= l4 + 8 && d[l4] is 0 or 8:
            {
                // Echo: the identifier is the "port"; ICMP's checksum has no pseudo-header.
                ushort oldId = BinaryPrimitives.ReadUInt16BigEndian(d[(l4 + 4)..]);
                ushort newId = to.SrcPort;
                if (oldId != newId)
                {
                    ushort sum = BinaryPrimitives.ReadUInt16BigEndian(d[(l4 + 2)..]);
                    BinaryPrimitives.WriteUInt16BigEndian(d[(l4 + 2)..], Checksum.Update(sum, oldId, newId));
                    BinaryPrimitives.WriteUInt16BigEndian(d[(l4 + 4)..], newId);
                }
                break;
            }
        }
        return true;
    }

    private static void Transport(Packet p, Span<byte> d, int l4, int csumAt, uint oldSrc, uint oldDst, uint newSrc, uint newDst,
        ushort newSport, ushort newDport, bool partial, bool zeroMeansNone)
    {
        ref var key = ref p.Key;
        ushort oldSport = BinaryPrimitives.ReadUInt16BigEndian(d[l4..]);
        ushort oldDport = BinaryPrimitives.ReadUInt16BigEndian(d[(l4 + 2)..]);
        var field = d[(l4 + csumAt)..];
        ushort sum = BinaryPrimitives.ReadUInt16BigEndian(field);
        bool patch = !(zeroMeansNone && sum == 0);
        if (patch)
        {
            if (partial)
            {
                // Not complemented: S' = S + ~m + m', which is ~Update(~S, m, m').
                sum = (ushort)~Checksum.Update((ushort)~sum, oldSrc, newSrc);
                sum = (ushort)~Checksum.Update((ushort)~sum, oldDst, newDst);
            }
            else
            {
                sum = Checksum.Update(Checksum.Update(sum, oldSrc, newSrc), oldDst, newDst);
                sum = Checksum.Update(Checksum.Update(sum, oldSport, newSport), oldDport, newDport);
                if (zeroMeansNone && sum == 0) sum = 0xFFFF; // UDP sends a computed zero as all ones
            }
            BinaryPrimitives.WriteUInt16BigEndian(field, sum);
        }
        BinaryPrimitives.WriteUInt16BigEndian(d[l4..], newSport);
        BinaryPrimitives.WriteUInt16BigEndian(d[(l4 + 2)..], newDport);
        key.TpSrc = newSport;
        key.TpDst = newDport;
    }

    /// <summary>
    /// An ICMP error about a translated connection: the outer header goes to <paramref name="outer"/>
    /// and the quoted packet (which travelled the other way) to <paramref name="quoted"/>; the quoted
    /// header's checksum and the ICMP checksum are computed again (errors are rare; the sums are short).
    /// </summary>
    public static bool RewriteIcmpError(Packet p, in ConnTuple outer, in ConnTuple quoted)
    {
        var d = p.Data;
        ref var key = ref p.Key;
        if (!key.IsIPv4) return false;
        int l4 = ConnTuple.L4Offset(in key, d);
        if (l4 < 0 || d.Length < l4 + 8 + 28) return false;
        var q = d[(l4 + 8)..];
        int qihl = (q[0] & 0x0F) * 4;
        if (qihl < 20 || q.Length < qihl + 8) return false;
        BinaryPrimitives.WriteUInt32BigEndian(q[12..], (uint)quoted.Src);
        BinaryPrimitives.WriteUInt32BigEndian(q[16..], (uint)quoted.Dst);
        BinaryPrimitives.WriteUInt16BigEndian(q[10..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(q[10..], Checksum.Compute(q[..qihl]));
        var ql4 = q[qihl..];
        if (quoted.Proto is IpProtocols.Tcp or IpProtocols.Udp)
        {
            // The quoted transport checksum may lie beyond the 8 bytes an error carries: left as it is, as Linux does.
            BinaryPrimitives.WriteUInt16BigEndian(ql4, quoted.SrcPort);
            BinaryPrimitives.WriteUInt16BigEndian(ql4[2..], quoted.DstPort);
        }
        else if (quoted.Proto == IpProtocols.Icmp) BinaryPrimitives.WriteUInt16BigEndian(ql4[4..], quoted.SrcPort);
        // Outer addresses (the ICMP message has no ports of its own).
        uint oldSrc = (uint)key.NwSrc, oldDst = (uint)key.NwDst;
        ushort ipSum = BinaryPrimitives.ReadUInt16BigEndian(d[24..]);
        ipSum = Checksum.Update(Checksum.Update(ipSum, oldSrc, (uint)outer.Src), oldDst, (uint)outer.Dst);
        BinaryPrimitives.WriteUInt16BigEndian(d[24..], ipSum);
        BinaryPrimitives.WriteUInt32BigEndian(d[26..], (uint)outer.Src);
        BinaryPrimitives.WriteUInt32BigEndian(d[30..], (uint)outer.Dst);
        key.NwSrc = (uint)outer.Src;
        key.NwDst = (uint)outer.Dst;
        int totalLen = BinaryPrimitives.ReadUInt16BigEndian(d[16..]);
        int icmpLen = Math.Min(d.Length, 14 + totalLen) - l4;
        var icmp = d.Slice(l4, icmpLen);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], Checksum.Compute(icmp));
        return true;
    }
}
