using System.Text.Json.Serialization;

namespace VSwitch.Api;

/// <summary>
/// POST /v1/attachments: attach a network namespace (a container) to a network. Network and Netns are
/// required; the rest default (containerId: the netns, ifname: eth0, ip: the lowest free address of
/// the subnet, mac: a random local one, mtu: the network's). Source says who asked (vsctl, cni:NAME).
/// </summary>
public sealed record AttachRequest(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Network,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Netns,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ContainerId,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Ifname,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Ip,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Mac,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Source)
{
    /// <summary>Overrides the network's MTU (CNI's "mtu").</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Mtu { get; init; }

    /// <summary>
    /// What people call the container (a runtime's container name, a pod's name), shown instead of
    /// the namespace's path. Default: the container id shortened to 12 characters, or the netns name.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Name { get; init; }

    /// <summary>Port security on the attachment's port (default true: only its MAC and address may send).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? PortSecurity { get; init; }

    /// <summary>Its MAC may not move to another port (default true).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? PinMac { get; init; }

    /// <summary>Labels (app=web, tier=front): the container's identity for services' selectors and network policy (see <see cref="VSwitch.Api.Labels"/>).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Dictionary<string, string>? Labels { get; init; }
}

/// <summary>PATCH /v1/attachments/{id}: replace the labels of an attachment (policy and services follow at once).</summary>
public sealed record AttachmentLabelsRequest(Dictionary<string, string>? Labels);

/// <summary>
/// An attachment (GET /v1/attachments). Port is the switch port (the TAP's name before it was moved and
/// renamed to Ifname); Address has the prefix (10.1.0.2/24), Ip is the same address without it.
/// </summary>
public sealed record AttachmentView(string Id, string Network, string Netns, string ContainerId, string Ifname, string Port, string Mac,
    int Mtu, string? Address, string? Ip, string? Gateway, string? Source, DateTime CreatedAt, string? Name = null)
{
    public bool PortSecurity { get; init; } = true;
    public bool PinMac { get; init; } = true;
    public Dictionary<string, string> Labels { get; init; } = [];
    /// <summary>The switch's DNS server for this attachment (its gateway), when the switch runs one for its network; null otherwise.</summary>
    public AttachmentDnsView? Dns { get; init; }
    /// <summary>On a dual-stack network: the IPv6 address with its prefix (fd00:1::2/64), the same without it, and the IPv6 gateway.</summary>
    public string? Address6 { get; init; }
    public string? Ip6 { get; init; }
    public string? Gateway6 { get; init; }

    /// <summary>
    /// Prefixes reached through <see cref="Gateway"/> that a CNI result names besides the default route: on a cluster
    /// network, the whole cluster network (10.244.0.0/16), as Flannel's CNI result does. Null when there are none.
    /// </summary>
    public string[]? Routes { get; init; }
}

/// <summary>What a container's resolver should use (CNI's result "dns"): the switch's DNS at the gateway, and its search domain.</summary>
public sealed record AttachmentDnsView(string[] Nameservers, string[] Search);

/// <summary>GET /v1/attachments/{id}/check (CNI CHECK): what is wrong with it as the namespace sees it.</summary>
public sealed record AttachmentCheckView(bool Ok, string[] Problems);
