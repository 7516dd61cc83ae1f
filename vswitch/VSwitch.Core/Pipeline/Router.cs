using VSwitch.Core.Flow;
using VSwitch.Core.Tables;
using VSwitch.Core.Tables.Conntrack;
using VSwitch.Core.Tables.Rules;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// The router's slow path: what happens to a frame sent to the router (its MAC, or an ARP request
/// for its address) on a network that has a gateway. It answers ARP and ping for its own
/// addresses, learns neighbours from ARP, and routes IPv4: longest-prefix match, next hop,
/// neighbour, then rewrite Ethernet, decrement TTL and output; ICMP errors where RFC 1812 wants them.
/// The decision becomes the flow's actions, so routed flows run from the flow cache like bridged ones.
/// Networks are isolated from each other unless connected (<see cref="NetworkIsolation"/>).
/// </summary>
public static class Router
{
    public const byte IcmpUnreachable = 3, IcmpTimeExceeded = 11;
    public const byte CodeNet = 0, CodeHost = 1, CodeFragNeeded = 4;

    /// <summary>Whether the router, not the bridge, handles this frame.</summary>
    public static bool Handles(in FlowKey key, Network net, ulong dlDst) =>
        net.Router is { } r && (dlDst == r.Mac || (key.IsArp && key.NwProto == 1 && (uint)key.NwDst == r.Address)
            || (key.IsIPv6 && Router6.HandlesMulticast(in key, r)));

    public static void Route(in FlowKey key, SwitchPort port, Network net, Datapath dp, SwitchTopology topo, long nowMs,
        FlowEntry result, List<FlowAction> scratch, bool sideEffects, PacketTrace? trace)
    {
        var r = net.Router!;
        result.Routed = true; // the routes and the neighbours now count for this flow
        if (key.IsArp)
        {
            Arp(in key, net, r, dp, nowMs, result, scratch, sideEffects, trace);
            return;
        }
        if (key.IsIPv6)
        {
            Router6.Route(in key, port, net, dp, topo, nowMs, result, scratch, sideEffects, trace);
            return;
        }
        if (!key.IsIPv4)
        {
            trace?.Add("router", $"ethertype 0x{key.DlType:x4} to the router MAC is not routed: drop");
            scratch.Add(FlowAction.Drop(DropReason.NotRoutable));
            return;
        }
        uint dst = (uint)key.NwDst;
        if (topo.RouterAddressOwner(dst) is { } gatewayOf)
        {
            // Another network's gateway address is that network's: isolated like its hosts.
            if (!NetworkIsolation.Allow(in key, net, gatewayOf, dp, topo, scratch, trace)) return;
            if (key.NwProto == IpProtocols.Icmp && key.TpSrc == 8)
            {
                trace?.Add("router", $"echo request to the router's address {AddressFormat.IPv4(dst)}: echo reply");
                scratch.Add(new FlowAction(ActionKind.EchoReply, Value: r.Mac));
            }
            else
            {
                trace?.Add("router", $"packet to the router's own address {AddressFormat.IPv4(dst)} (protocol {key.NwProto}): consumed");
                scratch.Add(new FlowAction(ActionKind.Consume));
            }
            return;
        }
        if (key.NwTtl <= 1)
        {
            trace?.Add("router", $"TTL {key.NwTtl} expires here: ICMP time exceeded to {AddressFormat.IPv4((uint)key.NwSrc)}");
            scratch.Add(IcmpError(IcmpTimeExceeded, 0, DropReason.TtlExpired));
            return;
        }
        var hop = dp.Routes.Lookup(dst, key.Hash64());
        var egress = hop is null ? null : topo.Network(hop.Network);
        if (hop is null && dp.NorthSouth.For(net.Id) is { } host)
        {
            ToHost(in key, port, net, host, dp, topo, nowMs, result, scratch, trace);
            return;
        }
        if (hop is null || egress?.Router is null)
        {
            trace?.Add("router", $"no route to {AddressFormat.IPv4(dst)}: ICMP net unreachable");
            scratch.Add(IcmpError(IcmpUnreachable, CodeNet, DropReason.NoRoute));
            return;
        }
        uint nh = hop.Kind == RouteKind.Via ? hop.Gateway : dst;
        trace?.Add("router", $"route to {AddressFormat.IPv4(dst)}: {Describe(hop, egress)}, next hop {AddressFormat.IPv4(nh)}");
        // Before the neighbour: an isolated packet sends no ARP into the other network either.
        if (!NetworkIsolation.Allow(in key, net, hop.Kind == RouteKind.Connected ? egress : null, dp, topo, scratch, trace)) return;
        Forward(net, egress, nh, dp, topo, nowMs, result, scratch, trace);
    }

