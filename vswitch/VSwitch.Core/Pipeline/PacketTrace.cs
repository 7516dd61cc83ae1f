namespace VSwitch.Core.Pipeline;

/// <summary>One step of a trace: which stage, and what it decided.</summary>
public sealed record TraceStep(string Stage, string Detail);

/// <summary>
/// What happened to one packet, step by step (like `ovs-appctl ofproto/trace` and VPP's `show trace`).
/// Built only when tracing: the normal path passes null and pays nothing.
/// </summary>
public sealed class PacketTrace
{
    public List<TraceStep> Steps { get; } = [];
    public string Flow { get; set; } = "";
    public string Actions { get; set; } = "";
    public string? DropReason { get; set; }
    public bool CacheHit { get; set; }
    public DateTime Time { get; set; } = DateTime.UtcNow;

    public void Add(string stage, string detail) => Steps.Add(new TraceStep(stage, detail));
}

/// <summary>
/// A live trace: the next <see cref="Remaining"/> packets that match <see cref="Filter"/> are traced
/// as they pass (VPP's `trace add`). The datapath checks one reference per batch when none is armed.
/// </summary>
public sealed class LiveTrace(Tables.Rules.FlowMatch filter, int count)
{
    private int _remaining = count;
    private readonly List<PacketTrace> _results = [];
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Tables.Rules.FlowMatch Filter { get; } = filter;
    public int Requested { get; } = count;
    public int Remaining => Volatile.Read(ref _remaining);
    public Task Completion => _done.Task;

    public List<PacketTrace> Results
    {
        get { lock (_results) return [.. _results]; }
    }

    /// <summary>Claims a slot for one more packet; false once enough were recorded.</summary>
    public bool TryClaim() => Interlocked.Decrement(ref _remaining) >= 0;

    public void Record(PacketTrace t)
    {
        lock (_results)
        {
            _results.Add(t);
            if (_results.Count >= Requested) _done.TrySetResult();
        }
    }
}
