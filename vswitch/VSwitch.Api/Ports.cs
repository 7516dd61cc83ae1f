using System.Text.Json.Serialization;

namespace VSwitch.Api;

/// <summary>
/// POST /v1/ports. Every field the daemon's configuration file has for a port (vswitchd's
/// <c>PortConfig</c>), by the same JSON names; a null or missing field takes the daemon's default
/// (type tap, vlanMode access, the network's VLAN and MTU, offloads and io_uring on). Clients
/// leave nulls out. Bound by the daemon and mapped to its configuration type, as
/// <see cref="NetworkRequest"/> is.
/// </summary>
public sealed record PortRequest(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Name,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Type,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Network,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Netns = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string[]? Addresses = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Gateway = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Mac = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Mtu = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Device = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? VlanMode = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Vlan = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int[]? Trunks = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? NativeVlan = null)
{
    /// <summary>tap: keep the device when the port is removed or the daemon stops (default false).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? Persistent { get; init; }

    /// <summary>tap: checksum and TCP segmentation offloads from the namespace (IFF_VNET_HDR; default true).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? Offloads { get; init; }

    /// <summary>tap: batch reads and writes through io_uring (default true).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? IoUring { get; init; }
}

/// <summary>
/// A port (GET /v1/ports, /v1/ports/{name}). Netns is set for a TAP moved into a namespace, Device for
/// an AF_PACKET port; Details are the port's own diagnostic counters (by name), when it keeps any.
/// </summary>
public sealed record PortView(string Name, int Id, string Type, string Network, string VlanMode, int Vlan, int[] Trunks,
    int NativeVlan, string? Netns, string? Device, string? Mac, string[] Addresses, CountersView Counters, Dictionary<string, long>? Details = null);

public sealed record CountersView(long RxPackets, long RxBytes, long TxPackets, long TxBytes, long RxDrops, long TxDrops);
