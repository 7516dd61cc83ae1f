using VSwitch.Core.Buffers;
using VSwitch.Core.Ports;

namespace VSwitch.Core.Tests;

/// <summary>
/// Learning one MAC revalidates only the flows that looked that address up (issue 13, item 3): a port
/// learning thousands of new source addresses leaves the established flows between two other ports in
/// the cache, while a flow that flooded to an unknown address is decided again once it is learned.
/// </summary>
public class TargetedRevalidationTests
{
    private sealed class Rig
    {
        public readonly Datapath Dp = new(new Tables.MacTable(65536, 65536));
        public readonly PacketPool Pool = new(1024);
        public readonly Pipeline.DatapathContext Ctx;
        public readonly MemoryPort A = new("a"), B = new("b"), C = new("c");
        public readonly int Ia, Ib, Ic;
        public long Now = 1000;

        public Rig()
        {
            Dp.AddNetwork("n");
            Ia = Dp.AddPort(A, "n").Id;
            Ib = Dp.AddPort(B, "n").Id;
            Ic = Dp.AddPort(C, "n").Id;
            Ctx = Dp.CreateContext(Pool);
        }

        public void Send(MemoryPort port, int id, byte[] frame)
        {
            port.Inject(frame);
            var batch = new PacketBatch();
            port.Receive(batch, Pool);
            Datapath.CountReceive(batch, Ctx, id);
            Dp.ProcessBatch(batch, Ctx, Now);
        }
    }

    [Fact]
    public void Ten_thousand_new_source_macs_on_one_port_leave_the_established_flows_of_the_others_cached()
    {
        var r = new Rig();
        ulong ma = TestFrames.Mac(0xA), mb = TestFrames.Mac(0xB);
        r.Send(r.A, r.Ia, TestFrames.Eth(mb, ma));
        r.Send(r.B, r.Ib, TestFrames.Eth(ma, mb));
        r.Send(r.A, r.Ia, TestFrames.Eth(mb, ma)); // A -> B decided again once B was learned: unicast now
        r.A.Sent.Clear(); r.B.Sent.Clear();
        long revalidationsBefore = r.Ctx.FlowCache.Revalidations, hitsBefore = r.Ctx.FlowCache.Hits;

        for (int k = 0; k < 10_000; k++)
        {
            r.Send(r.C, r.Ic, TestFrames.Eth(0xFFFF_FFFF_FFFFUL, 0x02_10_00_00_00_00UL | (uint)k));
            if (k % 10 == 0)
            {
                r.Send(r.A, r.Ia, TestFrames.Eth(mb, ma));
                r.Send(r.B, r.Ib, TestFrames.Eth(ma, mb));
            }
        }
        Assert.True(r.Dp.MacTable.Count >= 10_002);
        long hits = r.Ctx.FlowCache.Hits - hitsBefore;
        long revalidations = r.Ctx.FlowCache.Revalidations - revalidationsBefore;
        // The A<->B flows hit: of their 2000 packets at most 1 % are revalidated (only when a new address happens to share
        // a generation slot with A's or B's, 1 in 262144 each; the new addresses' own flows are misses, not revalidations).
        Assert.Equal(2000, hits + revalidations);
        Assert.True(revalidations <= 20, $"{revalidations} revalidations for 2000 established packets");
        // Each got the other's 1000 frames and C's 10 000 broadcasts.
        Assert.Equal(11_000, r.B.Sent.Count);
        Assert.Equal(11_000, r.A.Sent.Count);
    }

    [Fact]
    public void A_flow_that_flooded_to_an_unknown_address_goes_unicast_once_the_address_is_learned_and_follows_a_move()
    {
        var r = new Rig();
        ulong ma = TestFrames.Mac(0xA), mb = TestFrames.Mac(0xB);
        r.Send(r.A, r.Ia, TestFrames.Eth(mb, ma));
        Assert.Single(r.B.Sent);
        Assert.Single(r.C.Sent); // flooded
        r.Send(r.B, r.Ib, TestFrames.Eth(ma, mb)); // B learned
        r.B.Sent.Clear(); r.C.Sent.Clear();
        r.Send(r.A, r.Ia, TestFrames.Eth(mb, ma));
        Assert.Single(r.B.Sent);
        Assert.Empty(r.C.Sent);
        // B moves to C: the cached A -> B flow follows it.
        r.Now += 10;
        r.Send(r.C, r.Ic, TestFrames.Eth(ma, mb));
        r.B.Sent.Clear(); r.C.Sent.Clear();
        r.Send(r.A, r.Ia, TestFrames.Eth(mb, ma));
        Assert.Empty(r.B.Sent);
        Assert.Single(r.C.Sent);
        // B ages out and is flushed: flooded again.
        r.Dp.MacTable.FlushLearned();
        r.B.Sent.Clear(); r.C.Sent.Clear();
        r.Send(r.A, r.Ia, TestFrames.Eth(mb, ma));
        Assert.Single(r.B.Sent);
        Assert.Single(r.C.Sent);
    }
}
