using System.Text.Json;
using System.Text.Json.Serialization;

namespace VSwitch.Ctl;

// The client's view of vswitchd's /v1 JSON (vswitch/VSwitchd/Api/ApiModels.cs). Kept as a copy
// rather than a project reference so vsctl does not pull in the daemon and ASP.NET Core.

public sealed record ApiError(string? Error);

/// <summary>A network. Subnet, Gateway (the router's address on it) and RouterMac are null when it is not routed (or from an older daemon).</summary>
public sealed record NetworkView(string Name, int Id, int Vlan, long? Vni, int MacAgingSeconds, string[] Ports,
    string? Subnet = null, string? Gateway = null, string? RouterMac = null, int? Mtu = null)
{
    public AllocationView[]? Allocations { get; init; }
}

public sealed record AllocationView(string Address, string Attachment, string ContainerId, string Ifname, string Port);

public sealed record CountersView(long RxPackets, long RxBytes, long TxPackets, long TxBytes, long RxDrops, long TxDrops);

public sealed record PortView(string Name, int Id, string Type, string Network, string VlanMode, int Vlan, int[] Trunks,
    int NativeVlan, string? Netns, string? Device, string? Mac, string[] Addresses, CountersView Counters);

/// <summary>A MAC entry. Vtep is the remote VTEP a MAC on a VXLAN network lives behind; null for a local port's MAC.</summary>
public sealed record FdbEntryView(string Network, int Vlan, string Mac, string Port, double AgeSeconds, bool Static, string? Vtep = null);

public sealed record StageView(string Name, long Calls, long Packets, double NsPerPacket, double PacketsPerCall);

public sealed record DropView(string Reason, long Packets);

/// <summary>The datapath threads' flow caches, summed (null from a daemon older than the rules API).</summary>
public sealed record FlowCacheView(long Flows, long Hits, long Misses, long Revalidations, long Evictions, long Expirations, double HitRate);

public sealed record StatsView(PortView[] Ports, DropView[] Drops, StageView[] Stages, int MacEntries, int MacCapacity, FlowCacheView? FlowCache);

public sealed record ShowView(string Version, double UptimeSeconds, int Threads, bool BusyPoll, NetworkView[] Networks, PortView[] Ports, int MacEntries);

public sealed record FlushResult(int Removed);

/// <summary>One rule of the rule table (GET /v1/rules). Cookie is hex ("0x0"); timeouts are seconds, 0 for none.</summary>
public sealed record RuleView(int Priority, string Cookie, string Match, string Actions, string Text, long Packets, long Bytes,
    int IdleTimeout, int HardTimeout, double AgeSeconds);

/// <summary>POST /v1/rules.</summary>
public sealed record RuleRequest(string Rule);

/// <summary>A 400 for rule (or match, packet, filter) text: the message, the bad token and where it starts in the trimmed text.</summary>
public sealed record RuleError(string? Error, string? Token, int? Position);

/// <summary>DELETE /v1/rules: how many went and their text.</summary>
public sealed record DeleteResult(int Removed, string[] Rules);

/// <summary>One datapath flow: a cached (exact) flow key and the actions a thread applies to it.</summary>
public sealed record FlowView(int Thread, string Flow, string Actions, string? Rule, long Packets, long Bytes, double AgeSeconds, double IdleSeconds);

/// <summary>POST /v1/trace: a packet as a match (spec) or as a frame (hex), and the port it comes in on.</summary>
public sealed record TraceRequest(string? Spec, string? Hex, string? InPort);

/// <summary>POST /v1/trace/live. Null fields take the daemon's defaults (10 packets, 10 seconds).</summary>
public sealed record LiveTraceRequest(string? Filter, int? Count, double? TimeoutSeconds);

public sealed record TraceStepView(string Stage, string Detail);

public sealed record TraceView(string Flow, TraceStepView[] Steps, string Actions, string? DropReason, bool CacheHit, string? Time);

public sealed record LiveTraceView(int Requested, int Recorded, bool Complete, TraceView[] Packets);

/// <summary>POST /v1/networks (the daemon's NetworkConfig). Null fields are left out so the daemon's defaults apply.</summary>
public sealed record NetworkRequest(string Name, int? Vlan, int? Vni, int? MacAgingSeconds,
    string? Subnet = null, string? Gateway = null, int? Mtu = null);

