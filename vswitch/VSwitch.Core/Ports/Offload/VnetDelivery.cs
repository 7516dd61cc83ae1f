using VSwitch.Core.Buffers;
using VSwitch.Core.Ports.Linux;

namespace VSwitch.Core.Ports.Offload;

/// <summary>
/// Turns one frame that arrived with a virtio-net header (a TAP with IFF_VNET_HDR, an AF_PACKET
/// socket with PACKET_VNET_HDR) into complete frames in pool packets: a TCP GSO super-frame is cut
/// into MSS-sized segments (or kept whole in a large buffer, see <see cref="GsoFrame"/>), a partial checksum is completed, anything else the switch cannot finish
/// (UDP GSO, truncated or oversize frames) is dropped and counted. Shared by the ports that read
/// such frames; each port owns one, used only by the thread that receives on it.
/// </summary>
public sealed class VnetDelivery
{
    public long GsoFrames, GsoSegments, GsoWhole, ChecksumsCompleted, UnsupportedOffload, Oversize, PoolEmpty;

    /// <summary>Segments of the current super-frame already handed out (the batch or the pool ran out midway).</summary>
    public int PendingSegment;

    /// <summary>
    /// Delivers the frame in <paramref name="src"/> into <paramref name="batch"/>. False: the batch
    /// or the pool ran out; call again with the same frame later (it resumes where it stopped).
    /// </summary>
    public bool Deliver(in VirtioNetHdr vnet, int csumStart, ReadOnlySpan<byte> src, PacketBatch batch, PacketPool pool)
    {
        int gso = vnet.GsoType & ~VirtioNetHdr.GSO_ECN;
        if (gso != VirtioNetHdr.GSO_NONE)
        {
            // Keep a TCP super-frame whole when the thread has a large buffer for it (see GsoFrame);
            // otherwise, or for anything but TCP with a partial checksum, segment it here.
            if (PendingSegment == 0 && pool.Large is { } large && GsoFrame.CanKeepWhole(in vnet, csumStart, src))
            {
                if (batch.IsFull) return false;
                if (large.TryRent() is { } whole)
                {
                    src.CopyTo(whole.ReceiveBuffer());
                    whole.SetLength(src.Length);
                    GsoFrame.Mark(whole, in vnet);
                    batch.Add(whole);
                    GsoWhole++;
                    return true;
                }
            }
            if ((gso != VirtioNetHdr.GSO_TCPV4 && gso != VirtioNetHdr.GSO_TCPV6) ||
                !TcpSegmenter.TryParse(src, vnet.GsoSize, out var layout))
            {
                UnsupportedOffload++;
                return true;
            }
            if (layout.MaxSegmentLength > pool.FrameSize) { Oversize++; return true; }
            int count = layout.SegmentCount;
            for (int i = PendingSegment; i < count; i++)
            {
                if (batch.IsFull) { PendingSegment = i; return false; }
                var p = pool.TryRent();
                if (p is null) { PoolEmpty++; PendingSegment = i; return false; }
                int n = TcpSegmenter.WriteSegment(src, layout, i, p.ReceiveBuffer());
                p.SetLength(n);
                batch.Add(p);
                GsoSegments++;
            }
            GsoFrames++;
            PendingSegment = 0;
            return true;
        }

        int len = src.Length;
        if (len > pool.FrameSize) { Oversize++; return true; }
        var pkt = pool.TryRent();
        if (pkt is null) { PoolEmpty++; return false; }
        var dst = pkt.ReceiveBuffer()[..len];
        src.CopyTo(dst);
        if ((vnet.Flags & VirtioNetHdr.F_NEEDS_CSUM) != 0)
        {
            if (!ChecksumCompletion.TryComplete(dst, csumStart, vnet.CsumOffset))
            {
                pkt.Release();
                UnsupportedOffload++;
                return true;
            }
            ChecksumsCompleted++;
        }
        pkt.SetLength(len);
        batch.Add(pkt);
        return true;
    }

    /// <summary>
    /// Delivers a frame that was read straight into <paramref name="large"/>, a large pool packet:
    /// a TCP super-frame that may stay whole is marked and handed on as it is (no copy); anything
    /// else goes through <see cref="Deliver"/> and the large packet is released. False: the batch or
    /// the pool ran out midway; call again with the same packet, which the caller still owns.
    /// </summary>
    public bool DeliverInPlace(in VirtioNetHdr vnet, Packet large, PacketBatch batch, PacketPool pool)
    {
        if (vnet.GsoType != VirtioNetHdr.GSO_NONE && PendingSegment == 0 && GsoFrame.CanKeepWhole(in vnet, vnet.CsumStart, large.Data))
        {
            if (batch.IsFull) return false;
            GsoFrame.Mark(large, in vnet);
            batch.Add(large);
            GsoWhole++;
            return true;
        }
        if (!Deliver(in vnet, vnet.CsumStart, large.Data, batch, pool)) return false;
        large.Release();
        return true;
    }
}
