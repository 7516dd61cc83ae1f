using System.Buffers.Binary;
using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Tables.Rules;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// Runs each packet's flow actions on the packet in place and queues it for its output ports:
/// one copy per output but the last, which takes the packet itself. Flooding goes to every other
/// port of the network that carries the frame's VLAN (split horizon: never the ingress port).
/// </summary>
public sealed class ActionStage : Stage
{
    public override string Name => "actions";

    public override IReadOnlyList<DropReason> DropReasons { get; } =
    [
        // What the slow path decided, carried out here.
        DropReason.RuleDrop, DropReason.TableMiss, DropReason.NoOutput, DropReason.OutputIsIngress,
        DropReason.MacTableFull, DropReason.NoNetwork, DropReason.TtlExpired, DropReason.NoRoute,
        DropReason.NotRoutable, DropReason.NetworkIsolated, DropReason.UnknownVni, DropReason.TunnelToTunnel, DropReason.NoTunnelPort,
        DropReason.MacMoveRefused,
        // Carried out here: MTU checks, copies, trunk tags, routing replies, the neighbour queue.
        DropReason.FragmentationNeeded, DropReason.MtuExceeded, DropReason.PortDown, DropReason.PoolExhausted,
        DropReason.IcmpRateLimited, DropReason.RouterConsumed, DropReason.GsoUnsupported,
        DropReason.NeighborQueueFull, DropReason.NeighborUnresolved,
        // Conntrack's commit: the table full, no port left for a source NAT; policy's verdict.
        DropReason.ConntrackFull, DropReason.NatPortsExhausted, DropReason.PolicyDenied, DropReason.CtInvalid,
        // IPv6: packet too big, and neighbour discovery the router refused (NdResponder.Reasons).
        DropReason.PacketTooBig, DropReason.NdBadHopLimit, DropReason.NdMalformed, DropReason.NdUnsolicitedNa,
    ];

    public override void Process(PacketBatch batch, DatapathContext ctx)
    {
        var items = batch.Items;
        int n = batch.Count;
        for (int i = 0; i < n; i++)
        {
            var p = items[i];
            var actions = p.Flow?.Actions ?? [];
            if (p.Trace is { } t) TraceActions(t, actions, ctx);
            Execute(p, actions, ctx);
        }
        batch.Clear();
    }

    // Kept out of Process: a lambda there would allocate its closure on every call, traced or not.
    private void TraceActions(PacketTrace t, FlowAction[] actions, DatapathContext ctx)
    {
        var topo = ctx.Topology;
        t.Add(Name, actions.Length == 0 ? "no actions" : FlowAction.Format(actions, id => topo.Port(id)?.Name));
    }

    /// <summary>Actions that hand the packet on (or consume it); the last one takes the packet itself, earlier ones a copy.</summary>
    public static bool IsTerminal(ActionKind k) => k is ActionKind.Output or ActionKind.Flood or ActionKind.InPort
        or ActionKind.ArpReply or ActionKind.EchoReply or ActionKind.IcmpError or ActionKind.Resolve or ActionKind.Consume or ActionKind.Ndp;

