using System.Buffers.Binary;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Ports.Offload;

/// <summary>Where the headers of a TCP GSO super-frame are, as found by <see cref="TcpSegmenter.TryParse"/>.</summary>
public readonly record struct TcpGsoLayout(
    int L3Offset, int L4Offset, int TcpHeaderLength, bool IsIPv6, int PayloadLength, int Mss)
{
    /// <summary>Ethernet + IP + TCP header bytes copied in front of every segment.</summary>
    public int HeaderLength => L4Offset + TcpHeaderLength;
    public int SegmentCount => PayloadLength == 0 ? 1 : (PayloadLength + Mss - 1) / Mss;
    /// <summary>Length of segment <paramref name="index"/> as a frame.</summary>
    public int SegmentLength(int index) => HeaderLength + Math.Min(Mss, PayloadLength - index * Mss);
    public int MaxSegmentLength => HeaderLength + Math.Min(Mss, PayloadLength);
}

/// <summary>
/// Software TCP segmentation (what a NIC's TSO does): cuts a GSO super-frame (one Ethernet/IP/TCP
/// header, up to 64 KiB of payload) into MSS-sized frames, each with its own IP length, IPv4 id,
/// TCP sequence number, flags and full checksums. Pure functions over spans.
/// </summary>
public static class TcpSegmenter
{
    private const ushort EtherTypeIPv4 = 0x0800, EtherTypeIPv6 = 0x86DD, EtherTypeVlan = 0x8100, EtherTypeQinQ = 0x88A8;
    private const byte ProtoTcp = 6;
    private const byte TcpFin = 0x01, TcpPsh = 0x08, TcpCwr = 0x80;

    /// <summary>
    /// Finds the headers of an Ethernet frame carrying IPv4 or IPv6 (no extension headers) and TCP.
    /// Returns false for anything else, or when <paramref name="mss"/> is not positive.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> frame, int mss, out TcpGsoLayout layout)
    {
        layout = default;
        if (mss <= 0 || frame.Length < 14) return false;
        int off = 12;
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(frame[off..]);
        while (type is EtherTypeVlan or EtherTypeQinQ)
        {
            off += 4;
            if (frame.Length < off + 2) return false;
            type = BinaryPrimitives.ReadUInt16BigEndian(frame[off..]);
        }
        int l3 = off + 2;
        int l4;
        bool v6;
        if (type == EtherTypeIPv4)
        {
            if (frame.Length < l3 + 20 || frame[l3] >> 4 != 4) return false;
            int ihl = (frame[l3] & 0xF) * 4;
            if (ihl < 20 || frame.Length < l3 + ihl || frame[l3 + 9] != ProtoTcp) return false;
            int total = BinaryPrimitives.ReadUInt16BigEndian(frame[(l3 + 2)..]);
            // A GSO frame's total length may be 0 (BIG TCP) or exact; trust the frame's size.
            if (total != 0 && total != frame.Length - l3) return false;
            l4 = l3 + ihl;
            v6 = false;
        }
        else if (type == EtherTypeIPv6)
        {
            if (frame.Length < l3 + 40 || frame[l3] >> 4 != 6 || frame[l3 + 6] != ProtoTcp) return false;
            l4 = l3 + 40;
            v6 = true;
        }
        else return false;
        if (frame.Length < l4 + 20) return false;
        int thl = (frame[l4 + 12] >> 4) * 4;
        if (thl < 20 || frame.Length < l4 + thl) return false;
        layout = new TcpGsoLayout(l3, l4, thl, v6, frame.Length - l4 - thl, mss);
        return true;
    }

    /// <summary>
    /// Writes segment <paramref name="index"/> (0-based) of <paramref name="frame"/> into
    /// <paramref name="dest"/> and returns its length; -1 when it does not fit.
    /// </summary>
    public static int WriteSegment(ReadOnlySpan<byte> frame, in TcpGsoLayout g, int index, Span<byte> dest)
    {
        if ((uint)index >= (uint)g.SegmentCount) throw new ArgumentOutOfRangeException(nameof(index));
        int hdr = g.HeaderLength;
        var payload = Payload(frame, g, index);
        int len = hdr + payload.Length;
        if (len > dest.Length) return -1;
        payload.CopyTo(dest[hdr..]);
        WriteSegmentHeaders(frame, g, index, dest[..hdr]);
        return len;
    }

    /// <summary>Where segment <paramref name="index"/>'s payload lies in the super-frame.</summary>
    public static ReadOnlySpan<byte> Payload(ReadOnlySpan<byte> frame, in TcpGsoLayout g, int index)
    {
        int start = index * g.Mss;
        return frame.Slice(g.HeaderLength + start, Math.Min(g.Mss, g.PayloadLength - start));
    }

    /// <summary>
    /// Writes only segment <paramref name="index"/>'s headers (<see cref="TcpGsoLayout.HeaderLength"/>
    /// bytes) into <paramref name="dest"/>, its TCP checksum summed over those headers and over the
    /// payload where it lies in <paramref name="frame"/>: a sender that gathers each payload straight
    /// from the super-frame (iovecs) need not copy it. The payload starts at an even offset of the TCP
    /// segment (the header is a multiple of 4 bytes), so the two sums add up.
    /// </summary>
    public static void WriteSegmentHeaders(ReadOnlySpan<byte> frame, in TcpGsoLayout g, int index, Span<byte> dest)
    {
        int count = g.SegmentCount;
        if ((uint)index >= (uint)count) throw new ArgumentOutOfRangeException(nameof(index));
        int hdr = g.HeaderLength;
        if (dest.Length < hdr) throw new ArgumentException("shorter than the segment's headers", nameof(dest));
        var payload = Payload(frame, g, index);
        frame[..hdr].CopyTo(dest);

        var ip = dest[g.L3Offset..];
        int l4Len = g.TcpHeaderLength + payload.Length;
        ushort pseudo;
        if (g.IsIPv6)
        {
            BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)l4Len);
            pseudo = Checksum.Fold((ulong)Checksum.Sum(ip.Slice(8, 32)) + ProtoTcp + (uint)l4Len);
        }
        else
        {
            int ihl = g.L4Offset - g.L3Offset;
            BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(ihl + l4Len));
            ushort id = BinaryPrimitives.ReadUInt16BigEndian(ip[4..]);
            BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)(id + index));
            ip[10] = 0; ip[11] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip[..ihl]));
            pseudo = Checksum.Fold((ulong)Checksum.Sum(ip.Slice(12, 8)) + ProtoTcp + (uint)l4Len);
        }

        var tcp = dest.Slice(g.L4Offset, g.TcpHeaderLength);
        uint seq = BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], seq + (uint)(index * g.Mss));
        byte flags = tcp[13];
        if (index != count - 1) flags &= unchecked((byte)~(TcpFin | TcpPsh));
        if (index != 0) flags &= unchecked((byte)~TcpCwr);
        tcp[13] = flags;
        tcp[16] = 0; tcp[17] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], Checksum.Compute(tcp, Checksum.Sum(payload, pseudo)));
    }
}
