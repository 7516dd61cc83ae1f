using System.Buffers.Binary;
using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Ports.Linux;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Ports.Offload;

/// <summary>
/// Software GRO for a port whose frames arrive one MSS at a time (VXLAN over UDP): consecutive TCP
/// segments of one flow in a received batch are joined into one super-frame in a large pool
/// buffer, marked for GSO (<see cref="GsoFrame"/>), so the switch handles them once and a TAP
/// with offloads takes them in one write. The rules are the kernel's tcp_gro_receive, kept
/// simple:
/// <list type="bullet">
/// <item>untagged Ethernet, IPv4 without options or fragments, or IPv6 with TCP as next header;</item>
/// <item>identical Ethernet header, addresses, TOS/TTL (traffic class/hop limit), ports, ACK number,
/// TCP header length and options; the same tunnel key and remote;</item>
/// <item>ACK set and nothing but ACK and PSH; PSH, or a segment shorter than the first, ends the run;</item>
/// <item>each sequence number follows the last; the result stays within 64 KiB of IP;</item>
/// <item>every segment's TCP checksum is verified before it is joined (the result goes on with a
/// partial checksum, which nobody after us checks again). A bad one is left alone, for the
/// receiver to drop.</item>
/// </list>
/// The joined frame keeps the first segment's headers, with the IP length and IPv4 header checksum
/// fixed and the TCP checksum field set to the pseudo-header sum (CHECKSUM_PARTIAL), as a Linux
/// sender hands a super-frame to a TSO device. One coalescer per port, used by its receiving thread.
/// </summary>
public sealed class TcpCoalescer
{
    /// <summary>Super-frames built, segments joined into them, segments refused for a bad checksum.</summary>
    public long SuperFrames, SegmentsJoined, BadChecksum;

    private const byte ProtoTcp = 6;
    private const byte FlagAck = 0x10, FlagPsh = 0x08;
    private const int MaxIpLength = 65535;

    private struct Segment
    {
        public int L4, TcpHeaderLength, Payload;
        public bool IPv6;
        public uint Seq;
        public byte Flags;
    }

    /// <summary>
    /// Joins runs of segments among the batch's packets from <paramref name="start"/> on, in place
    /// (order kept). Does nothing without a large pool.
    /// </summary>
    public void Coalesce(PacketBatch batch, int start, PacketPool pool)
    {
        var large = pool.Large;
        int n = batch.Count;
        if (large is null || n - start < 2) return;
        var items = batch.Items;
        int w = start;
        Packet? head = null;      // the run's first segment (small) or the super-frame being built (large)
        Segment hs = default;     // the first segment's layout
        uint nextSeq = 0;
        bool joined = false, closed = false;

        for (int r = start; r < n; r++)
        {
            var p = items[r];
            if (head is not null && !closed && TryParse(p, out var s) && Fits(head, in hs, nextSeq, joined, p, in s))
            {
                if (!Verify(p, in s)) { BadChecksum++; }
                else
                {
                    if (!joined)
                    {
                        var big = large.TryRent();
                        if (big is not null)
                        {
                            big.CopyFrom(head);
                            head.Release();
                            head = big;
                            joined = true;
                        }
                    }
                    if (joined)
                    {
                        int old = head.Length;
                        head.SetLength(old + s.Payload);
                        p.Data.Slice(s.L4 + s.TcpHeaderLength, s.Payload).CopyTo(head.Data[old..]);
                        nextSeq += (uint)s.Payload;
                        if ((s.Flags & FlagPsh) != 0)
                        {
                            var tcp = head.Data[hs.L4..];
                            tcp[13] |= FlagPsh;
                            closed = true;
                        }
                        if (s.Payload < hs.Payload) closed = true;
                        SegmentsJoined++;
                        p.Release();
                        continue;
                    }
                }
            }
            if (head is not null) { items[w++] = Finish(head, in hs, joined); head = null; }
            if (TryParse(p, out var first) && (first.Flags & FlagPsh) == 0 && Verify(p, in first))
            {
                head = p;
                hs = first;
                nextSeq = first.Seq + (uint)first.Payload;
                joined = closed = false;
                continue;
            }
            items[w++] = p;
        }
        if (head is not null) items[w++] = Finish(head, in hs, joined);
        batch.Truncate(w);
    }

    // ---- streaming: the datagrams of one UDP GRO receive, joined as they are walked ----