    public static void Execute(Packet p, FlowAction[] actions, DatapathContext ctx)
    {
        int last = -1;
        for (int i = actions.Length - 1; i >= 0; i--)
            if (IsTerminal(actions[i].Kind)) { last = i; break; }
        if (last < 0)
        {
            var reason = actions.Length > 0 && actions[0].Kind == ActionKind.Drop ? actions[0].DropReason : DropReason.NoOutput;
            ctx.Drop(p, reason);
            return;
        }
        var topo = ctx.Topology;
        for (int i = 0; i <= last; i++)
        {
            var a = actions[i];
            switch (a.Kind)
            {
                case ActionKind.Output:
                case ActionKind.InPort:
                {
                    int id = a.Kind == ActionKind.InPort ? p.InPort : a.Port;
                    var port = topo.Port(id);
                    Packet? out_ = i == last ? p : Clone(p, ctx);
                    if (out_ is null) break;
                    if (port is null) ctx.Drop(out_, DropReason.PortDown);
                    else
                    {
                        if (a.Value != 0)
                        {
                            out_.TunnelId = (uint)(a.Value >> 32);
                            out_.TunnelRemote = (uint)a.Value;
                        }
                        Send(out_, port, ctx);
                    }
                    break;
                }
                case ActionKind.Flood:
                    if (i == last) Flood(p, a.Port, topo, ctx);
                    else if (Clone(p, ctx) is { } c) Flood(c, a.Port, topo, ctx);
                    break;
                case ActionKind.ArpReply:
                case ActionKind.EchoReply:
                {
                    var port = topo.Port(p.InPort);
                    bool ok = a.Kind == ActionKind.ArpReply ? RouterPackets.ArpReplyInPlace(p, a.Value) : RouterPackets.EchoReplyInPlace(p, a.Value);
                    if (!ok || port is null) ctx.Drop(p, DropReason.NotRoutable);
                    else Send(p, port, ctx);
                    return;
                }
                case ActionKind.IcmpError:
                    ctx.SendIcmpError(p, (byte)(a.Port >> 8), (byte)a.Port, (ushort)a.Value);
                    ctx.Drop(p, (DropReason)(a.Value >> 32));
                    return;
                case ActionKind.Resolve:
                    ctx.HoldForNeighbor(p, (ushort)a.Port, (uint)a.Value);
                    return;
                case ActionKind.Ndp:
                    NdResponder.Handle(p, ctx);
                    return;
                case ActionKind.Consume:
                    ctx.CountDrop(DropReason.RouterConsumed);
                    p.Trace?.Add("actions", "consumed by the router");
                    p.Release();
                    return;
                case ActionKind.CheckMtu:
                    // A super-frame is checked by the segments it stands for, as the kernel does.
                    if ((p.GsoSize == 0 ? p.Length - 14 : Ports.Offload.GsoFrame.NetworkLength(p, 14)) > (int)a.Value)
                    {
                        if (p.Key.IsIPv6)
                        {
                            // IPv6 routers never fragment (RFC 8200 §5): packet too big, whatever the packet says.
                            ctx.SendIcmpError(p, Router6.IcmpPacketTooBig, 0, (ushort)a.Value);
                            ctx.Drop(p, DropReason.PacketTooBig);
                        }
                        else if (RouterPackets.DontFragment(p))
                        {
                            ctx.SendIcmpError(p, Router.IcmpUnreachable, Router.CodeFragNeeded, (ushort)a.Value);
                            ctx.Drop(p, DropReason.FragmentationNeeded);
                        }
                        else ctx.Drop(p, DropReason.MtuExceeded);
                        return;
                    }
                    break;
                case ActionKind.SetDlSrc:
                    MacAddress.Write(p.Data[6..], a.Value);
                    break;
                case ActionKind.SetDlDst:
                    MacAddress.Write(p.Data, a.Value);
                    break;
                case ActionKind.SetVlan:
                    p.Vlan = (ushort)a.Value;
                    break;
                case ActionKind.StripVlan:
                    p.Vlan = 0;
                    break;
                case ActionKind.SetTunnel:
                    p.TunnelId = (uint)a.Value;
                    break;
                case ActionKind.DecTtl:
                    if (!DecrementTtl(p)) { ctx.Drop(p, DropReason.TtlExpired); return; }
                    break;
                case ActionKind.CtCommit:
                    if (!ConntrackCommit.Commit(p, (uint)a.Value, ctx)) return;
                    break;
            }
        }
    }

    private static Packet? Clone(Packet p, DatapathContext ctx)
    {
        // From the packet's own pool: a super-frame needs a large buffer like the one it is in.
        var copy = p.Pool.TryRent();
        if (copy is null) { ctx.CountDrop(DropReason.PoolExhausted); return null; }
        copy.CopyFrom(p);
        return copy;
    }

