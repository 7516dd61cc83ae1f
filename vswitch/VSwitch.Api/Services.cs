using System.Text.Json.Serialization;

namespace VSwitch.Api;

/// <summary>
/// POST /v1/services: a load-balanced virtual IP. Ports are written <c>80/tcp</c>, or <c>80:8080/tcp</c> when the
/// backends listen on another port (a backend given as IP:PORT overrides it). Vip must lie outside every
/// network's subnet (e.g. in 10.96.0.0/12): clients reach it through their gateway.
/// Affinity is "none" (default: each connection hashed on its 5-tuple) or "client-ip" (the client's address only).
/// Selector (app=web) adds, as backends, the attachments whose labels match it, and follows them.
/// </summary>
public sealed record ServiceRequest
{
    public string? Name { get; init; }
    public string? Vip { get; init; }
    public string[]? Ports { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Affinity { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? AffinityTimeoutSeconds { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Dictionary<string, string>? Selector { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public HealthCheckRequest? HealthCheck { get; init; }
}

/// <summary>
/// A service's active health check: a TCP connect to each backend (an HTTP GET of Path when given, 2xx/3xx
/// healthy) every IntervalMs, failing after TimeoutMs; Fall failures in a row take a backend out of the
/// table, Rise successes bring it back. Enabled false turns checks off (every backend counts as healthy).
/// </summary>
public sealed record HealthCheckRequest
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public bool? Enabled { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? IntervalMs { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? TimeoutMs { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? Fall { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? Rise { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Path { get; init; }
}

/// <summary>POST /v1/services/{name}/backends: <c>IP:PORT</c> (or <c>IP</c>: each service port's target port), weight 1..1000 (default 1).</summary>
public sealed record BackendRequest
{
    public string? Address { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Weight { get; init; }
}

public sealed record ServicePortView(int Port, string Protocol, int TargetPort);

public sealed record HealthCheckView(bool Enabled, int IntervalMs, int TimeoutMs, int Fall, int Rise, string? Path);

/// <summary>
/// One backend: where it came from (static: added by address; selector: an attachment whose labels match),
/// its state (active; draining: existing connections go on, new ones go elsewhere), its health
/// (healthy, unhealthy, unchecked) with the last check's result, whether it is in the Maglev table and
/// how many slots it holds there, connections now in the conntrack table with their packets and bytes
/// (both directions), and new connections sent to it since the daemon started.
/// </summary>
public sealed record BackendView(
    string Address, string Ip, int? Port, int Weight, string Source, string State, string Health, string? HealthDetail,
    bool InTable, int Slots, long Connections, long Packets, long Bytes, long ConnectionsTotal, string? Attachment);

public sealed record ServiceView(
    string Name, string Vip, ServicePortView[] Ports, string Affinity, int AffinityTimeoutSeconds,
    Dictionary<string, string> Selector, HealthCheckView HealthCheck, int TableSize, BackendView[] Backends)
{
    /// <summary>With client-IP affinity: clients remembered with their backend now (seen within the timeout, until the next reap).</summary>
    public int? AffinityClients { get; init; }
    /// <summary>With client-IP affinity: new connections sent back to a remembered backend since the daemon started.</summary>
    public long? AffinityHits { get; init; }
}
