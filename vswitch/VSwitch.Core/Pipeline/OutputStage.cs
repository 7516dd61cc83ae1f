using VSwitch.Core.Buffers;
using VSwitch.Core.Topology;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// Puts each frame on its way: queues it for its output port, or floods it to every other port
/// of its network that carries its VLAN (split horizon: never back out of the ingress port), one
/// copy per extra port. Applies the egress port's VLAN mode (tag for trunks).
/// </summary>
public sealed class OutputStage : Stage
{
    public override string Name => "output";

    public override void Process(PacketBatch batch, DatapathContext ctx)
    {
        var items = batch.Items;
        int n = batch.Count;
        var topo = ctx.Topology;
        for (int i = 0; i < n; i++)
        {
            var p = items[i];
            if (p.OutPort >= 0)
            {
                var port = topo.Port(p.OutPort);
                if (port is null || !port.Carries(p.Vlan)) ctx.Drop(p, port is null ? DropReason.PortDown : DropReason.VlanNotAllowed);
                else Send(p, port, ctx);
            }
            else if (p.OutPort == Packet.OutFlood) Flood(p, topo, ctx);
            else ctx.Drop(p, DropReason.NoOutput);
        }
        batch.Clear();
    }

    public static void Send(Packet p, SwitchPort port, DatapathContext ctx)
    {
        if (port.Mode == VlanMode.Trunk && p.Vlan != port.NativeVlan)
        {
            if (p.Headroom < 4) { ctx.Drop(p, DropReason.PoolExhausted); return; }
            BridgeStage.PushTag(p, p.Vlan, (byte)(p.Key.VlanPcp & 7));
        }
        ctx.Enqueue(p, port);
    }

    private static void Flood(Packet p, SwitchTopology topo, DatapathContext ctx)
    {
        var port = topo.Port(p.InPort);
        if (port is null) { ctx.Drop(p, DropReason.PortDown); return; }
        var members = topo.Members(port.Network.Id);
        // Find the last eligible port first: it gets the original, the others get copies.
        int last = -1;
        for (int i = members.Length - 1; i >= 0; i--)
        {
            var m = members[i];
            if (m.Id != p.InPort && m.Carries(p.Vlan)) { last = i; break; }
        }
        if (last < 0) { ctx.Drop(p, DropReason.NoOutput); return; }
        for (int i = 0; i < last; i++)
        {
            var m = members[i];
            if (m.Id == p.InPort || !m.Carries(p.Vlan)) continue;
            var copy = ctx.Pool.TryRent();
            if (copy is null) { ctx.Counters.Drops[(int)DropReason.PoolExhausted]++; continue; }
            copy.CopyFrom(p);
            Send(copy, m, ctx);
        }
        Send(p, members[last], ctx);
    }
}
