namespace VSwitch.Api;

// GET /v1/stats: ports, drops by reason (in all and per stage), per-stage cost (VPP's "show runtime") and the flow caches.

/// <summary>
/// GET /v1/stats. <see cref="MacLearnsRefused"/>: addresses the MAC table did not learn because it, or the
/// port, was at its limit (mac-table-full; the frames were still flooded).
/// </summary>
public sealed record StatsView(PortView[] Ports, DropView[] Drops, StageView[] Stages, int MacEntries, int MacCapacity, FlowCacheView FlowCache,
    long MacLearnsRefused = 0, LimitView[]? Limits = null, CaptureView[]? Captures = null, ThreadView[]? Threads = null)
{
    /// <summary>Masquerade and published ports' counters; null when the switch has no host port.</summary>
    public NorthSouthStatsView? NorthSouth { get; init; }
}
/// <summary>
/// A datapath thread: its ports, the frames it received, and the CPU time the kernel counted for it (utime + stime of
/// /proc/self/task/TID: it sleeps in epoll_wait when idle, so CPU time over wall time is its load; a busy-polling thread is always at 100 %).
/// </summary>
public sealed record ThreadView(int Index, string Name, string[] Ports, long RxPackets, double CpuSeconds, bool Running)
{
    /// <summary>The port receive queues the thread polls (OVS's pmd-rxq-show), with what it measured on each since it came to it.</summary>
    public RxQueueView[] RxQueues { get; init; } = [];
    /// <summary>Seconds the thread spent receiving and processing batches (its sleep and empty polls excluded).</summary>
    public double BusySeconds { get; init; }
}

/// <summary>
/// One port receive queue on a thread: frames read from it, the thread's busy seconds spent on it, and that as a share
/// of the thread's busy time on all its queues (OVS's "usage"); <see cref="Pinned"/> when an operator pinned it there.
/// </summary>
public sealed record RxQueueView(string Port, int Queue, long Frames, double BusySeconds, double SharePercent, bool Pinned);

/// <summary>POST /v1/threads/pin: pin a port's receive queue to a datapath thread (<see cref="Thread"/> null: unpin it).</summary>
public sealed record RxQueuePinRequest(string Port, int Queue, int? Thread);

/// <summary>
/// POST /v1/threads/rebalance (body optional): <see cref="Assign"/> "cycles" (default: by the busy time measured on each
/// queue, round-robin while nothing was measured) or "roundrobin" (OVS's pmd-rxq-assign).
/// </summary>
public sealed record RxQueueRebalanceRequest(string? Assign = null);

/// <summary>
/// A capture running now (POST /v1/capture): its port (null: drops on every port), direction, filter, and the frames
/// it took so far and lost because its reader was slower than the traffic (the ring was full).
/// </summary>
public sealed record CaptureView(string? Port, string Direction, string? Filter, bool Drops, string? Reason, long Captured, long Lost);

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
