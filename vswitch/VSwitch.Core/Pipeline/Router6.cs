using VSwitch.Core.Flow;
using VSwitch.Core.Tables;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// The router's IPv6 slow path, next to <see cref="Router"/>'s IPv4 one: neighbour discovery to the
/// router goes to <see cref="NdResponder"/> (never cached: each message may teach a neighbour and is
/// answered from fields outside the flow key); ping to its addresses is answered; everything else is
/// routed as RFC 8200 and RFC 4443 want: longest-prefix match in the IPv6 FIB, hop limit minus one,
/// next hop resolved by neighbour solicitation, Ethernet rewritten, and ICMPv6 errors for an expired
/// hop limit, no route, an unreachable neighbour, and a packet too big for the egress MTU (IPv6
/// routers never fragment). The decision becomes the flow's actions, as for IPv4.
/// </summary>
public static class Router6
{
    public const byte IcmpUnreachable = 1, IcmpPacketTooBig = 2, IcmpTimeExceeded = 3;
    public const byte CodeNoRoute = 0, CodeAddressUnreachable = 3;

    /// <summary>Link-scope multicast ND the router must see as well as the hosts: NS (its addresses' groups), NA, RS.</summary>
    public static bool HandlesMulticast(in FlowKey key, RouterInterface r) =>
        r.HasIPv6 && key.NwProto == IpProtocols.IcmpV6 && key.NwFrag == 0
        && key.TpSrc is Ndp.RouterSolicitation or Ndp.NeighborSolicitation or Ndp.NeighborAdvertisement
        && Ndp.IsLinkLocalMulticast(key.NwDst);

    private static bool IsNd(in FlowKey key) =>
        key.NwProto == IpProtocols.IcmpV6 && key.NwFrag == 0 && key.TpSrc is >= Ndp.RouterSolicitation and <= Ndp.Redirect;