    /// <summary>
    /// A destination outside every switch network, from a network with a host port: out through the
    /// host (its routing table decides the way on), to the host port's address as the next hop. A new
    /// TCP or UDP connection is masqueraded when the network says so: ct(commit,nat(src=A)) with A the
    /// host's own source address towards the destination (as netfilter's MASQUERADE picks it).
    /// </summary>
    private static void ToHost(in FlowKey key, SwitchPort port, Network net, HostEgress host, Datapath dp, SwitchTopology topo, long nowMs,
        FlowEntry result, List<FlowAction> scratch, PacketTrace? trace)
    {
        uint dst = (uint)key.NwDst;
        string hostPort = topo.Port(host.PortId)?.Name ?? host.PortId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (port.Id == host.PortId)
        {
            // The host sent it here, and would send it back: a loop until the TTL runs out (a stray
            // reply to a masquerade port whose connection is gone).
            trace?.Add("router", $"{AddressFormat.IPv4(dst)} came from the host port {hostPort} and is not a switch address: drop (no-route)");
            scratch.Add(FlowAction.Drop(DropReason.NoRoute));
            return;
        }
        trace?.Add("router", $"{AddressFormat.IPv4(dst)} is outside every switch network: out through the host port {hostPort} of {net.Name}, next hop {AddressFormat.IPv4(host.NextHop)}");
        var ct = (CtState)key.CtState;
        bool isNew = (ct & (CtState.Tracked | CtState.New)) == (CtState.Tracked | CtState.New);
        if (host.Masquerade && isNew)
        {
            if (key.NwProto is IpProtocols.Tcp or IpProtocols.Udp)
            {
                var ns = dp.NorthSouth;
                uint src = ns.Sources?.SourceFor(dst) ?? 0;
                if (src == 0)
                {
                    trace?.Add("nat", $"the host has no route to {AddressFormat.IPv4(dst)}, so no address to masquerade behind: ICMP net unreachable");
                    scratch.Add(IcmpError(IcmpUnreachable, CodeNet, DropReason.NoRoute));
                    return;
                }
                trace?.Add("nat", $"masquerade: the new connection leaves behind the host's address {AddressFormat.IPv4(src)}, source port from {ns.PortLow}-{ns.PortHigh}");
                scratch.Add(FlowAction.CtCommitSnat(src));
            }
            else trace?.Add("nat", $"protocol {key.NwProto} is not masqueraded (TCP and UDP are): it leaves with its own source address");
        }
        Forward(net, net, host.NextHop, dp, topo, nowMs, result, scratch, trace);
    }

    /// <summary>The next hop's MAC, then rewrite, TTL and output into <paramref name="egress"/>.</summary>
    private static void Forward(Network net, Network egress, uint nh, Datapath dp, SwitchTopology topo, long nowMs, FlowEntry result, List<FlowAction> scratch, PacketTrace? trace)
    {
        var neighbor = dp.Neighbors.Lookup(egress.Id, nh);
        if (neighbor is null || neighbor.State == NeighborState.Incomplete)
        {
            trace?.Add("router", $"neighbour {AddressFormat.IPv4(nh)} on {egress.Name} is {(neighbor is null ? "unknown" : "incomplete")}: hold the packet and send an ARP request");
            scratch.Add(new FlowAction(ActionKind.Resolve, egress.Id, nh));
            return;
        }
        if (neighbor.State == NeighborState.Failed)
        {
            trace?.Add("router", $"neighbour {AddressFormat.IPv4(nh)} on {egress.Name} failed to answer: ICMP host unreachable");
            scratch.Add(IcmpError(IcmpUnreachable, CodeHost, DropReason.NeighborUnresolved));
            return;
        }
        ulong mac = neighbor.Mac;
        trace?.Add("router", $"neighbour {AddressFormat.IPv4(nh)} is at {MacAddress.Format(mac)} ({neighbor.State.ToString().ToLowerInvariant()})");
        Forward(net, egress, mac, dp, topo, nowMs, result, scratch, trace);
    }

