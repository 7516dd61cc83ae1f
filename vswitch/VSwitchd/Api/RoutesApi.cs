using VSwitch.Api;
using VSwitchd.Runtime;

namespace VSwitchd.Api;

/// <summary>/v1/routes and /v1/neighbors: the router's FIB (`ip route`) and ARP cache (`ip neigh`).</summary>
public static class RoutesApi
{
    public static void Map(RouteGroupBuilder v1)
    {
        v1.MapGet("/routes", (SwitchRuntime rt) => TypedResults.Ok(rt.ListRoutes()));
        v1.MapPost("/routes", (SwitchRuntime rt, RouteRequest body) =>
        {
            if (string.IsNullOrWhiteSpace(body.Prefix)) throw new InvalidRequestException("prefix: required (e.g. {\"prefix\": \"10.9.0.0/16\", \"via\": \"10.1.0.254\"})");
            rt.AddRoute(body.Prefix, body.Via, body.Dev);
            return TypedResults.Created("/v1/routes", rt.GetRoute(body.Prefix));
        });
        v1.MapDelete("/routes", (SwitchRuntime rt, string? prefix, string? via, string? dev) =>
        {
            if (string.IsNullOrWhiteSpace(prefix)) throw new InvalidRequestException("prefix: required (?prefix=10.9.0.0/16[&via=...|&dev=...])");
            rt.DeleteRoute(prefix, via, dev);
            return TypedResults.NoContent();
        });

        v1.MapGet("/neighbors", (SwitchRuntime rt, string? network) => TypedResults.Ok(rt.ListNeighbors(network)));
        v1.MapPost("/neighbors", (SwitchRuntime rt, NeighborRequest body) =>
        {
            // Without a network, the one whose subnet holds the address.
            string network = rt.NeighborNetwork(body.Network, body.Ip ?? "");
            rt.AddStaticNeighbor(network, body.Ip ?? "", body.Mac ?? "");
            return TypedResults.Created("/v1/neighbors", rt.GetNeighbor(network, body.Ip ?? ""));
        });
        v1.MapDelete("/neighbors", (SwitchRuntime rt, string? network) => TypedResults.Ok(new FlushResult(rt.FlushNeighbors(network))));
    }
}
