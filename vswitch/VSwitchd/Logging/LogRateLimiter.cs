namespace VSwitchd.Logging;

/// <summary>
/// The daemon's log budget: a token bucket of N lines a second with bursts of N, shared by every
/// category, in front of the real providers (console or journald). A storm of events (ports that
/// flap, a container sending garbage, a failing store) cannot flood the journal or cost a core:
/// the lines over the budget are counted (<see cref="Suppressed"/>, shown in vsctl stats as
/// log-lines-per-second) and the first line that passes after them says how many were left out.
/// Not on the packet path: the datapath threads log only on port faults, once per fault.
/// </summary>
public sealed class LogRateLimiter : ILoggerProvider
{
    private readonly ILoggerFactory _inner;
    private readonly object _gate = new();
    private readonly int _perSecond;
    private readonly Func<long> _nowMs;
    private double _tokens;
    private long _refillMs;
    private long _suppressed, _unreported;

    public LogRateLimiter(ILoggerFactory inner, int linesPerSecond, Func<long>? nowMs = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(linesPerSecond, 1);
        _inner = inner;
        _perSecond = linesPerSecond;
        _nowMs = nowMs ?? (() => Environment.TickCount64);
        _tokens = linesPerSecond;
        _refillMs = _nowMs();
    }

    /// <summary>Lines not written because the budget was spent, since the start.</summary>
    public long Suppressed => Interlocked.Read(ref _suppressed);

    public ILogger CreateLogger(string categoryName) => new Limited(this, _inner.CreateLogger(categoryName));

    public void Dispose() => _inner.Dispose();

    /// <summary>Takes a line from the budget; says how many lines were left out since the last one that passed.</summary>
    internal bool TryTake(out long leftOut)
    {
        lock (_gate)
        {
            long now = _nowMs();
            if (now != _refillMs)
            {
                _tokens = Math.Min(_perSecond, _tokens + (now - _refillMs) * _perSecond / 1000.0);
                _refillMs = now;
            }
            if (_tokens < 1)
            {
                _suppressed++;
                _unreported++;
                leftOut = 0;
                return false;
            }
            _tokens -= 1;
            leftOut = _unreported;
            _unreported = 0;
            return true;
        }
    }

    private sealed class Limited(LogRateLimiter budget, ILogger inner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);
        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!inner.IsEnabled(logLevel) || !budget.TryTake(out long leftOut)) return;
            if (leftOut > 0)
                inner.LogWarning("{Count} log line(s) left out: over limits.logLinesPerSecond ({PerSecond} a second)", leftOut, budget._perSecond);
            inner.Log(logLevel, eventId, state, exception, formatter);
        }
    }
}
