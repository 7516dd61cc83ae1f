using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Ports.Offload;
using VSwitch.Core.Topology;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// Software GSO on the way out: cuts a TCP super-frame into MSS-sized frames with full checksums
/// for a port that cannot take it whole (TAP without offloads, VXLAN, memory), and queues them.
/// </summary>
public static class SoftwareGso
{
    public static readonly DropReason[] Reasons = [DropReason.GsoUnsupported, DropReason.PoolExhausted];

    public static void Segment(Packet p, SwitchPort port, DatapathContext ctx)
    {
        var frame = p.Data;
        if (!TcpSegmenter.TryParse(frame, p.GsoSize, out var layout)) { ctx.Drop(p, DropReason.GsoUnsupported); return; }
        if (layout.MaxSegmentLength > ctx.Pool.FrameSize) { ctx.Drop(p, DropReason.GsoUnsupported); return; }
        int count = layout.SegmentCount;
        var trace = p.Trace;
        trace?.Add(ctx.StageName, $"segmented into {count} frames of MSS {p.GsoSize} for {port.Name} (software GSO)");
        for (int i = 0; i < count; i++)
        {
            var seg = ctx.Pool.TryRent();
            if (seg is null) { ctx.CountDrop(DropReason.PoolExhausted, count - i); break; }
            seg.CopyMetadataFrom(p);
            // One trace line for the super-frame, not one per segment: only the first segment carries it.
            if (i > 0) seg.Trace = null;
            var buf = seg.ReceiveBuffer();
            seg.SetLength(TcpSegmenter.WriteSegment(frame, layout, i, buf));
            ctx.Output.Enqueue(seg, port, ctx);
        }
        p.Release();
    }
}
