using VSwitch.Core.Pipeline;
using VSwitch.Core.Tables;
using VSwitch.Core.Wire;
using VSwitchd.Runtime;

namespace VSwitchd.Api;

public sealed record RoutePathView(string Kind, string Network, string? Via);
public sealed record RouteView(string Prefix, RoutePathView[] Paths);
public sealed record RouteRequest(string? Prefix, string? Via, string? Dev);
public sealed record NeighborView(string Network, string Ip, string Mac, string State, double AgeSeconds);
public sealed record NeighborRequest(string? Network, string? Ip, string? Mac);

/// <summary>/v1/routes and /v1/neighbors: the router's FIB (`ip route`) and ARP cache (`ip neigh`).</summary>
public static class RoutesApi
{
    public static void Map(RouteGroupBuilder v1)
    {
        v1.MapGet("/routes", (SwitchRuntime rt) => Results.Ok(Routes(rt)));
        v1.MapPost("/routes", (SwitchRuntime rt, RouteRequest body) =>
        {
            if (string.IsNullOrWhiteSpace(body.Prefix)) return ManagementApi.BadRequest("prefix: required (e.g. {\"prefix\": \"10.9.0.0/16\", \"via\": \"10.1.0.254\"})");
            try { rt.AddRoute(body.Prefix, body.Via, body.Dev); }
            catch (ArgumentException e) when (e.Message.Contains("already exists")) { return ManagementApi.Conflict(e.Message); }
            catch (ArgumentException e) { return ManagementApi.BadRequest(e.Message); }
            return Results.Created("/v1/routes", Routes(rt).First(r => r.Prefix == NormalPrefix(body.Prefix)));
        });
        v1.MapDelete("/routes", (SwitchRuntime rt, string? prefix, string? via, string? dev) =>
        {
            if (string.IsNullOrWhiteSpace(prefix)) return ManagementApi.BadRequest("prefix: required (?prefix=10.9.0.0/16[&via=...|&dev=...])");
            try
            {
                return rt.DeleteRoute(prefix, via, dev) ? Results.NoContent()
                    : ManagementApi.NotFound($"no route {prefix}{(via is not null ? " via " + via : "")}{(dev is not null ? " dev " + dev : "")}");
            }
            catch (ArgumentException e) { return ManagementApi.BadRequest(e.Message); }
            catch (InvalidOperationException e) { return ManagementApi.Conflict(e.Message); }
        });

        v1.MapGet("/neighbors", (SwitchRuntime rt, string? network) =>
        {
            if (network is not null && rt.Datapath.Topology.NetworkByName(network) is null) return ManagementApi.NotFound($"no network named '{network}'");
            return Results.Ok(Neighbors(rt).Where(n => network is null || n.Network == network).ToArray());
        });
        v1.MapPost("/neighbors", (SwitchRuntime rt, NeighborRequest body) =>
        {
            try { rt.AddStaticNeighbor(body.Network ?? "", body.Ip ?? "", body.Mac ?? ""); }
            catch (ArgumentException e) { return ManagementApi.BadRequest(e.Message); }
            return Results.Created("/v1/neighbors", Neighbors(rt).First(n => n.Network == body.Network && n.Ip == body.Ip));
        });
        v1.MapDelete("/neighbors", (SwitchRuntime rt, string? network) =>
        {
            ushort? id = null;
            if (network is not null)
            {
                if (rt.Datapath.Topology.NetworkByName(network) is not { } n) return ManagementApi.NotFound($"no network named '{network}'");
                id = n.Id;
            }
            return Results.Ok(new FlushResult(rt.Datapath.Neighbors.Flush(id)));
        });
    }

    private static string NormalPrefix(string prefix)
    {
        var (a, l) = SwitchRuntime.ParsePrefix(prefix);
        return SwitchRuntime.FormatPrefix(a & RouteTable.Mask(l), l);
    }

    public static RouteView[] Routes(SwitchRuntime rt)
    {
        var topo = rt.Datapath.Topology;
        return rt.Datapath.Routes.Routes().Select(r => new RouteView(SwitchRuntime.FormatPrefix(r.Prefix, r.Length),
            r.Paths.Select(p => new RoutePathView(p.Kind.ToString().ToLowerInvariant(), topo.Network(p.Network)?.Name ?? $"#{p.Network}",
                p.Kind == RouteKind.Via ? AddressFormat.IPv4(p.Gateway) : null)).ToArray())).ToArray();
    }

    public static NeighborView[] Neighbors(SwitchRuntime rt)
    {
        var topo = rt.Datapath.Topology;
        long now = Environment.TickCount64;
        return rt.Datapath.Neighbors.Entries()
            .Select(e => new NeighborView(topo.Network(e.Network)?.Name ?? $"#{e.Network}", AddressFormat.IPv4(e.Address),
                e.State == NeighborState.Incomplete || e.State == NeighborState.Failed ? "" : MacAddress.Format(e.Mac),
                e.State.ToString().ToLowerInvariant(), e.State == NeighborState.Permanent ? 0 : Math.Round((now - e.UpdatedMs) / 1000.0, 1)))
            .OrderBy(n => n.Network).ThenBy(n => n.Ip).ToArray();
    }
}
