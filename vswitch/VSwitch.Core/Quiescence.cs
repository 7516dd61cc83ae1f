using System.Diagnostics;

namespace VSwitch.Core;

/// <summary>
/// Waits until every datapath thread has passed its quiescent point (<see cref="DatapathThread.SeenVersion"/>)
/// after a topology change, so that the memory of a port removed by it (an AF_PACKET ring, native
/// transmit arrays, a closed fd whose number the kernel may hand out again) can be freed.
/// <para>
/// There is no timeout after which memory is freed anyway: a thread that does not come back may
/// still be inside the port, and freeing under it turns a stall into memory corruption. A thread
/// that is slow is reported through <paramref name="stuck"/> every <paramref name="reportEvery"/>
/// (which thread, for how long) and waited for. A thread that has exited (stopped, or ended on a
/// fault) touches nothing any more and counts as quiescent.
/// </para>
/// </summary>
public static class Quiescence
{
    public static readonly TimeSpan DefaultReportEvery = TimeSpan.FromSeconds(5);

    /// <summary>Returns once every thread has seen <paramref name="version"/> or has exited.</summary>
    /// <param name="stuck">Called (thread, time waited so far) every <paramref name="reportEvery"/> while a thread is behind.</param>
    public static void Wait(IReadOnlyList<DatapathThread> threads, long version, Action<DatapathThread, TimeSpan>? stuck = null, TimeSpan? reportEvery = null) =>
        Wait(threads, static t => t.SeenVersion, version, stuck, reportEvery);

    /// <summary>
    /// Returns once every thread polls by receive-queue assignment <paramref name="version"/> (or has exited):
    /// a queue parked by it is no longer read by its old thread, so another may start.
    /// </summary>
    public static void WaitRxq(IReadOnlyList<DatapathThread> threads, long version, Action<DatapathThread, TimeSpan>? stuck = null, TimeSpan? reportEvery = null) =>
        Wait(threads, static t => t.SeenRxqVersion, version, stuck, reportEvery);

    private static void Wait(IReadOnlyList<DatapathThread> threads, Func<DatapathThread, long> seen, long version, Action<DatapathThread, TimeSpan>? stuck, TimeSpan? reportEvery)
    {
        var every = reportEvery ?? DefaultReportEvery;
        var sw = Stopwatch.StartNew();
        var nextReport = every;
        // Wake every thread asleep in epoll_wait, so that it passes its quiescent point now rather
        // than at its idle timeout; a busy thread passes it after the batch in hand.
        foreach (var t in threads) t.Wake();
        int spins = 0;
        foreach (var t in threads)
        {
            while (seen(t) < version && t.IsRunning)
            {
                if (sw.Elapsed >= nextReport)
                {
                    stuck?.Invoke(t, sw.Elapsed);
                    nextReport = sw.Elapsed + every;
                    t.Wake();
                }
                // Most waits end within microseconds: yield first, then sleep.
                if (++spins < 100) Thread.Yield();
                else Thread.Sleep(1);
            }
        }
    }
}
