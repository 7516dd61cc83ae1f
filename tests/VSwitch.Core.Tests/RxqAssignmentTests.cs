using System.Diagnostics;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports;

namespace VSwitch.Core.Tests;

/// <summary>
/// Which thread polls which port receive queue (RSS): the default spread, pins, a rebalance by load or round-robin,
/// and moving a queue between running threads without a frame read twice, lost, or read by two threads at once.
/// </summary>
public class RxqAssignmentTests
{
    private static RxQueueRef Q(int port, int queue) => new(port, queue);

    [Fact]
    public void By_default_a_ports_queues_spread_over_the_threads_and_one_thread_takes_everything()
    {
        var a = RxqAssignment.Default;
        Assert.Equal(0, a.ThreadOf(Q(0, 0), 2));
        Assert.Equal(1, a.ThreadOf(Q(0, 1), 2));
        Assert.Equal(1, a.ThreadOf(Q(1, 0), 2));
        Assert.Equal(0, a.ThreadOf(Q(1, 1), 2));
        // One queue per port: the port id modulo the threads, as before queues existed.
        for (int p = 0; p < 8; p++) Assert.Equal(p % 3, a.ThreadOf(Q(p, 0), 3));
        for (int p = 0; p < 8; p++) Assert.Equal(0, a.ThreadOf(Q(p, 1), 1));
    }

    [Fact]
    public void Round_robin_puts_each_ports_queues_on_different_threads_and_keeps_pins()
    {
        var queues = new List<(RxQueueRef, long)>();
        for (int p = 0; p < 3; p++)
            for (int q = 0; q < 2; q++) queues.Add((Q(p, q), 0));
        var a = RxqAssignment.Default.Rebalance(queues, 2);
        for (int p = 0; p < 3; p++) Assert.NotEqual(a.ThreadOf(Q(p, 0), 2), a.ThreadOf(Q(p, 1), 2));
        Assert.Equal(3, queues.Count(x => a.ThreadOf(x.Item1, 2) == 0));

        var pinned = a.Pin(Q(2, 1), 0).Pin(Q(2, 0), 0);
        var again = pinned.Rebalance(queues, 2);
        Assert.Equal(0, again.ThreadOf(Q(2, 0), 2));
        Assert.Equal(0, again.ThreadOf(Q(2, 1), 2));
        Assert.True(again.IsPinned(Q(2, 1)));
        // The pinned two count: thread 0 gets one more, thread 1 three.
        Assert.Equal(3, queues.Count(x => again.ThreadOf(x.Item1, 2) == 0));
        Assert.Equal(3, queues.Count(x => again.ThreadOf(x.Item1, 2) == 1));

        var unpinned = again.Unpin(Q(2, 1), 2);
        Assert.False(unpinned.IsPinned(Q(2, 1)));
        Assert.Equal(0, unpinned.ThreadOf(Q(2, 1), 2)); // stays where it was until the next rebalance
    }

    [Fact]
    public void By_cycles_the_busiest_queues_go_to_the_least_loaded_thread()
    {
        var queues = new List<(RxQueueRef, long)> { (Q(0, 0), 100), (Q(1, 0), 90), (Q(2, 0), 10), (Q(3, 0), 5) };
        var a = RxqAssignment.Default.Rebalance(queues, 2);
        Assert.Equal(a.ThreadOf(Q(0, 0), 2), a.ThreadOf(Q(3, 0), 2));
        Assert.Equal(a.ThreadOf(Q(1, 0), 2), a.ThreadOf(Q(2, 0), 2));
        Assert.NotEqual(a.ThreadOf(Q(0, 0), 2), a.ThreadOf(Q(1, 0), 2));
    }

    [Fact]
    public void A_move_parks_only_the_queues_that_change_thread_and_a_removed_port_is_forgotten()
    {
        var now = RxqAssignment.Default;
        var next = now.Pin(Q(0, 0), 1);
        var parking = now.Parking(next, [Q(0, 0), Q(0, 1), Q(1, 0)], 2);
        Assert.NotNull(parking);
        Assert.Equal(RxqAssignment.Parked, parking!.ThreadOf(Q(0, 0), 2));
        Assert.Equal(1, parking.ThreadOf(Q(0, 1), 2));
        Assert.Equal(1, parking.ThreadOf(Q(1, 0), 2));
        Assert.Null(next.Parking(next, [Q(0, 0), Q(0, 1)], 2));
        var forgot = next.WithoutPort(0);
        Assert.False(forgot.IsPinned(Q(0, 0)));
        Assert.Equal(0, forgot.ThreadOf(Q(0, 0), 2));
    }

