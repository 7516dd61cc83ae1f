namespace VSwitch.Core.Pipeline;

/// <summary>
/// The ICMP error budget of one datapath thread: a token bucket of 100 per second with bursts of
/// 100, like the kernel's icmp_ratelimit, so that a flood of bad packets cannot make the router a
/// flood of errors. One thread owns it: no atomics.
/// </summary>
public sealed class IcmpRateLimiter
{
    public const int PerSecond = 100;
    private double _tokens = PerSecond;
    private long _refillMs;

    /// <summary>Takes one token if there is one; false means the error must not be sent (counted as icmp-rate-limited).</summary>
    public bool TryTake(long nowMs)
    {
        if (nowMs != _refillMs)
        {
            _tokens = Math.Min(PerSecond, _tokens + (nowMs - _refillMs) * PerSecond / 1000.0);
            _refillMs = nowMs;
        }
        if (_tokens < 1) return false;
        _tokens -= 1;
        return true;
    }
}
