namespace VSwitch.Api;

// GET /v1/stats: ports, drops by reason (in all and per stage), per-stage cost (VPP's "show runtime") and the flow caches.

/// <summary>
/// GET /v1/stats. <see cref="MacLearnsRefused"/>: addresses the MAC table did not learn because it, or the
/// port, was at its limit (mac-table-full; the frames were still flooded).
/// </summary>
public sealed record StatsView(PortView[] Ports, DropView[] Drops, StageView[] Stages, int MacEntries, int MacCapacity, FlowCacheView FlowCache,
    long MacLearnsRefused = 0, LimitView[]? Limits = null)
{
    /// <summary>Masquerade and published ports' counters; null when the switch has no host port.</summary>
    public NorthSouthStatsView? NorthSouth { get; init; }
}

/// <summary>
/// One bounded table or queue: how much of it is used, its limit, how many times the limit was hit
/// (<see cref="Hits"/>: entries refused, packets dropped, flows evicted or lines suppressed, as
/// <see cref="AtLimit"/> says) and the setting that changes the limit (<see cref="Setting"/>, empty
/// when it is fixed). <see cref="Used"/> is -1 where nothing is held (a rate, a size per request).
/// </summary>
public sealed record LimitView(string Resource, long Used, long Limit, long Hits, string AtLimit, string Setting);

/// <summary>
/// One stage (VPP's node): calls (batches), packets, cost per packet estimated from the sampled
/// batches (<see cref="TimedPackets"/> of them), and the drops it gave by reason (VPP's per-node
/// error counters; summed over stages they are <see cref="StatsView.Drops"/>).
/// </summary>
public sealed record StageView(string Name, long Calls, long Packets, double NsPerPacket, double PacketsPerCall, long TimedPackets, DropView[] Drops);

/// <summary>Packets dropped for a reason; <see cref="Expected"/> when the reason is no fault (no-output, router-consumed).</summary>
public sealed record DropView(string Reason, long Packets, bool Expected = false);

/// <summary>The datapath threads' flow caches, summed.</summary>
public sealed record FlowCacheView(long Flows, long Hits, long Misses, long Revalidations, long Evictions, long Expirations, double HitRate);
