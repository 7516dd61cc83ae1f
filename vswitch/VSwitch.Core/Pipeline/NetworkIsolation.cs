using VSwitch.Core.Flow;
using VSwitch.Core.Tables;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Pipeline;

/// <summary>What lets the router route a packet from its ingress network to its destination, or that nothing does.</summary>
public enum RoutingPermission : byte
{
    /// <summary>Nothing allows it: dropped and counted as <see cref="DropReason.NetworkIsolated"/>.</summary>
    Isolated,
    /// <summary>The destination is in the ingress network itself (or its gateway).</summary>
    SameNetwork,
    /// <summary>The two networks are connected (<c>vsctl network connect A B</c>).</summary>
    Connected,
    /// <summary>The destination is behind a static route: the operator's route is open to every network.</summary>
    StaticRoute,
    /// <summary>The source is behind a static route through the ingress network: the way back to whoever reached it.</summary>
    FromStaticRoute,
    /// <summary>
    /// The answer of a tracked connection (ct_state +trk+rpl): it was allowed when it opened. The host
    /// steers every masquerade reply to one host port, so a reply for a container of another network
    /// comes in on that port's network.
    /// </summary>
    TrackedReply,
    /// <summary>A network policy rule names this destination (or, for an answer, this source) explicitly.</summary>
    Policy,
}

/// <summary>
/// Isolation between networks, as Docker isolates its networks: the router forwards a packet from
/// network A into network B's subnet (or to B's gateway address) only when A and B are connected,
/// or a static route explains it. Decided once, in the slow path, and cached with the flow like
/// every routing decision; connecting or disconnecting publishes a new topology, which invalidates
/// the cached flows. Whose destination is what:
/// <list type="bullet">
/// <item>an address in B's subnet (B's connected route), or B's gateway address, belongs to B;</item>
/// <item>a prefix of a static route (via or dev) belongs to no network: it is beyond the router,
/// and every network may reach it (the router has one table, as Docker's host has);</item>
/// <item>a packet whose source lies behind a static route through its ingress network (a reply from
/// there, or a host of a remote subnet in a routed overlay) may reach every network.</item>
/// </list>
/// A VXLAN network's remote hosts share its subnet, so they are the network's own.
/// </summary>
public static class NetworkIsolation
{
    /// <param name="owner">The network the destination belongs to; null for the prefix of a static route.</param>
    public static RoutingPermission Check(in FlowKey key, Network ingress, Network? owner, Datapath dp, SwitchTopology topo)
    {
        if (owner is null) return RoutingPermission.StaticRoute;
        if (owner.Id == ingress.Id) return RoutingPermission.SameNetwork;
        if (((CtState)key.CtState & (CtState.Tracked | CtState.Reply)) == (CtState.Tracked | CtState.Reply))
            return RoutingPermission.TrackedReply;
        if (topo.Connections.Connected(ingress.Id, owner.Id)) return RoutingPermission.Connected;
        if (BehindStaticRoute(in key, ingress, dp.Routes)) return RoutingPermission.FromStaticRoute;
        // "Or a policy allows it": a rule that lets this source reach this destination (or, for an
        // answer of a tracked connection, the other way round) opens the path for that traffic only.
        if (dp.Admission is { } policy && policy.OpensPath(in key)) return RoutingPermission.Policy;
        return RoutingPermission.Isolated;
    }

    /// <summary>
    /// Applies <see cref="Check"/>: true when the packet may go on; otherwise adds the drop to the
    /// flow's actions and says why in the trace.
    /// </summary>
    public static bool Allow(in FlowKey key, Network ingress, Network? owner, Datapath dp, SwitchTopology topo,
        List<FlowAction> scratch, PacketTrace? trace)
    {
        var permission = Check(in key, ingress, owner, dp, topo);
        switch (permission)
        {
            case RoutingPermission.Connected:
                trace?.Add("router", $"networks {ingress.Name} and {owner!.Name} are connected: routing between them is allowed");
                return true;
            case RoutingPermission.StaticRoute:
                trace?.Add("router", "the destination is behind a static route: every network may reach it");
                return true;
            case RoutingPermission.FromStaticRoute:
                trace?.Add("router", $"source {(key.IsIPv6 ? AddressFormat.IPv6(key.NwSrc) : AddressFormat.IPv4((uint)key.NwSrc))} is behind a static route through {ingress.Name}: allowed into {owner!.Name}");
                return true;
            case RoutingPermission.TrackedReply:
                trace?.Add("router", $"the answer of a tracked connection (ct_state +rpl): allowed into {owner!.Name}");
                return true;
            case RoutingPermission.Policy:
                trace?.Add("router", $"networks {ingress.Name} and {owner!.Name} are not connected, but a network policy allows this traffic: routed");
                return true;
            case RoutingPermission.Isolated:
                trace?.Add("router", $"network {ingress.Name} is isolated from {owner!.Name} (not connected: vsctl network connect {ingress.Name} {owner.Name}, or a policy): drop (network-isolated)");
                scratch.Add(FlowAction.Drop(DropReason.NetworkIsolated));
                return false;
            default:
                return true;
        }
    }

    /// <summary>True when the longest route to <paramref name="source"/> is a static one with a path through <paramref name="ingress"/>.</summary>
    private static bool BehindStaticRoute(in FlowKey key, Network ingress, RouteTable routes)
    {
        if ((key.IsIPv6 ? routes.Paths6(key.NwSrc) : routes.Paths((uint)key.NwSrc)) is not { } paths) return false;
        foreach (var p in paths)
            if (p.Kind != RouteKind.Connected && p.Network == ingress.Id) return true;
        return false;
    }
}
