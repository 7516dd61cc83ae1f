namespace VSwitch.Api;

// GET /v1/stats: ports, drops by reason, per-stage cost (VPP's "show runtime") and the flow caches.

public sealed record StatsView(PortView[] Ports, DropView[] Drops, StageView[] Stages, int MacEntries, int MacCapacity, FlowCacheView FlowCache);

public sealed record StageView(string Name, long Calls, long Packets, double NsPerPacket, double PacketsPerCall);

public sealed record DropView(string Reason, long Packets);

/// <summary>The datapath threads' flow caches, summed.</summary>
public sealed record FlowCacheView(long Flows, long Hits, long Misses, long Revalidations, long Evictions, long Expirations, double HitRate);
