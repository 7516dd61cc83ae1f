using System.Diagnostics;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports;

namespace VSwitch.Core.Tests;

/// <summary>
/// Port removal frees a port's memory only once every datapath thread has passed its quiescent
/// point: with no timeout (a stuck thread is reported and waited for), and a thread that has exited
/// counts as quiescent.
/// </summary>
public class QuiescenceTests
{
    /// <summary>A port without a poll fd (polled on every loop) whose Receive can be made to block: a thread stuck inside a port.</summary>
    private sealed class StallingPort(string name) : IPort
    {
        public readonly ManualResetEventSlim Release = new(true);
        public readonly ManualResetEventSlim Entered = new(false);
        public string Name => name;
        public int PollFd => -1;
        public int Receive(PacketBatch batch, PacketPool pool)
        {
            if (!Release.IsSet) { Entered.Set(); Release.Wait(); }
            return 0;
        }
        public int Transmit(PacketBatch batch) { batch.ReleaseAll(); return 0; }
        public void Dispose() { }
    }

    private static void WaitFor(Func<bool> condition, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"timed out waiting for {what}");
            Thread.Sleep(2);
        }
    }

    [Fact]
    public void A_stuck_thread_is_reported_and_waited_for_never_given_up_on()
    {
        var dp = new Datapath();
        dp.AddNetwork("n");
        var stalling = new StallingPort("stall");
        dp.AddPort(stalling, "n");
        dp.AddPort(new MemoryPort("gone"), "n");
        using var t = new DatapathThread(dp, new DatapathOptions { PoolSize = 64, LargePoolSize = 0 }, 0);
        t.Start();
        WaitFor(() => t.SeenVersion == dp.Topology.Version, "the thread to see the ports");

        stalling.Release.Reset();
        Assert.True(stalling.Entered.Wait(TimeSpan.FromSeconds(10)), "the thread never entered the port");
        dp.RemovePort("gone");
        long version = dp.Topology.Version;
        var reports = new List<(int Thread, TimeSpan Waited)>();
        var wait = new Thread(() => Quiescence.Wait([t], version, (th, waited) => { lock (reports) reports.Add((th.Index, waited)); }, TimeSpan.FromMilliseconds(100)))
            { IsBackground = true, Name = "control" };
        wait.Start();
        // Well past any timeout the old wait had (2 s): still waiting, and saying so.
        WaitFor(() => { lock (reports) return reports.Count >= 3; }, "three reports of the stuck thread");
        Assert.True(wait.IsAlive, "the wait gave up on a thread that may still touch the port");
        lock (reports)
        {
            Assert.All(reports, r => Assert.Equal(0, r.Thread));
            Assert.True(reports[^1].Waited >= TimeSpan.FromMilliseconds(250), $"reported after {reports[^1].Waited}");
        }

        stalling.Release.Set();
        Assert.True(wait.Join(TimeSpan.FromSeconds(10)), "the wait did not end once the thread came back");
        Assert.True(t.SeenVersion >= version);
    }

    /// <summary>A port with a poll fd that never becomes readable: its thread sleeps in epoll_wait.</summary>
    private sealed class QuietPort(string name) : IPort
    {
        private readonly Ports.Linux.WakeEvent _fd = new();
        public string Name => name;
        public int PollFd => _fd.Fd;
        public int Receive(PacketBatch batch, PacketPool pool) => 0;
        public int Transmit(PacketBatch batch) { batch.ReleaseAll(); return 0; }
        public void Dispose() => _fd.Dispose();
    }

    [Fact]
    public void A_sleeping_thread_is_woken_to_pass_at_once_and_a_stopped_thread_counts_as_quiescent()
    {
        var dp = new Datapath();
        dp.AddNetwork("n");
        // Two threads: index 0 owns even port ids, index 1 odd ones.
        var opt = new DatapathOptions { Threads = 2, PoolSize = 64, LargePoolSize = 0 };
        using var q1 = new QuietPort("q1");
        using var q2 = new QuietPort("q2");
        dp.AddPort(q1, "n"); // id 1: thread 1
        dp.AddPort(q2, "n"); // id 2: thread 0, which then sleeps in epoll_wait (100 ms at a time)
        using var sleeping = new DatapathThread(dp, opt, 0);
        using var stopped = new DatapathThread(dp, opt, 1);
        sleeping.Start();
        stopped.Start();
        stopped.Stop();
        Assert.False(stopped.IsRunning);
        WaitFor(() => sleeping.SeenVersion == dp.Topology.Version, "the thread to see its port");
        // Without the wake-up each wait would last until the thread's idle timeout (about 100 ms):
        // 30 of them would take 3 s or more.
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 30; i++)
        {
            dp.AddPort(new MemoryPort("x"), "n"); // id 3: the stopped thread's
            dp.RemovePort("x");
            Quiescence.Wait([sleeping, stopped], dp.Topology.Version);
            Assert.True(sleeping.SeenVersion >= dp.Topology.Version);
        }
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1.5), $"30 waits took {sw.Elapsed}");
    }

    /// <summary>CPU time (clock ticks) of this process's thread named <paramref name="name"/>, from /proc.</summary>
    private static long ThreadTicks(string name)
    {
        foreach (var dir in Directory.GetDirectories("/proc/self/task"))
        {
            string comm;
            try { comm = File.ReadAllText(Path.Combine(dir, "comm")).Trim(); } catch (IOException) { continue; }
            if (comm != name) continue;
            string stat = File.ReadAllText(Path.Combine(dir, "stat"));
            var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(f[11]) + long.Parse(f[12]); // utime, stime (fields 14 and 15)
        }
        throw new InvalidOperationException($"no thread named {name}");
    }

    [Fact]
    public void A_woken_polling_thread_still_sleeps_between_polls()
    {
        var dp = new Datapath();
        dp.AddNetwork("n");
        // Thread index 7 of 8 (a name no other test's thread has): it owns port id 7, a MemoryPort
        // without a poll fd, so it polls, sleeping 1 ms between idle rounds.
        for (int i = 1; i <= 7; i++) dp.AddPort(new MemoryPort("m" + i), "n");
        using var t = new DatapathThread(dp, new DatapathOptions { Threads = 8, PoolSize = 64, LargePoolSize = 0 }, 7);
        t.Start();
        WaitFor(() => t.SeenVersion == dp.Topology.Version, "the thread to see its port");
        t.Wake();
        // A wake-up left raised would end every 1 ms sleep at once: the thread would spin at 100%
        // (about 50 ticks of 10 ms in half a second).
        long before = ThreadTicks("vswitch-dp7");
        var sw = Stopwatch.StartNew();
        Thread.Sleep(500); // a measuring window, not a wait for a condition
        long used = ThreadTicks("vswitch-dp7") - before;
        Assert.True(used < 20, $"the datapath thread used {used} ticks of CPU in {sw.ElapsedMilliseconds} ms");
    }
}
