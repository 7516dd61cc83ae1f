using System.Diagnostics;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports;

namespace VSwitch.Core.Tests;

/// <summary>A datapath thread outlives a fault in one of its ports: the batch is dropped and counted, forwarding goes on.</summary>
public class DatapathThreadTests
{
    /// <summary>A MemoryPort whose Receive throws once, after it has filled the batch (the worst moment).</summary>
    private sealed class FaultyPort(string name) : IPort
    {
        private readonly MemoryPort _inner = new(name);
        public int Faults;
        public bool Armed = true;
        public string Name => name;
        public int PollFd => -1;
        public void Inject(byte[] frame) => _inner.Inject(frame);
        public int Receive(PacketBatch batch, PacketPool pool)
        {
            int n = _inner.Receive(batch, pool);
            if (n > 0 && Armed) { Armed = false; Faults++; throw new InvalidOperationException("a bug in a port"); }
            return n;
        }
        public int Transmit(PacketBatch batch) => _inner.Transmit(batch);
        public void Dispose() => _inner.Dispose();
    }

    /// <summary>A port whose descriptor epoll refuses: the thread's loop itself fails on it (outside a batch).</summary>
    private sealed class BadFdPort(string name) : IPort
    {
        public string Name => name;
        public int PollFd => int.MaxValue;
        public int Receive(PacketBatch batch, PacketPool pool) => 0;
        public int Transmit(PacketBatch batch) => 0;
        public void Dispose() { }
    }

    /// <summary>systemd's watchdog is petted while the threads run, and no longer once one stopped on a fault.</summary>
    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void The_systemd_watchdog_stops_petting_when_a_datapath_thread_stopped_on_a_fault()
    {
        var dp = new Datapath();
        dp.AddNetwork("n");
        var opt = new DatapathOptions { PoolSize = 256, LargePoolSize = 0 };
        using var healthy = new DatapathThread(dp, opt, 0);
        healthy.Start();
        Assert.True(VSwitchd.Runtime.SystemdWatchdog.DatapathAlive([healthy], out string? why), why);

        // The broken thread runs a datapath of its own: on the same one, the healthy thread would poll the bad
        // port too and could stop on it first (seen under load: "thread 0 stopped on a fault").
        var dpBroken = new Datapath();
        dpBroken.AddNetwork("n");
        dpBroken.AddPort(new BadFdPort("bad"), "n");
        using var broken = new DatapathThread(dpBroken, opt, 0);
        broken.Start();
        var sw = Stopwatch.StartNew();
        while (broken.IsRunning && sw.Elapsed < TimeSpan.FromSeconds(5)) Thread.Sleep(5);
        Assert.True(broken.StoppedOnFault);
        Assert.False(VSwitchd.Runtime.SystemdWatchdog.DatapathAlive([healthy, broken], out why));
        Assert.Equal("datapath thread 1 stopped on a fault", why);
        healthy.Stop();
        Assert.False(VSwitchd.Runtime.SystemdWatchdog.DatapathAlive([healthy], out why));
        Assert.Equal("datapath thread 0 is not running", why);
    }

    [Fact]
    public void A_port_that_throws_costs_one_batch_not_the_thread()
    {
        var dp = new Datapath();
        dp.AddNetwork("n");
        var a = new FaultyPort("a");
        var b = new MemoryPort("b") { KeepSent = false };
        dp.AddPort(a, "n");
        dp.AddPort(b, "n");
        using var t = new DatapathThread(dp, new DatapathOptions { PoolSize = 256, LargePoolSize = 0 }, 0);
        t.Start();
        a.Inject(TestFrames.Eth(TestFrames.Mac(2), TestFrames.Mac(1)));     // read, then the port throws: lost
        var sw = Stopwatch.StartNew();
        while (t.Faults == 0 && sw.Elapsed < TimeSpan.FromSeconds(5)) Thread.Sleep(5);
        Assert.Equal(1, t.Faults);
        Assert.IsType<InvalidOperationException>(t.Failure);

        for (int i = 0; i < 5; i++) a.Inject(TestFrames.Eth(TestFrames.Mac(2), TestFrames.Mac(1)));
        while (b.SentCount < 5 && sw.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(5);
        Assert.Equal(5, b.SentCount);                                          // still forwarding (flooded to b)
        Assert.Equal(1, t.Faults);
    }
}