    /// <summary>A receive queue that notices two readers at once (it holds each Receive open a little to make the window wide).</summary>
    private sealed class GuardedQueue(string name) : IRxQueue
    {
        public readonly MemoryPort Inner = new(name);
        private int _inside;
        public int Overlaps;
        public int PollFd => -1;
        public int Receive(PacketBatch batch, PacketPool pool)
        {
            if (Interlocked.Exchange(ref _inside, 1) != 0) Interlocked.Increment(ref Overlaps);
            Thread.SpinWait(200);
            int n = Inner.Receive(batch, pool);
            Volatile.Write(ref _inside, 0);
            return n;
        }
    }

    /// <summary>A port with two receive queues (what a multiqueue TAP is to the threads).</summary>
    private sealed class TwoQueuePort(string name) : IPort
    {
        public readonly GuardedQueue[] Queues = [new(name + "/0"), new(name + "/1")];
        public string Name => name;
        public int PollFd => -1;
        public int RxQueueCount => 2;
        public IRxQueue RxQueue(int queue) => queue == 0 ? this : Queues[1];
        public int Receive(PacketBatch batch, PacketPool pool) => Queues[0].Receive(batch, pool);
        public int Transmit(PacketBatch batch) { batch.ReleaseAll(); return 0; }
        public void Dispose() { }
    }

    [Fact]
    public void Moving_queues_between_running_threads_under_traffic_loses_and_duplicates_nothing()
    {
        var dp = new Datapath();
        dp.AddNetwork("n");
        var src = new TwoQueuePort("src");
        var dst = new MemoryPort("dst") { KeepSent = false };
        dp.AddPort(src, "n");
        dp.AddPort(dst, "n");
        var opt = new DatapathOptions { Threads = 2, PoolSize = 1024, LargePoolSize = 0 };
        var threads = new[] { new DatapathThread(dp, opt, 0), new DatapathThread(dp, opt, 1) };
        foreach (var t in threads) t.Start();
        try
        {
            // Learn dst's MAC so that frames go to it alone (not flooded back to src).
            dst.Inject(TestFrames.Eth(TestFrames.Mac(1), TestFrames.Mac(2)));
            var sw = Stopwatch.StartNew();
            while (dp.MacTable.Count < 1 && sw.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(2);

            const int PerQueue = 20_000, Chunks = 40;
            int moves = 0;
            var feeder = new Thread(() =>
            {
                for (int i = 0; i < PerQueue; i++)
                {
                    src.Queues[0].Inner.Inject(TestFrames.Eth(TestFrames.Mac(2), TestFrames.Mac(1)));
                    src.Queues[1].Inner.Inject(TestFrames.Eth(TestFrames.Mac(2), TestFrames.Mac(3)));
                    if (i % 64 == 0) Thread.Yield();
                    // Paced by the mover, not by the clock: after each chunk of frames, wait for a move, so that on a
                    // quiet machine the frames do not all go in before the queues have moved a few times.
                    if (i % (PerQueue / Chunks) == 0)
                    {
                        int seen = Volatile.Read(ref moves);
                        var wait = Stopwatch.StartNew();
                        while (Volatile.Read(ref moves) == seen && wait.Elapsed < TimeSpan.FromSeconds(2)) Thread.Yield();
                    }
                }
            }) { IsBackground = true };
            feeder.Start();
            var srcId = dp.Topology.PortByName("src")!.Id;
            while (feeder.IsAlive && sw.Elapsed < TimeSpan.FromSeconds(30))
            {
                // Both queues change thread every time.
                var now = dp.RxqAssignment;
                int t0 = now.ThreadOf(Q(srcId, 0), 2), t1 = now.ThreadOf(Q(srcId, 1), 2);
                dp.MoveRxQueues(now.Pin(Q(srcId, 0), 1 - t0).Pin(Q(srcId, 1), 1 - t1), threads, 2);
                Interlocked.Increment(ref moves);
            }
            feeder.Join();
            while (dst.SentCount < 2 * PerQueue && sw.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(5);
            Thread.Sleep(50); // a duplicate would show after the last frame
            Assert.True(moves > 10, $"only {moves} moves");
            Assert.Equal(2L * PerQueue, dst.SentCount);
            Assert.Equal(0, src.Queues[0].Overlaps + src.Queues[1].Overlaps);
            // Each queue is on exactly one thread's list.
            foreach (int q in new[] { 0, 1 })
                Assert.Single(threads, t => t.RxQueues.Any(r => r.Port.Name == "src" && r.Queue == q));
        }
        finally
        {
            foreach (var t in threads) t.Dispose();
        }
    }
}