    public static void Route(in FlowKey key, SwitchPort port, Network net, Datapath dp, SwitchTopology topo, long nowMs,
        FlowEntry result, List<FlowAction> scratch, bool sideEffects, PacketTrace? trace)
    {
        var r = net.Router!;
        if (!r.HasIPv6)
        {
            trace?.Add("router", $"network {net.Name} has no IPv6 subnet (subnet6): IPv6 to the router MAC is not routed: drop");
            scratch.Add(FlowAction.Drop(DropReason.NotRoutable));
            return;
        }
        UInt128 dst = key.NwDst, src = key.NwSrc;
        if (IsNd(in key))
        {
            result.NoCache = true;
            if (MacAddress.IsMulticast(key.DlDst))
            {
                // The group's hosts need it too: the bridge floods a copy, the router reads the original.
                trace?.Add("router", $"ND type {key.TpSrc} to {AddressFormat.IPv6(dst)}: flood in {net.Name}, and the router reads it");
                scratch.Add(FlowAction.Flood);
            }
            else trace?.Add("router", $"ND type {key.TpSrc} to the router ({AddressFormat.IPv6(dst)}): the router reads it");
            scratch.Add(new FlowAction(ActionKind.Ndp));
            return;
        }
        if (Ndp.IsMulticast(dst))
        {
            trace?.Add("router", $"multicast {AddressFormat.IPv6(dst)} to the router MAC: the router does not route multicast: drop");
            scratch.Add(FlowAction.Drop(DropReason.NotRoutable));
            return;
        }
        var owner = r.Owns6(dst) ? net : RouterAddressOwner6(topo, dst);
        if (owner is not null)
        {
            if (!NetworkIsolation.Allow(in key, net, owner, dp, topo, scratch, trace)) return;
            if (key.NwProto == IpProtocols.IcmpV6 && key.TpSrc == IcmpV6Header.EchoRequest)
            {
                trace?.Add("router", $"echo request to the router's address {AddressFormat.IPv6(dst)}: echo reply");
                scratch.Add(new FlowAction(ActionKind.EchoReply, Value: r.Mac));
            }
            else
            {
                trace?.Add("router", $"packet to the router's own address {AddressFormat.IPv6(dst)} (next header {key.NwProto}): consumed");
                scratch.Add(new FlowAction(ActionKind.Consume));
            }
            return;
        }
        // Link-local addresses are valid on one link only (RFC 4291 §2.5.6): never forwarded either way.
        if (Ndp.IsLinkLocal(dst) || Ndp.IsLinkLocal(src) || src == UInt128.Zero || Ndp.IsMulticast(src))
        {
            trace?.Add("router", $"{AddressFormat.IPv6(src)} -> {AddressFormat.IPv6(dst)}: link-local, unspecified or multicast addresses are not forwarded: drop");
            scratch.Add(FlowAction.Drop(DropReason.NotRoutable));
            return;
        }
        if (key.NwTtl <= 1)
        {
            trace?.Add("router", $"hop limit {key.NwTtl} expires here: ICMPv6 time exceeded to {AddressFormat.IPv6(src)}");
            scratch.Add(Router.IcmpError(IcmpTimeExceeded, 0, DropReason.TtlExpired));
            return;
        }
        var hop = dp.Routes.Lookup6(dst, key.Hash64());
        var egress = hop is null ? null : topo.Network(hop.Network);
        if (hop is null || egress?.Router is not { HasIPv6: true })
        {
            trace?.Add("router", $"no route to {AddressFormat.IPv6(dst)}: ICMPv6 destination unreachable (no route)");
            scratch.Add(Router.IcmpError(IcmpUnreachable, CodeNoRoute, DropReason.NoRoute));
            return;
        }
        UInt128 nh = hop.Kind == RouteKind.Via ? hop.Gateway6 : dst;
        trace?.Add("router", $"route to {AddressFormat.IPv6(dst)}: {Router.Describe(hop, egress)}, next hop {AddressFormat.IPv6(nh)}");
        if (!NetworkIsolation.Allow(in key, net, hop.Kind == RouteKind.Connected ? egress : null, dp, topo, scratch, trace)) return;
        var neighbor = dp.Neighbors6.Lookup(egress.Id, nh);
        if (neighbor is null || neighbor.State == NeighborState.Incomplete)
        {
            trace?.Add("router", $"neighbour {AddressFormat.IPv6(nh)} on {egress.Name} is {(neighbor is null ? "unknown" : "incomplete")}: hold the packet and send a neighbour solicitation");
            // Value 0: the hold finds the next hop again from the packet (128 bits do not fit an action).
            scratch.Add(new FlowAction(ActionKind.Resolve, egress.Id, 0));
            return;
        }
        if (neighbor.State == NeighborState.Failed)
        {
            trace?.Add("router", $"neighbour {AddressFormat.IPv6(nh)} on {egress.Name} did not answer: ICMPv6 address unreachable");
            scratch.Add(Router.IcmpError(IcmpUnreachable, CodeAddressUnreachable, DropReason.NeighborUnresolved));
            return;
        }
        if (sideEffects) dp.Neighbors6.Used(neighbor, nowMs);
        trace?.Add("router", $"neighbour {AddressFormat.IPv6(nh)} is at {MacAddress.Format(neighbor.Mac)} ({neighbor.State.ToString().ToLowerInvariant()})");
        Router.Forward(net, egress, neighbor.Mac, dp, topo, nowMs, result, scratch, trace);
    }

    /// <summary>The next hop a routed IPv6 packet waits for (the hold asks again rather than carry 128 bits in the action); 0 when the route went away.</summary>
    public static UInt128 NextHop(in FlowKey key, Datapath dp)
    {
        var hop = dp.Routes.Lookup6(key.NwDst, key.Hash64());
        if (hop is null) return UInt128.Zero;
        return hop.Kind == RouteKind.Via ? hop.Gateway6 : key.NwDst;
    }

    /// <summary>The network whose IPv6 gateway <paramref name="address"/> is (link-local addresses belong to their own link only), or null.</summary>
    public static Network? RouterAddressOwner6(SwitchTopology topo, UInt128 address)
    {
        var nets = topo.NetworkArray;
        for (int i = 0; i < nets.Length; i++)
            if (nets[i].Router is { HasIPv6: true } r && r.Address6 == address) return nets[i];
        return null;
    }
}