    private Packet? _current;
    private Segment _cs;
    private uint _cnext;
    private bool _cjoined, _cclosed;

    /// <summary>
    /// Appends <paramref name="frame"/> (a TCP segment) to the super-frame being built, if it
    /// continues it. False: finish the current one (<see cref="Finish"/>) and try
    /// <see cref="TryStart"/>.
    /// </summary>
    public bool TryAppend(ReadOnlySpan<byte> frame, uint tunnelId, uint remote)
    {
        var head = _current;
        if (head is null || _cclosed || head.TunnelId != tunnelId || head.TunnelRemote != remote) return false;
        if (!TryParse(frame, out var s) || !Fits(head.Data, head.Tailroom, in _cs, _cnext, frame, in s)) return false;
        if (!Verify(frame, in s)) { BadChecksum++; return false; }
        int old = head.Length;
        head.SetLength(old + s.Payload);
        frame.Slice(s.L4 + s.TcpHeaderLength, s.Payload).CopyTo(head.Data[old..]);
        _cnext += (uint)s.Payload;
        if ((s.Flags & FlagPsh) != 0) { head.Data[_cs.L4 + 13] |= FlagPsh; _cclosed = true; }
        if (s.Payload < _cs.Payload) _cclosed = true;
        _cjoined = true;
        SegmentsJoined++;
        return true;
    }

    /// <summary>Starts a super-frame with <paramref name="frame"/> in a large buffer, if it is a TCP data segment that others may follow.</summary>
    public bool TryStart(ReadOnlySpan<byte> frame, uint tunnelId, uint remote, PacketPool large)
    {
        if (_current is not null) throw new InvalidOperationException("finish the current super-frame first");
        if (!TryParse(frame, out var s) || (s.Flags & FlagPsh) != 0 || !Verify(frame, in s)) return false;
        var p = large.TryRent();
        if (p is null) return false;
        var buf = p.ReceiveBuffer();
        frame.CopyTo(buf);
        p.SetLength(frame.Length);
        p.TunnelId = tunnelId;
        p.TunnelRemote = remote;
        _current = p;
        _cs = s;
        _cnext = s.Seq + (uint)s.Payload;
        _cjoined = _cclosed = false;
        return true;
    }

    /// <summary>The super-frame built so far (lengths and checksums fixed, marked for GSO), or null.</summary>
    public Packet? Finish()
    {
        var p = _current;
        if (p is null) return null;
        _current = null;
        return Finish(p, in _cs, _cjoined);
    }

    /// <summary>An untagged TCP segment with data and only ACK (and PSH) set, that the pipeline has not already condemned.</summary>
    private static bool TryParse(Packet p, out Segment s)
    {
        s = default;
        if (p.Drop != DropReason.None || p.GsoSize != 0) return false;
        return TryParse(p.Data, out s);
    }

    private static bool TryParse(ReadOnlySpan<byte> d, out Segment s)
    {
        s = default;
        if (d.Length < 14 + 40) return false;
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(d[12..]);
        int l4;
        if (type == 0x0800)
        {
            if (d[14] != 0x45 || d[23] != ProtoTcp) return false;
            if ((BinaryPrimitives.ReadUInt16BigEndian(d[20..]) & 0x3FFF) != 0) return false; // MF or an offset
            if (BinaryPrimitives.ReadUInt16BigEndian(d[16..]) != d.Length - 14) return false;  // padded or short
            l4 = 34;
        }
        else if (type == 0x86DD)
        {
            if (d.Length < 14 + 40 + 20 || d[14] >> 4 != 6 || d[20] != ProtoTcp) return false;
            if (BinaryPrimitives.ReadUInt16BigEndian(d[18..]) != d.Length - 54) return false;
            l4 = 54;
            s.IPv6 = true;
        }
        else return false;
        int thl = (d[l4 + 12] >> 4) * 4;
        if (thl < 20 || d.Length <= l4 + thl) return false;
        byte flags = d[l4 + 13];
        if ((flags & FlagAck) == 0 || (flags & ~(FlagAck | FlagPsh)) != 0) return false;
        s.L4 = l4;
        s.TcpHeaderLength = thl;
        s.Payload = d.Length - l4 - thl;
        s.Seq = BinaryPrimitives.ReadUInt32BigEndian(d[(l4 + 4)..]);
        s.Flags = flags;
        return true;
    }

