using System.Text.Json.Serialization;

namespace VSwitch.Api;

/// <summary>
/// POST /v1/networks. Every field the daemon's configuration file has for a network (vswitchd's
/// <c>NetworkConfig</c>), by the same JSON names. A null or missing field takes the daemon's default
/// (vlan 0, macAgingSeconds 300, MTU 1500 or 1450 with a vni, no subnet); clients leave nulls out.
/// </summary>
/// <remarks>
/// The daemon binds this record and maps it to its configuration type rather than binding the
/// configuration type itself: the configuration file is the daemon's own format (strict about
/// unknown fields, with datapath settings), this is the wire contract that clients compile against.
/// The fields are nullable where the configuration has a default, so "not given" is explicit.
/// </remarks>
public sealed record NetworkRequest(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Name,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Vlan = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Vni = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? MacAgingSeconds = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Subnet = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Gateway = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Mtu = null)
{
    /// <summary>Optional IPv6 subnet and gateway (the plan only: not handed out yet).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Subnet6 { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Gateway6 { get; init; }

    /// <summary>The router's MAC on this network (default: a random locally administered one, chosen once and stored).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? RouterMac { get; init; }

    /// <summary>Remote VTEPs (IPv4) of a VXLAN network.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string[]? Vteps { get; init; }

    /// <summary>Accept (and learn from) VTEPs not in <see cref="Vteps"/> (default false).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? AcceptUnknownVteps { get; init; }
}

/// <summary>
/// A network (GET /v1/networks, /v1/networks/{name}). Subnet, Gateway (the router's address on it) and
/// RouterMac are null when it is not routed. Vni is null for a network that is not a VXLAN network.
/// </summary>
public sealed record NetworkView(string Name, int Id, int Vlan, long? Vni, int MacAgingSeconds, string[] Ports,
    string? Subnet = null, string? Gateway = null, string? RouterMac = null, int Mtu = 1500)
{
    // Attachments: the IPv6 plan (not handed out yet) and the addresses IPAM gave out.
    public string? Subnet6 { get; init; }
    public string? Gateway6 { get; init; }
    public AllocationView[] Allocations { get; init; } = [];
}

/// <summary>An address IPAM handed out on a network, and the attachment that holds it.</summary>
public sealed record AllocationView(string Address, string Attachment, string ContainerId, string Ifname, string Port);
