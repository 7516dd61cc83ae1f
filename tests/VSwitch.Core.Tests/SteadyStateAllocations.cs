namespace VSwitch.Core.Tests;

/// <summary>
/// Measures what a loop allocates on this thread once it is in steady state.
/// Why several windows: the first measured window can hold one-off runtime work done on this thread,
/// not by the code under test. CI caught one: an on-stack-replacement compile of the test's own loop
/// (1992 bytes, reproducible with DOTNET_TC_CallCounting=0, gone with DOTNET_TC_OnStackReplacement=0).
/// A per-packet allocation shows in every window, so a test built on this still fails on one.
/// </summary>
public static class SteadyStateAllocations
{
    /// <summary>Runs <paramref name="run"/> with <paramref name="rounds"/> until one window allocates 0 bytes,
    /// at most <paramref name="windows"/> times. Returns the bytes of each window measured (the last is 0 on success)
    /// and how many rounds ran in all.</summary>
    public static (long[] Windows, int RoundsRun) Measure(Action<int> run, int rounds, int windows = 4)
    {
        var seen = new List<long>(windows);
        int total = 0;
        for (int w = 0; w < windows; w++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            run(rounds);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            total += rounds;
            seen.Add(allocated);
            if (allocated == 0) break;
        }
        return (seen.ToArray(), total);
    }

    /// <summary>Asserts that the last window allocated nothing, naming every window's bytes when it did not.</summary>
    public static void AssertNone((long[] Windows, int RoundsRun) m) =>
        Assert.True(m.Windows[^1] == 0,
            $"steady state allocated in every one of {m.Windows.Length} windows: {string.Join(", ", m.Windows)} bytes");
}

/// <summary>The measurement itself must be able to fail: a loop that allocates per round is caught in every window.</summary>
public class SteadyStateAllocationsTests
{
    private static object? sink;

    [Fact]
    public void A_per_round_allocation_shows_in_every_window()
    {
        var m = SteadyStateAllocations.Measure(n => { for (int i = 0; i < n; i++) sink = new byte[16]; }, 100);
        Assert.Equal(4, m.Windows.Length);
        Assert.All(m.Windows, w => Assert.True(w >= 100 * 16, $"window allocated {w} bytes"));
        Assert.Throws<Xunit.Sdk.TrueException>(() => SteadyStateAllocations.AssertNone(m));
        Assert.NotNull(sink);
    }
}