    /// <summary>Whether segment <paramref name="p"/> continues the run that <paramref name="head"/> holds.</summary>
    private static bool Fits(Packet head, in Segment hs, uint nextSeq, bool joined, Packet p, in Segment s)
    {
        if (p.TunnelId != head.TunnelId || p.TunnelRemote != head.TunnelRemote || p.InPort != head.InPort) return false;
        int room = joined ? head.Tailroom : PacketPool.LargeFrameSize - 64 - head.Length;
        return Fits(head.Data, room, in hs, nextSeq, p.Data, in s);
    }

    private static bool Fits(ReadOnlySpan<byte> a, int room, in Segment hs, uint nextSeq, ReadOnlySpan<byte> b, in Segment s)
    {
        if (s.IPv6 != hs.IPv6 || s.TcpHeaderLength != hs.TcpHeaderLength || s.Seq != nextSeq || s.Payload > hs.Payload) return false;
        if (a.Length - 14 + s.Payload > MaxIpLength || room < s.Payload) return false;
        if (!a[..14].SequenceEqual(b[..14])) return false;
        if (!hs.IPv6)
        {
            // TOS, DF, TTL, protocol, addresses; not the length, id or header checksum.
            if (a[15] != b[15] || (a[20] & 0x40) != (b[20] & 0x40) || a[22] != b[22] || !a.Slice(26, 8).SequenceEqual(b.Slice(26, 8))) return false;
        }
        else
        {
            // Version, traffic class, flow label; hop limit; addresses.
            if (!a.Slice(14, 4).SequenceEqual(b.Slice(14, 4)) || a[21] != b[21] || !a.Slice(22, 32).SequenceEqual(b.Slice(22, 32))) return false;
        }
        int l4 = hs.L4;
        // Ports, then ACK number and header length; options (timestamps) must match byte for byte.
        return a.Slice(l4, 4).SequenceEqual(b.Slice(l4, 4))
            && a.Slice(l4 + 8, 5).SequenceEqual(b.Slice(l4 + 8, 5))
            && a.Slice(l4 + 20, hs.TcpHeaderLength - 20).SequenceEqual(b.Slice(l4 + 20, hs.TcpHeaderLength - 20));
    }

    /// <summary>The segment's TCP checksum over its pseudo-header is valid.</summary>
    private static bool Verify(Packet p, in Segment s) => Verify(p.Data, in s);

    private static bool Verify(ReadOnlySpan<byte> d, in Segment s)
    {
        int l4Length = d.Length - s.L4;
        ushort pseudo = s.IPv6
            ? Checksum.Fold((ulong)Checksum.Sum(d.Slice(22, 32)) + ProtoTcp + (uint)l4Length)
            : Checksum.Fold((ulong)Checksum.Sum(d.Slice(26, 8)) + ProtoTcp + (uint)l4Length);
        return Checksum.Verify(d[s.L4..], pseudo);
    }

    /// <summary>Fixes the lengths and checksums of a joined super-frame and marks it for GSO; a lone segment is left as it came.</summary>
    private Packet Finish(Packet head, in Segment hs, bool joined)
    {
        if (!joined) return head;
        var d = head.Data;
        int l4Length = d.Length - hs.L4;
        ushort pseudo;
        if (!hs.IPv6)
        {
            var ip = d.Slice(14, 20);
            BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(d.Length - 14));
            BinaryPrimitives.WriteUInt16BigEndian(ip[10..], 0);
            BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip));
            pseudo = Checksum.Fold((ulong)Checksum.Sum(d.Slice(26, 8)) + ProtoTcp + (uint)l4Length);
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(d[18..], (ushort)l4Length);
            pseudo = Checksum.Fold((ulong)Checksum.Sum(d.Slice(22, 32)) + ProtoTcp + (uint)l4Length);
        }
        // CHECKSUM_PARTIAL: the field holds the pseudo-header sum; whoever finishes it sums from L4 on.
        BinaryPrimitives.WriteUInt16BigEndian(d[(hs.L4 + GsoFrame.TcpChecksumOffset)..], pseudo);
        head.GsoSize = (ushort)hs.Payload;
        head.GsoType = hs.IPv6 ? VirtioNetHdr.GSO_TCPV6 : VirtioNetHdr.GSO_TCPV4;
        SuperFrames++;
        return head;
    }
}
