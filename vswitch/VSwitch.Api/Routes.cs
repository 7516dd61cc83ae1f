using System.Text.Json.Serialization;

namespace VSwitch.Api;

/// <summary>One path of a route: kind connected, dev or via; the network it leaves on; the gateway for via.</summary>
public sealed record RoutePathView(string Kind, string Network, string? Via);

/// <summary>A route of the router's FIB (GET /v1/routes): its prefix and its paths (several for ECMP).</summary>
public sealed record RouteView(string Prefix, RoutePathView[] Paths);

/// <summary>POST /v1/routes: a prefix and exactly one of via (a gateway address) or dev (a network).</summary>
public sealed record RouteRequest(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Prefix,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Via,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Dev);

/// <summary>An ARP cache entry (GET /v1/neighbors). Mac is empty while incomplete or failed; AgeSeconds is 0 for permanent.</summary>
public sealed record NeighborView(string Network, string Ip, string Mac, string State, double AgeSeconds);

/// <summary>POST /v1/neighbors: a static (permanent) entry.</summary>
public sealed record NeighborRequest(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Network,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Ip,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Mac);
