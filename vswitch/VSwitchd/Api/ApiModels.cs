namespace VSwitchd.Api;

public sealed record ApiError(string Error);

public sealed record NetworkView(string Name, int Id, int Vlan, long? Vni, int MacAgingSeconds, string[] Ports,
    string? Subnet = null, string? Gateway = null, string? RouterMac = null, int Mtu = 1500)
{
    // Attachments: the IPv6 plan (not handed out yet) and the addresses IPAM gave out.
    public string? Subnet6 { get; init; }
    public string? Gateway6 { get; init; }
    public AllocationView[] Allocations { get; init; } = [];
}

public sealed record CountersView(long RxPackets, long RxBytes, long TxPackets, long TxBytes, long RxDrops, long TxDrops);

public sealed record PortView(string Name, int Id, string Type, string Network, string VlanMode, int Vlan, int[] Trunks,
    int NativeVlan, string? Netns, string? Device, string? Mac, string[] Addresses, CountersView Counters, Dictionary<string, long>? Details = null);

public sealed record FdbEntryView(string Network, int Vlan, string Mac, string Port, double AgeSeconds, bool Static, string? Vtep = null);

public sealed record StageView(string Name, long Calls, long Packets, double NsPerPacket, double PacketsPerCall);

public sealed record DropView(string Reason, long Packets);

public sealed record StatsView(PortView[] Ports, DropView[] Drops, StageView[] Stages, int MacEntries, int MacCapacity, FlowCacheView FlowCache);

public sealed record ShowView(string Version, double UptimeSeconds, int Threads, bool BusyPoll, NetworkView[] Networks, PortView[] Ports, int MacEntries);

public sealed record FlushResult(int Removed);

public sealed record RuleView(int Priority, string Cookie, string Match, string Actions, string Text, long Packets, long Bytes,
    int IdleTimeout, int HardTimeout, double AgeSeconds);

public sealed record RuleRequest(string? Rule);

public sealed record RuleError(string Error, string Token, int Position);

public sealed record DeleteResult(int Removed, string[] Rules);

public sealed record FlowView(int Thread, string Flow, string Actions, string? Rule, long Packets, long Bytes, double AgeSeconds, double IdleSeconds);

public sealed record FlowCacheView(long Flows, long Hits, long Misses, long Revalidations, long Evictions, long Expirations, double HitRate);

public sealed record TraceRequest(string? Spec, string? Hex, string? InPort);

public sealed record LiveTraceRequest(string? Filter, int? Count, double? TimeoutSeconds);

public sealed record TraceStepView(string Stage, string Detail);

public sealed record TraceView(string Flow, TraceStepView[] Steps, string Actions, string? DropReason, bool CacheHit, string? Time);

public sealed record LiveTraceView(int Requested, int Recorded, bool Complete, TraceView[] Packets);

public sealed record AttachmentView(string Id, string Network, string Netns, string ContainerId, string Ifname, string Port, string Mac,
    int Mtu, string? Address, string? Ip, string? Gateway, string? Source, DateTime CreatedAt);

public sealed record AttachmentCheckView(bool Ok, string[] Problems);

public sealed record AllocationView(string Address, string Attachment, string ContainerId, string Ifname, string Port);
