namespace VSwitchd.Runtime.Handover;

/// <summary>
/// Keeps API writes out of a hand-over: the successor builds its runtime from the state database, so a change
/// that landed in the predecessor after the successor read it would be in neither the successor's tables nor (if
/// the predecessor then exits) anywhere that runs. Closing the gate refuses new writes (503, "retry") and waits
/// for those in flight to finish; a failed hand-over opens it again.
/// </summary>
public sealed class WriteGate
{
    private readonly object _lock = new();
    private int _inFlight;
    private bool _closed;

    /// <summary>False when the gate is closed: refuse the write.</summary>
    public bool TryEnter()
    {
        lock (_lock)
        {
            if (_closed) return false;
            _inFlight++;
            return true;
        }
    }

    public void Exit()
    {
        lock (_lock)
        {
            _inFlight--;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>Refuses new writes and waits (up to <paramref name="timeout"/>) for those in flight; false if some are still running.</summary>
    public bool Close(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (_lock)
        {
            _closed = true;
            while (_inFlight > 0)
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) return false;
                Monitor.Wait(_lock, left);
            }
            return true;
        }
    }

    public void Open()
    {
        lock (_lock) _closed = false;
    }
}
