using VSwitch.Core.Buffers;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// Parses each frame's headers once into its <see cref="FlowKey"/> and applies the ingress port's
/// VLAN mode. Frames that cannot be parsed, or that the port does not accept, are dropped with the reason.
/// </summary>
public sealed class ClassifyStage : Stage
{
    public override string Name => "classify";

    public override void Process(PacketBatch batch, DatapathContext ctx)
    {
        var items = batch.Items;
        int n = batch.Count, kept = 0;
        var topo = ctx.Topology;
        for (int i = 0; i < n; i++)
        {
            var p = items[i];
            var reason = Classify.Extract(p);
            if (reason == DropReason.None)
            {
                var port = topo.Port(p.InPort);
                reason = port is null ? DropReason.PortDown : VlanOps.Ingress(p, port);
            }
            if (reason != DropReason.None) ctx.Drop(p, reason);
            else
            {
                // Skip the store (and its GC write barrier) while nothing was dropped.
                if (kept != i) items[kept] = p;
                kept++;
            }
        }
        Compact(batch, kept);
    }
}
