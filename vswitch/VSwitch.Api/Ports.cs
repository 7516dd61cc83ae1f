using System.Text.Json.Serialization;

namespace VSwitch.Api;

/// <summary>
/// POST /v1/ports. Every field the daemon's configuration file has for a port (vswitchd's
/// <c>PortConfig</c>), by the same JSON names; a null or missing field takes the daemon's default
/// (type tap, vlanMode access, the network's VLAN and MTU, offloads and io_uring on). Clients
/// leave nulls out. Bound by the daemon and mapped to its configuration type, as
/// <see cref="NetworkRequest"/> is.
/// </summary>
public sealed record PortRequest
{
    /// <summary>The port's name (a TAP's interface name: at most 15 characters).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Name { get; init; }

    /// <summary>tap (default): a TAP device the daemon creates; afpacket or afxdp: an existing interface it attaches.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Type { get; init; }

    /// <summary>The network it joins.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Network { get; init; }

    /// <summary>afpacket, afxdp: the interface to attach (default: the port's name).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Device { get; init; }

    /// <summary>afxdp: queue, copy mode, XDP attach mode, ring and frame sizes (default: queue 0, the best mode the kernel allows).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public AfxdpSettings? Afxdp { get; init; }

    /// <summary>afpacket: the receive ring's slots and slot size (default 120 slots of 68 KiB, which take 64 KiB GSO super-frames whole).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public AfpacketSettings? Afpacket { get; init; }

    /// <summary>tap: the network namespace it is moved into (a name under /run/netns, or a path like /proc/PID/ns/net).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Netns { get; init; }

    /// <summary>tap: its MAC address.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Mac { get; init; }

    /// <summary>MTU (68..9000; default the network's).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Mtu { get; init; }

    /// <summary>tap: addresses with prefix (10.0.0.2/24).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string[]? Addresses { get; init; }

    /// <summary>tap: default route via this address (default: the network's gateway, when an address is on its subnet).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Gateway { get; init; }

    /// <summary>tap: keep the device when the port is removed or the daemon stops (default false).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? Persistent { get; init; }

    /// <summary>tap: checksum and TCP segmentation offloads from the namespace (IFF_VNET_HDR; default true).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? Offloads { get; init; }

    /// <summary>tap: batch reads and writes through io_uring (default true).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? IoUring { get; init; }

    /// <summary>Receive queues (multiqueue TAP, AF_PACKET fanout), 1..64; default datapath.threads.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? RxQueues { get; init; }

    /// <summary>access (default) or trunk.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? VlanMode { get; init; }

    /// <summary>Access VLAN (default: the network's).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Vlan { get; init; }

    /// <summary>trunk: the VLANs it carries (none: all).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int[]? Trunks { get; init; }

    /// <summary>trunk: the VLAN sent and received untagged (default 0: none).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? NativeVlan { get; init; }

    /// <summary>Port security: frames only from the port's MAC and addresses (default false for ports; attachments have it on).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? PortSecurity { get; init; }

    /// <summary>Refuse moves of the port's MAC (and its static MAC entries) to other ports (default false; on for attachments).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? PinMac { get; init; }
}

/// <summary>PATCH /v1/ports/{name}: changes a port's security settings; a field left out keeps its value.</summary>
public sealed record PortSettingsRequest
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? PortSecurity { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? PinMac { get; init; }
}

/// <summary>
/// A port (GET /v1/ports, /v1/ports/{name}). Netns is set for a TAP moved into a namespace, Device for
/// an AF_PACKET port; Details are the port's own diagnostic counters (by name), when it keeps any.
/// </summary>
/// <summary>
/// A port. <see cref="State"/> is <c>up</c>, <c>down</c> (the device exists but is down or has no
/// carrier) or <c>gone</c> (its device or namespace no longer exists: the port is not polled and
/// carries nothing until it is deleted), with <see cref="StateReason"/> saying why when not up.
/// <see cref="Mac"/> is the device's MAC (as configured, else the one the kernel chose). <see cref="Features"/>
/// says in words how the port does its I/O (a TAP: "offloads": "on"/"off", "io-uring": "rx+tx"/"tx"/"off");
/// <see cref="Details"/> holds its counters.
/// </summary>
public sealed record PortView(string Name, int Id, string Type, string Network, string VlanMode, int Vlan, int[] Trunks,
    int NativeVlan, string? Netns, string? Device, string? Mac, string[] Addresses, CountersView Counters, Dictionary<string, long>? Details = null,
    string State = "up", string? StateReason = null, Dictionary<string, string>? Features = null)
{
    /// <summary>Port security on (frames only from the port's MAC and addresses).</summary>
    public bool PortSecurity { get; init; }
    /// <summary>The port's MAC may not move to another port.</summary>
    public bool PinMac { get; init; }
    /// <summary>Frames this port sent that were refused, by reason: VLAN tags, invalid source MACs, port security, refused MAC moves (reasons with a count only).</summary>
    public Dictionary<string, long>? SecurityDrops { get; init; }
    /// <summary>Times a learned MAC moved onto this port from another one.</summary>
    public long MacMoves { get; init; }
}

/// <summary>
/// A port's counters. <see cref="RxDrops"/> are frames lost to a fault or a refusal (parse errors,
/// rules, MTU, full queues); <see cref="RxUnsent"/> are frames that had nowhere to go (no-output),
/// which is a switch doing its job, not a fault.
/// </summary>
public sealed record CountersView(long RxPackets, long RxBytes, long TxPackets, long TxBytes, long RxDrops, long TxDrops, long RxUnsent = 0);

/// <summary>
/// An AF_XDP port's options. <see cref="Mode"/>: auto (zero-copy where the driver can, else copy), zerocopy
/// (refuse to open otherwise), copy. <see cref="Attach"/>: auto (native XDP where the driver has it, else
/// generic), native, generic. A field left out takes its default.
/// </summary>
public sealed record AfxdpSettings
{
    /// <summary>The receive queue to bind (default 0).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Queue { get; init; }

    /// <summary>auto (default), zerocopy or copy.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Mode { get; init; }

    /// <summary>auto (default), native or generic.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Attach { get; init; }

    /// <summary>Entries of each ring: a power of two, 64..16384 (default 2048); the UMEM holds twice as many frames.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? RingSize { get; init; }

    /// <summary>UMEM frame size, 2048 (default) or 4096.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? FrameSize { get; init; }
}

/// <summary>
/// An afpacket port's receive ring (TPACKET_V2), per receive queue. Small slots hold more frames in the same memory,
/// but a frame longer than a slot (a GSO super-frame from a peer with GSO/TSO on) is truncated and dropped, counted as
/// rx-truncated: with small slots turn the peer's offloads off (ethtool -K DEV tso off gso off). A field left out
/// takes its default.
/// </summary>
public sealed record AfpacketSettings
{
    /// <summary>Slots in the ring: at least 8, rounded up to whole ~1 MiB blocks (default 120); at most 256 MiB of ring.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? RingFrames { get; init; }

    /// <summary>Bytes of a slot: a multiple of 16, 1600 (a 1514-byte frame) .. 131072 (default 69632: a 64 KiB GSO super-frame).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? FrameSize { get; init; }
}
