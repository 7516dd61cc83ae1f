using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Tables;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// A synthetic trace (`ovs-appctl ofproto/trace`): runs one frame through the real stages in a
/// context of its own that changes no table and sends nothing, and returns what each stage did,
/// down to where each copy would leave. A live trace (<see cref="LiveTrace"/>) records the same
/// steps on real packets as the datapath threads forward them.
/// </summary>
public static class Tracer
{
    /// <summary>Frames a trace may need at once: the frame, its flood copies, an ICMP error.</summary>
    private const int TracePoolSize = 64;

    public static PacketTrace Trace(Datapath dp, ReadOnlySpan<byte> frame, int inPort, long nowMs, uint tunnelId = 0, uint tunnelRemote = 0)
    {
        var t = new PacketTrace();
        var pool = new PacketPool(TracePoolSize, Math.Max(PacketPool.DefaultFrameSize, frame.Length));
        var ctx = new DatapathContext(dp, pool, index: -1, flowCacheCapacity: FlowCache.Ways) { DryRun = true };
        var p = pool.TryRent()!;
        p.CopyFrom(frame);
        p.InPort = inPort;
        p.TunnelId = tunnelId;
        p.TunnelRemote = tunnelRemote;
        p.Trace = t;
        var batch = new PacketBatch(1);
        batch.Add(p);
        dp.ProcessBatch(batch, ctx, nowMs);
        if (t.Actions.Length == 0) t.Actions = "drop";
        return t;
    }
}
