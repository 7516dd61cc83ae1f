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

    public override IReadOnlyList<DropReason> DropReasons { get; } =
    [
        DropReason.RuntFrame, DropReason.TruncatedVlan, DropReason.TruncatedArp, DropReason.BadArp,
        DropReason.TruncatedIPv4, DropReason.BadIpVersion, DropReason.BadIhl, DropReason.BadIpTotalLength,
        DropReason.TruncatedIPv6, DropReason.BadIPv6PayloadLength, DropReason.TruncatedTcp, DropReason.BadTcpOffset,
        DropReason.TruncatedUdp, DropReason.BadUdpLength, DropReason.TruncatedIcmp,
        // Judged by the port on receive (a tunnel port's header check), counted here.
        DropReason.TruncatedTunnelHeader, DropReason.BadTunnelHeader, DropReason.OversizedFrame, DropReason.VtepTableFull,
        // Ingress: the port's VLAN mode, the tunnel's VNI and VTEP.
        DropReason.PortDown, DropReason.VlanNotAllowed, DropReason.TaggedOnAccessPort, DropReason.QinqUnsupported,
        DropReason.UnknownVni, DropReason.UnknownVtep,
    ];

    public override void Process(PacketBatch batch, DatapathContext ctx)
    {
        var items = batch.Items;
        int n = batch.Count, kept = 0;
        var topo = ctx.Topology;
        var live = ctx.Live;
        var captures = ctx.Captures;
        var mirrors = ctx.Mirrors;
        for (int i = 0; i < n; i++)
        {
            var p = items[i];
            // A port may have judged the frame already (a tunnel port: bad encapsulation header).
            var reason = p.Drop != DropReason.None ? p.Drop : Classify.Extract(p);
            // Before the ingress VLAN mode removes a tag: a capture shows the frame as it arrived.
            if (captures is not null) CaptureTap.Received(captures, p);
            if (reason == DropReason.None)
            {
                var port = topo.Port(p.InPort);
                reason = port is null ? DropReason.PortDown
                    : port.IsTunnel ? TunnelIngress(p) : VlanOps.Ingress(p, port);
            }
            if (live is not null && p.Trace is null) ctx.ClaimLive(p, live);
            if (p.Trace is { } t) Record(t, p, reason, topo);
            if (reason != DropReason.None) ctx.Drop(p, reason);
            else
            {
                if (mirrors is not null) Mirroring.Received(mirrors, p, ctx);
                // Skip the store (and its GC write barrier) while nothing was dropped.
                if (kept != i) items[kept] = p;
                kept++;
            }
        }
        Compact(batch, kept);

        // Not inline: a lambda in Process would allocate its closure on every batch, traced or not.
        void Record(PacketTrace t, Buffers.Packet p, DropReason reason, Topology.SwitchTopology topo)
        {
            if (t.Flow.Length == 0) t.Flow = FlowKeyFormat.Format(p.Key, PortNames(topo));
            t.Add(Name, reason == DropReason.None ? Describe(p, topo) : $"cannot accept the frame: {reason.Name()}");
        }

        static Func<int, string?> PortNames(Topology.SwitchTopology topo) => id => topo.Port(id)?.Name;

        static string Describe(Buffers.Packet p, Topology.SwitchTopology topo)
        {
            var port = topo.Port(p.InPort);
            string where = port is null ? $"port {p.InPort}" : port.Name;
            if (port is { IsTunnel: true })
                return $"from {where}, VTEP {VtepRemote.Format(p.TunnelRemote)} VNI {p.TunnelId}: network {topo.NetworkByVni(p.TunnelId)?.Name}";
            var net = port is null ? null : topo.IngressNetwork(port, 0);
            return $"from {where} in network {net?.Name ?? "-"}, VLAN {p.Vlan}";
        }

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
