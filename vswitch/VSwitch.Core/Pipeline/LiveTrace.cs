using VSwitch.Core.Flow;
using VSwitch.Core.Tables.Rules;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// A live trace: the next <see cref="Remaining"/> packets that match <see cref="Filter"/> are traced
/// as they pass (VPP's `trace add`). The datapath checks one reference per batch when none is armed.
/// </summary>
public sealed class LiveTrace(FlowMatch filter, int count)
{
    private int _remaining = count;
    private readonly List<PacketTrace> _results = [];
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public FlowMatch Filter { get; } = filter;
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
