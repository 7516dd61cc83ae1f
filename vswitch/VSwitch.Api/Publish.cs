using System.Text.Json.Serialization;

namespace VSwitch.Api;

/// <summary>
/// POST /v1/publish: a published port, as <c>docker run -p</c>: connections to the host's address
/// <see cref="HostIp"/> (default: every address of the host) and <see cref="HostPort"/> reach
/// <see cref="To"/> (a container's IP:PORT on a network with a host port).
/// </summary>
public sealed record PublishRequest
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Network { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? HostPort { get; init; }

    /// <summary>tcp (default) or udp.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Proto { get; init; }

    /// <summary>The container's address and port, IP:PORT.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? To { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? HostIp { get; init; }
}

/// <summary>A published port (GET /v1/publish): the host addresses it answers on, connections taken and those open now.</summary>
public sealed record PublishView(string Id, string Network, string Proto, int HostPort, string? HostIp, string To,
    string[] Addresses, long Connections, long Active);

/// <summary>North-south counters (in /v1/stats): masqueraded connections (ever, and open now), and each published port's.</summary>
public sealed record NorthSouthStatsView(long Masqueraded, long MasqueradedActive, long NatPortsExhausted, PublishView[] Publishes, HostPortView[] HostPorts);
