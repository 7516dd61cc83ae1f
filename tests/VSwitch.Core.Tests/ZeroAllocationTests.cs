using VSwitch.Core.Buffers;
using VSwitch.Core.Ports;

namespace VSwitch.Core.Tests;

/// <summary>The hot path must not allocate per packet: steady state classify + bridge + output allocates 0 bytes.</summary>
public class ZeroAllocationTests
{
    [Fact]
    public void Steady_state_pipeline_allocates_nothing()
    {
        var dp = new Datapath();
        dp.AddNetwork("n1");
        var ports = new MemoryPort[4];
        var ids = new int[4];
        for (int i = 0; i < 4; i++)
        {
            ports[i] = new MemoryPort("p" + i) { KeepSent = false };
            ids[i] = dp.AddPort(ports[i], "n1").Id;
        }
        // Port i sends to port (i+1)%4: known unicast once learned, plus some broadcast floods.
        for (int i = 0; i < 4; i++)
        {
            var frames = new byte[32][];
            for (int j = 0; j < 32; j++)
                frames[j] = j % 8 == 0
                    ? TestFrames.Eth(0xFFFF_FFFF_FFFFUL, TestFrames.Mac(i))
                    : TestFrames.Eth(TestFrames.Mac((i + 1) % 4), TestFrames.Mac(i), payload: 46 + j);
            ports[i].Replay(frames);
        }
        var pool = new PacketPool(512);
        var ctx = dp.CreateContext(pool);
        var batch = new PacketBatch(32);

        void Run(int rounds)
        {
            for (int r = 0; r < rounds; r++)
                for (int i = 0; i < 4; i++)
                {
                    ports[i].Receive(batch, pool);
                    Datapath.CountReceive(batch, ctx, ids[i]);
                    dp.ProcessBatch(batch, ctx, 1000 + r);
                }
        }

        Run(100); // warm up: learn, JIT, first tx queues
        long before = GC.GetAllocatedBytesForCurrentThread();
        Run(2000);
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(0, after - before);
        Assert.Equal(0, pool.InUse);
        Assert.True(ports[1].SentCount > 2000 * 28);
    }
}