/// <summary>POST /v1/ports (the daemon's PortConfig).</summary>
public sealed record PortRequest(string Name, string Type, string Network, string? Netns, string[]? Addresses, string? Gateway,
    string? Mac, int? Mtu, string? Device, string VlanMode, int? Vlan, int[]? Trunks, int? NativeVlan);

/// <summary>One path of a route: kind connected, dev or via; the network it leaves on; the gateway for via.</summary>
public sealed record RoutePathView(string Kind, string Network, string? Via);

/// <summary>A route of the router's FIB (GET /v1/routes): its prefix and its paths (several for ECMP).</summary>
public sealed record RouteView(string Prefix, RoutePathView[] Paths);

/// <summary>POST /v1/routes: a prefix and exactly one of via (a gateway address) or dev (a network).</summary>
public sealed record RouteRequest(string Prefix, string? Via, string? Dev);

/// <summary>An ARP cache entry (GET /v1/neighbors). Mac is empty while incomplete or failed; AgeSeconds is 0 for permanent.</summary>
public sealed record NeighborView(string Network, string Ip, string Mac, string State, double AgeSeconds);

/// <summary>POST /v1/neighbors: a static (permanent) entry.</summary>
public sealed record NeighborRequest(string Network, string Ip, string Mac);

/// <summary>One remote VTEP's counters (only VTEPs the endpoint has sent to or heard from).</summary>
public sealed record VtepView(string Address, long RxPackets, long RxBytes, long TxPackets, long TxBytes);

/// <summary>A VXLAN network: its VNI, its remote VTEPs (head-end replication list), whether it learns unknown VTEPs.</summary>
public sealed record OverlayNetworkView(string Network, long Vni, string[] Vteps, bool AcceptUnknownVteps, int Mtu);

/// <summary>GET /v1/overlay. Local is null (and Port 0) when vswitchd has no VXLAN endpoint (no overlay.local in its config).</summary>
public sealed record OverlayView(string? Local, int Port, string? TunnelPort, OverlayNetworkView[] Networks, VtepView[] Vteps);

/// <summary>POST /v1/networks/{name}/vteps.</summary>
public sealed record VtepRequest(string Vtep);

/// <summary>POST /v1/fdb: a static remote MAC, behind a VTEP on a VXLAN network.</summary>
public sealed record RemoteMacRequest(string Network, string Mac, string Vtep);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ApiError))]
[JsonSerializable(typeof(NetworkView))]
[JsonSerializable(typeof(NetworkView[]))]
[JsonSerializable(typeof(PortView))]
[JsonSerializable(typeof(PortView[]))]
[JsonSerializable(typeof(FdbEntryView[]))]
[JsonSerializable(typeof(StatsView))]
[JsonSerializable(typeof(ShowView))]
[JsonSerializable(typeof(FlushResult))]
[JsonSerializable(typeof(NetworkRequest))]
[JsonSerializable(typeof(PortRequest))]
[JsonSerializable(typeof(RuleView))]
[JsonSerializable(typeof(RuleView[]))]
[JsonSerializable(typeof(RuleRequest))]
[JsonSerializable(typeof(RuleError))]
[JsonSerializable(typeof(DeleteResult))]
[JsonSerializable(typeof(FlowView[]))]
[JsonSerializable(typeof(TraceRequest))]
[JsonSerializable(typeof(LiveTraceRequest))]
[JsonSerializable(typeof(TraceView))]
[JsonSerializable(typeof(LiveTraceView))]
[JsonSerializable(typeof(RouteView))]
[JsonSerializable(typeof(RouteView[]))]
[JsonSerializable(typeof(RouteRequest))]
[JsonSerializable(typeof(NeighborView))]
[JsonSerializable(typeof(NeighborView[]))]
[JsonSerializable(typeof(NeighborRequest))]
[JsonSerializable(typeof(OverlayView))]
[JsonSerializable(typeof(OverlayNetworkView))]
[JsonSerializable(typeof(VtepRequest))]
[JsonSerializable(typeof(RemoteMacRequest))]
internal sealed partial class ApiJson : JsonSerializerContext;
