using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Tables;
using VSwitch.Core.Tables.Rules;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// Runs one frame through the pipeline's decisions without sending it or learning from it, and
/// says what each stage decided (`ovs-appctl ofproto/trace`). Also reports whether a datapath
/// thread already caches the flow and what that cached flow does.
/// </summary>
public static class Tracer
{
    public static PacketTrace Trace(Datapath dp, ReadOnlySpan<byte> frame, int inPort, long nowMs)
    {
        var topo = dp.Topology;
        var t = new PacketTrace();
        var pool = new PacketPool(1, Math.Max(PacketPool.DefaultFrameSize, frame.Length));
        var p = pool.TryRent()!;
        var buf = p.ReceiveBuffer();
        frame.CopyTo(buf);
        p.SetLength(frame.Length);
        p.InPort = inPort;

        var reason = Classify.Extract(p);
        t.Flow = FlowKeyFormat.Format(p.Key);
        if (reason != DropReason.None)
        {
            t.Add("classify", $"cannot parse the frame: drop ({reason.Name()})");
            t.DropReason = reason.Name();
            t.Actions = "drop";
            return t;
        }
        t.Add("classify", t.Flow);
        var port = topo.Port(inPort);
        if (port is null)
        {
            t.Add("ingress", $"port {inPort} does not exist: drop");
            t.DropReason = DropReason.PortDown.Name();
            t.Actions = "drop";
            return t;
        }
        reason = VlanOps.Ingress(p, port);
        if (reason != DropReason.None)
        {
            t.Add("ingress", $"port {port.Name} does not accept the frame's VLAN: drop ({reason.Name()})");
            t.DropReason = reason.Name();
            t.Actions = "drop";
            return t;
        }

        ulong hash = p.Key.Hash64();
        long gen = dp.Generation;
        foreach (var ctx in dp.Contexts)
        {
            var cached = ctx.FlowCache.Lookup(in p.Key, hash);
            if (cached is null) continue;
            t.CacheHit = cached.Generation == gen;
            t.Add("flow-cache", $"thread {ctx.Index} caches this flow ({cached.Packets} packets, " +
                (t.CacheHit ? "current" : "stale: will be revalidated") + $"): actions={FlowAction.Format(cached.Actions, id => topo.Port(id)?.Name)}");
        }
        if (!t.CacheHit) t.Add("flow-cache", "no current cached flow: the slow path decides");

        var e = new FlowEntry();
        SlowPath.Resolve(in p.Key, p.Vlan, dp, topo, nowMs, e, new List<FlowAction>(), sideEffects: false, t);
        t.Actions = FlowAction.Format(e.Actions, id => topo.Port(id)?.Name);
        if (e.Actions.Length == 1 && e.Actions[0].Kind == ActionKind.Drop) t.DropReason = e.Actions[0].DropReason.Name();
        return t;
    }
}
