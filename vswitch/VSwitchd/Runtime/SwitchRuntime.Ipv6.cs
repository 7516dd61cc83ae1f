using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using VSwitch.Api;
using VSwitch.Core.Tables;
using VSwitch.Core.Wire;
using VSwitchd.Config;

namespace VSwitchd.Runtime;

/// <summary>
/// IPv6 in the runtime: a dual-stack network's gateway, static IPv6 routes and neighbours, the
/// IPv6 neighbour timers and the periodic router advertisements (RFC 4861 §6.2.4).
/// </summary>
public sealed partial class SwitchRuntime
{
    // RFC 4861 §6.2.1 and §10, VPP's ip6-nd defaults: the first 3 advertisements 16 s apart, then
    // at a random interval between 200 and 600 s.
    private const int InitialAdvertisements = 3;
    private const long InitialAdvertIntervalMs = 16_000, MinAdvertIntervalMs = 200_000, MaxAdvertIntervalMs = 600_000;
    private readonly Dictionary<ushort, (long DueMs, int Sent, ulong Router)> _advertSchedule = [];

    /// <summary>A network's IPv6 gateway and prefix length from its subnet6 and gateway6 (default: the subnet's ::1); (0, 0) when it has none.</summary>
    private static (UInt128 Gateway, int Prefix) Gateway6(NetworkConfig n)
    {
        if (n.Subnet6 is null) return (UInt128.Zero, 0);
        var subnet = IPNetwork.Parse(n.Subnet6);
        var gw = n.Gateway6 is not null ? IPAddress.Parse(n.Gateway6) : FirstHost(subnet);
        return (BinaryPrimitives.ReadUInt128BigEndian(gw.GetAddressBytes()), subnet.PrefixLength);
    }

    public static bool IsIPv6Text(string s) => s.Contains(':');

    public static (UInt128 Address, int Length) ParsePrefix6(string prefix)
    {
        if (!IPNetwork.TryParse(prefix, out var net) || net.BaseAddress.AddressFamily != AddressFamily.InterNetworkV6)
            throw new InvalidRequestException($"prefix: '{prefix}' is not an IPv6 prefix (e.g. fd00:9::/64)");
        return (BinaryPrimitives.ReadUInt128BigEndian(net.BaseAddress.GetAddressBytes()), net.PrefixLength);
    }

    public static UInt128 ParseIPv6(string ip, string field)
    {
        if (!IPAddress.TryParse(ip, out var a) || a.AddressFamily != AddressFamily.InterNetworkV6)
            throw new InvalidRequestException($"{field}: '{ip}' is not an IPv6 address");
        return BinaryPrimitives.ReadUInt128BigEndian(a.GetAddressBytes());
    }

    public static string FormatPrefix6(UInt128 addr, int len) => AddressFormat.IPv6(addr) + "/" + len;

    /// <summary>An IPv6 static route: <c>prefix via GATEWAY6</c> (on a dual-stack network) or <c>prefix dev NETWORK</c>; a second path makes ECMP.</summary>
    private void AddRoute6(string prefix, string? via, string? dev, bool persist)
    {
        var (addr, len) = ParsePrefix6(prefix);
        if (persist && !Datapath.Routes.Routes6().Any(r => r.Prefix == addr && r.Length == len)) EnsureRouteRoom();
        NextHop hop;
        var topo = Datapath.Topology;
        if (via is not null && dev is null)
        {
            UInt128 gw = ParseIPv6(via, "via");
            var net = topo.Networks.FirstOrDefault(n => n.Router is { HasIPv6: true } r && r.OnLink6(gw))
                ?? throw new InvalidRequestException($"via {via} is not on any dual-stack network (no network's subnet6 contains it)");
            if (net.Router!.Owns6(gw) || topo.Networks.Any(n => n.Router is { HasIPv6: true } r && r.Address6 == gw))
                throw new InvalidRequestException($"via {via} is the router's own address");
            hop = new NextHop(RouteKind.Via, net.Id, 0, gw);
        }
        else if (dev is not null && via is null)
        {
            var net = topo.NetworkByName(dev) ?? throw new InvalidRequestException($"dev {dev}: no network named '{dev}'");
            if (net.Router is not { HasIPv6: true }) throw new InvalidRequestException($"dev {dev}: network '{dev}' has no subnet6, so the router has no IPv6 interface there");
            hop = new NextHop(RouteKind.Dev, net.Id, 0);
        }
        else throw new InvalidRequestException("give exactly one of via (a gateway address) or dev (a network)");
        if (!Datapath.Routes.Add6(addr, len, hop)) throw new ConflictException($"route {prefix} {(via is not null ? "via " + via : "dev " + dev)} already exists");
        if (persist) Store?.SaveRoute(FormatPrefix6(addr, len), via, dev);
    }

