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
/// Every field is optional (nullable), so "not given" is explicit. They are init properties, not
/// constructor parameters, so that the daemon reports a value of the wrong type by the field's type
/// ("could not be converted to System.Int32" at vlan), as it did when it bound the configuration type.
/// </remarks>
public sealed record NetworkRequest
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Name { get; init; }

    /// <summary>VLAN id of its access ports (0..4094; default 0, untagged).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Vlan { get; init; }

    /// <summary>VXLAN network identifier (1..16777215): the network spans hosts through the overlay.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Vni { get; init; }

    /// <summary>Seconds a learned MAC stays without traffic (default 300).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? MacAgingSeconds { get; init; }

    /// <summary>IPv4 subnet (CIDR): the router gets an interface on it and attachments get addresses from it.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Subnet { get; init; }

    /// <summary>The router's address in <see cref="Subnet"/> (default: its first host address).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Gateway { get; init; }

    /// <summary>IPv6 subnet (CIDR) of a dual-stack network (needs <see cref="Subnet"/>): the router routes IPv6 there and attachments get addresses from it.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Subnet6 { get; init; }

    /// <summary>The router's IPv6 address in <see cref="Subnet6"/> (default: the subnet's ::1).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Gateway6 { get; init; }

    /// <summary>Router advertisements let hosts form addresses from the prefix (SLAAC, the autonomous flag; default true).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? Slaac { get; init; }

    /// <summary>The router's MAC on this network (default: a random locally administered one, chosen once and stored).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? RouterMac { get; init; }

    /// <summary>Remote VTEPs of a VXLAN network (IPv4 or IPv6: the family of this host's VXLAN endpoint).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string[]? Vteps { get; init; }

    /// <summary>Accept (and learn from) VTEPs not in <see cref="Vteps"/> (default false).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? AcceptUnknownVteps { get; init; }

    /// <summary>MTU of its TAPs and its router interface (68..9000; default 1500, or 1450 with a vni).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Mtu { get; init; }

    /// <summary>Give the host an interface on this routed network (a TAP in the daemon's namespace, <c>vsh-NAME</c>), with <see cref="HostAddress"/>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? HostPort { get; init; }

    /// <summary>The host's address on the network (default: the subnet's last host address).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? HostAddress { get; init; }

    /// <summary>Source NAT to the host's address for connections leaving through the host port (default: on with a host port).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? Masquerade { get; init; }
}

/// <summary>PATCH /v1/networks/{name}: north-south settings of a routed network; a null field is left as it is.</summary>
public sealed record NetworkSettingsRequest
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? HostPort { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? HostAddress { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? Masquerade { get; init; }
}

/// <summary>A network's host port: the host's interface on it, its address, and whether leaving connections are masqueraded.</summary>
public sealed record HostPortView(string Device, string Address, bool Masquerade, int? Port, string State);

/// <summary>
/// A network (GET /v1/networks, /v1/networks/{name}). Subnet, Gateway (the router's address on it) and
/// RouterMac are null when it is not routed. Vni is null for a network that is not a VXLAN network.
/// </summary>
public sealed record NetworkView(string Name, int Id, int Vlan, long? Vni, int MacAgingSeconds, string[] Ports,
    string? Subnet = null, string? Gateway = null, string? RouterMac = null, int Mtu = 1500)
{
    /// <summary>IPv6 of a dual-stack network: its subnet, the router's gateway address there, and the router's link-local address (from its MAC).</summary>
    public string? Subnet6 { get; init; }
    public string? Gateway6 { get; init; }
    public string? LinkLocal6 { get; init; }
    /// <summary>Whether router advertisements let hosts form addresses from <see cref="Subnet6"/> (SLAAC).</summary>
    public bool? Slaac { get; init; }
    /// <summary>The addresses IPAM gave out.</summary>
    public AllocationView[] Allocations { get; init; } = [];
    /// <summary>The networks the router may route to and from this one (<c>vsctl network connect</c>); routed networks are isolated from all others.</summary>
    public string[] ConnectedTo { get; init; } = [];
    /// <summary>The Docker network this network serves (Docker's remote driver, <c>vswitchd --docker-plugin</c>): its id, and its name once learned from dockerd.</summary>
    public string? DockerId { get; init; }
    public string? DockerName { get; init; }
    /// <summary>The host's interface on this network, or null when it has none.</summary>
    public HostPortView? HostPort { get; init; }
}

/// <summary>POST /v1/networks/{name}/connections: the network to connect to (routing between the two is allowed both ways).</summary>
public sealed record NetworkConnectionRequest(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Network);

/// <summary>An address IPAM handed out on a network, and the attachment that holds it.</summary>
public sealed record AllocationView(string Address, string Attachment, string ContainerId, string Ifname, string Port)
{
    /// <summary>What people call the container (Docker's container name, a pod's name): the name the switch's DNS answers for.</summary>
    public string? Name { get; init; }
}