    /// <summary>The actions of a routed packet whose next hop's MAC is known (both families): MTU check, rewrite, hop count, then the bridge's way out of the egress network.</summary>
    internal static void Forward(Network net, Network egress, ulong mac, Datapath dp, SwitchTopology topo, long nowMs,
        FlowEntry result, List<FlowAction> scratch, PacketTrace? trace)
    {
        scratch.Add(new FlowAction(ActionKind.CheckMtu, net.Id, (ulong)egress.Mtu));
        scratch.Add(new FlowAction(ActionKind.SetDlSrc, Value: egress.Router!.Mac));
        scratch.Add(new FlowAction(ActionKind.SetDlDst, Value: mac));
        scratch.Add(new FlowAction(ActionKind.DecTtl));
        scratch.Add(new FlowAction(ActionKind.SetVlan, Value: egress.Vlan));
        SlowPath.DependOnMac(result, dp.MacTable, egress.Id, egress.Vlan, mac);
        int outPort = dp.MacTable.Lookup(egress.Id, egress.Vlan, mac, nowMs, out uint remote);
        if (outPort >= 0 && topo.Port(outPort) is { IsTunnel: true })
        {
            trace?.Add("tunnel", $"{MacAddress.Format(mac)} is behind VTEP {AddressFormat.IPv4(remote)}: encapsulate in VXLAN VNI {egress.Vni}");
            scratch.Add(FlowAction.Tunnel(outPort, egress.Vni ?? 0, remote));
        }
        else if (outPort >= 0)
        {
            trace?.Add("bridge", $"{MacAddress.Format(mac)} learned on {topo.Port(outPort)?.Name ?? outPort.ToString()} in {egress.Name}: output");
            scratch.Add(FlowAction.Output(outPort));
        }
        else
        {
            trace?.Add("bridge", $"{MacAddress.Format(mac)} not in the MAC table of {egress.Name}: flood there");
            scratch.Add(new FlowAction(ActionKind.Flood, egress.Id));
        }
    }

    private static void Arp(in FlowKey key, Network net, RouterInterface r, Datapath dp, long nowMs,
        FlowEntry result, List<FlowAction> scratch, bool sideEffects, PacketTrace? trace)
    {
        // ARP is never cached: each one may teach the router a neighbour.
        result.NoCache = true;
        uint spa = (uint)key.NwSrc, tpa = (uint)key.NwDst;
        bool senderOnLink = spa != 0 && r.OnLink(spa) && !MacAddress.IsMulticast(key.ArpSha);
        if (key.NwProto == 1 && tpa == r.Address)
        {
            if (sideEffects && senderOnLink) dp.Neighbors.Confirm(net.Id, spa, key.ArpSha, nowMs, create: true);
            trace?.Add("router", $"ARP request for the gateway {AddressFormat.IPv4(tpa)} from {AddressFormat.IPv4(spa)}: reply with {MacAddress.Format(r.Mac)}");
            scratch.Add(new FlowAction(ActionKind.ArpReply, Value: r.Mac));
            return;
        }
        if (sideEffects && senderOnLink) dp.Neighbors.Confirm(net.Id, spa, key.ArpSha, nowMs, create: key.NwProto == 2 && tpa == r.Address);
        trace?.Add("router", $"ARP {(key.NwProto == 2 ? "reply" : "op " + key.NwProto)} from {AddressFormat.IPv4(spa)} ({MacAddress.Format(key.ArpSha)}): learned, consumed");
        scratch.Add(new FlowAction(ActionKind.Consume));
    }

    internal static FlowAction IcmpError(byte type, byte code, DropReason reason, uint mtu = 0) =>
        new(ActionKind.IcmpError, type << 8 | code, (ulong)reason << 32 | mtu);

    internal static string Describe(NextHop hop, Network egress) => hop.Kind switch
    {
        RouteKind.Connected => $"connected on {egress.Name}",
        RouteKind.Via when hop.Gateway6 != UInt128.Zero => $"via {AddressFormat.IPv6(hop.Gateway6)} on {egress.Name}",
        RouteKind.Via => $"via {AddressFormat.IPv4(hop.Gateway)} on {egress.Name}",
        _ => $"dev {egress.Name}",
    };
}
