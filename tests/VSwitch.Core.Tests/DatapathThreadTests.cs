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
