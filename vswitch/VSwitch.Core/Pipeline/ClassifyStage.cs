using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;

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
            // A port may have judged the frame already (a tunnel port: bad VXLAN header).
            var reason = p.Drop != DropReason.None ? p.Drop : Classify.Extract(p);
            if (reason == DropReason.None)
            {
                var port = topo.Port(p.InPort);
                reason = port is null ? DropReason.PortDown
                    : port.IsTunnel ? TunnelIngress(p) : VlanOps.Ingress(p, port);
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

        DropReason TunnelIngress(Buffers.Packet p)
        {
            p.Key.TunId = p.TunnelId;
            p.Key.TunRemote = p.TunnelRemote;
            var net = topo.NetworkByVni(p.TunnelId);
            if (net is null) return DropReason.UnknownVni;
            if (!net.AcceptUnknownVteps && !net.HasVtep(p.TunnelRemote)) return DropReason.UnknownVtep;
            // The inner frame's own 802.1Q tag is not ours to interpret: the VNI chose the network.
            p.Vlan = net.Vlan;
            return DropReason.None;
        }
    }
}