    private bool TryDeleteRoute6(string prefix, string? via, string? dev)
    {
        var (addr, len) = ParsePrefix6(prefix);
        var route = Datapath.Routes.Routes6().FirstOrDefault(r => r.Prefix == addr && r.Length == len);
        if (route is null) return false;
        NextHop? path = null;
        if (via is not null)
        {
            UInt128 gw = ParseIPv6(via, "via");
            path = route.Paths.FirstOrDefault(p => p.Kind == RouteKind.Via && p.Gateway6 == gw);
        }
        else if (dev is not null) path = route.Paths.FirstOrDefault(p => p.Kind == RouteKind.Dev && Datapath.Topology.Network(p.Network)?.Name == dev);
        if ((via is not null || dev is not null) && path is null) return false;
        if (route.Paths.Any(p => p.Kind == RouteKind.Connected))
            throw new ConflictException($"{prefix} is a connected route: it goes with its network's gateway");
        if (!Datapath.Routes.Remove6(addr, len, path)) return false;
        Store?.DeleteRoute(FormatPrefix6(addr, len), via, dev);
        return true;
    }

    private RouteView[] ListRoutes6()
    {
        var topo = Datapath.Topology;
        return Datapath.Routes.Routes6().Select(r => new RouteView(FormatPrefix6(r.Prefix, r.Length),
            r.Paths.Select(p => new RoutePathView(p.Kind.ToString().ToLowerInvariant(), topo.Network(p.Network)?.Name ?? $"#{p.Network}",
                p.Kind == RouteKind.Via ? AddressFormat.IPv6(p.Gateway6) : null)).ToArray())).ToArray();
    }

    private void AddStaticNeighbor6(VSwitch.Core.Topology.Network net, string ip, ulong mac, bool persist)
    {
        UInt128 addr = ParseIPv6(ip, "ip");
        Datapath.Neighbors6.AddStatic(net.Id, addr, mac);
        if (persist) Store?.SaveNeighbor(net.Name, AddressFormat.IPv6(addr), MacAddress.Format(mac));
    }

    private IEnumerable<NeighborView> Neighbors6(long now)
    {
        var topo = Datapath.Topology;
        return Datapath.Neighbors6.Entries().Select(e => new NeighborView(topo.Network(e.Network)?.Name ?? $"#{e.Network}", AddressFormat.IPv6(e.Address),
            e.State == NeighborState.Incomplete || e.State == NeighborState.Failed ? "" : MacAddress.Format(e.Mac),
            e.State.ToString().ToLowerInvariant(), e.State == NeighborState.Permanent ? 0 : Math.Round((now - e.UpdatedMs) / 1000.0, 1)));
    }

    /// <summary>The IPv6 neighbour timers (solicitations go out through a datapath thread) and the periodic router advertisements.</summary>
    private void TickIPv6(long now)
    {
        Datapath.Neighbors6.Tick(now, (e, unicast) => Datapath.NdRequests.Enqueue((e.Network, e.Address, unicast ? e.Mac : 0)));
        var nets = Datapath.Topology.Networks;
        lock (_advertSchedule)
        {
            foreach (var n in nets)
            {
                if (n.Router is not { HasIPv6: true } r) continue;
                // A network new, or made again with another router (same id): its first advertisement goes out now.
                if (!_advertSchedule.TryGetValue(n.Id, out var s) || s.Router != r.Mac) s = (now, 0, r.Mac);
                if (now < s.DueMs) { _advertSchedule[n.Id] = s; continue; }
                Datapath.RouterAdvertisements.Enqueue(n.Id);
                s.Sent++;
                s.DueMs = now + (s.Sent < InitialAdvertisements ? InitialAdvertIntervalMs : Random.Shared.NextInt64(MinAdvertIntervalMs, MaxAdvertIntervalMs + 1));
                _advertSchedule[n.Id] = s;
            }
            foreach (var id in _advertSchedule.Keys.ToArray())
                if (!nets.Any(n => n.Id == id && n.Router is { HasIPv6: true })) _advertSchedule.Remove(id);
        }
    }
}