    /// <summary>TTL or hop limit minus one, with the IPv4 checksum patched (RFC 1624). False when it would reach zero.</summary>
    public static bool DecrementTtl(Packet p)
    {
        var d = p.Data;
        if (p.Key.IsIPv4 && d.Length >= 34)
        {
            byte ttl = d[22];
            if (ttl <= 1) return false;
            ushort oldWord = BinaryPrimitives.ReadUInt16BigEndian(d[22..]);
            d[22] = (byte)(ttl - 1);
            ushort newWord = BinaryPrimitives.ReadUInt16BigEndian(d[22..]);
            ushort sum = BinaryPrimitives.ReadUInt16BigEndian(d[24..]);
            BinaryPrimitives.WriteUInt16BigEndian(d[24..], Checksum.Update(sum, oldWord, newWord));
            return true;
        }
        if (p.Key.IsIPv6 && d.Length >= 54)
        {
            if (d[21] <= 1) return false;
            d[21]--;
        }
        return true;
    }

    /// <summary>Queues a frame for a port, tagging it for a trunk when its VLAN is not the native one.</summary>
    public static void Send(Packet p, SwitchPort port, DatapathContext ctx)
    {
        if (port.IsTunnel)
        {
            // The inner frame leaves untagged: the VNI stands for the network (and its VLAN).
            if (p.TunnelRemote == 0) { ctx.Drop(p, DropReason.NoTunnelPort); return; }
            ctx.Enqueue(p, port);
            return;
        }
        if (port.Mode == VlanMode.Trunk && p.Vlan != port.NativeVlan)
        {
            if (p.Headroom < 4) { ctx.Drop(p, DropReason.PoolExhausted); return; }
            VlanOps.PushTag(p, p.Vlan, (byte)(p.Key.VlanPcp & 7));
        }
        ctx.Enqueue(p, port);
    }

    /// <summary>
    /// Floods in network <paramref name="networkId"/>, or (0) in the frame's ingress network: to
    /// every other local port carrying its VLAN and, on a VXLAN network, to every remote VTEP
    /// (head-end replication) unless the frame came from the tunnel (split horizon).
    /// </summary>
    public static void Flood(Packet p, int networkId, SwitchTopology topo, DatapathContext ctx)
    {
        var inPort = topo.Port(p.InPort);
        bool fromTunnel = inPort is { IsTunnel: true };
        if (networkId == 0)
        {
            var net0 = inPort is null ? null : topo.IngressNetwork(inPort, p.TunnelId);
            if (net0 is null) { ctx.Drop(p, DropReason.PortDown); return; }
            networkId = net0.Id;
        }
        var net = topo.Network((ushort)networkId);
        p.Trace?.Add("actions", $"flood in network {net?.Name ?? "#" + networkId}, VLAN {p.Vlan}"
            + (fromTunnel ? " (from the tunnel: local ports only)" : ""));
        int replicated = 0;
        if (net is { Vni: uint vni } && !fromTunnel && topo.TunnelPort is { } tunnel)
        {
            var vteps = net.Vteps;
            for (int v = 0; v < vteps.Length; v++)
            {
                if (Clone(p, ctx) is not { } copy) continue;
                copy.TunnelId = vni;
                copy.TunnelRemote = vteps[v];
                ctx.Enqueue(copy, tunnel);
                replicated++;
            }
        }
        var members = topo.Members((ushort)networkId);
        // The last eligible port gets the original, the others get copies.
        int last = -1;
        for (int i = members.Length - 1; i >= 0; i--)
        {
            var m = members[i];
            if (m.Id != p.InPort && m.Carries(p.Vlan)) { last = i; break; }
        }
        if (last < 0)
        {
            // Only remote VTEPs (or nobody) to flood to: the copies went, the original is done.
            if (replicated > 0) p.Release();
            else ctx.Drop(p, DropReason.NoOutput);
            return;
        }
        for (int i = 0; i < last; i++)
        {
            var m = members[i];
            if (m.Id == p.InPort || !m.Carries(p.Vlan)) continue;
            if (Clone(p, ctx) is { } copy) Send(copy, m, ctx);
        }
        Send(p, members[last], ctx);
    }
}
