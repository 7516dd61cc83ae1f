using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Ports;
using VSwitch.Core.Tables.Rules;

namespace VSwitch.Core.Tests;

/// <summary>The capture ring and the pipeline's capture taps: what they take, in which order, and what they cost.</summary>
public class CaptureTests
{
    private static (Datapath Dp, MemoryPort[] Ports, int[] Ids, PacketPool Pool, DatapathContext Ctx, PacketBatch Batch) Switch(int n = 2)
    {
        var dp = new Datapath();
        dp.AddNetwork("n1");
        var ports = new MemoryPort[n];
        var ids = new int[n];
        for (int i = 0; i < n; i++)
        {
            ports[i] = new MemoryPort("p" + i);
            ids[i] = dp.AddPort(ports[i], "n1").Id;
        }
        var pool = new PacketPool(512);
        return (dp, ports, ids, pool, dp.CreateContext(pool), new PacketBatch(32));
    }

    private static void Receive(Datapath dp, MemoryPort port, int id, PacketPool pool, DatapathContext ctx, PacketBatch batch)
    {
        port.Receive(batch, pool);
        Datapath.CountReceive(batch, ctx, id);
        dp.ProcessBatch(batch, ctx, 1000);
    }

    private static List<(CaptureRing.Record Meta, byte[] Frame)> Read(CaptureRing ring)
    {
        var list = new List<(CaptureRing.Record, byte[])>();
        while (ring.TryPeek(out var meta, out var frame))
        {
            list.Add((meta, frame.ToArray()));
            ring.Release();
        }
        return list;
    }

    [Fact]
    public void The_ring_keeps_order_refuses_when_full_and_cuts_frames_to_its_slots()
    {
        var ring = new CaptureRing(4, 8);
        for (int i = 0; i < 4; i++)
            Assert.True(ring.TryWrite(new byte[] { (byte)i, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, new CaptureRing.Record { Port = i }));
        Assert.False(ring.TryWrite(new byte[] { 9 }, default)); // full: refused at once
        var got = Read(ring);
        Assert.Equal([0, 1, 2, 3], got.Select(g => g.Meta.Port));
        Assert.All(got, g => Assert.Equal(8, g.Frame.Length));
        Assert.All(got, g => Assert.Equal(10, g.Meta.OriginalLength));
        Assert.True(ring.IsEmpty);
        Assert.Equal(0, ring.Pending);
        Assert.True(ring.TryWrite(new byte[] { 42 }, default)); // room again after the reader released
    }

    [Fact]
    public void Many_writers_and_one_reader_lose_nothing_that_was_accepted()
    {
        var ring = new CaptureRing(64, 16);
        long accepted = 0;
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(() =>
        {
            var frame = new byte[16];
            for (int i = 0; i < 20000; i++)
            {
                BitConverter.TryWriteBytes(frame, w * 100000 + i);
                if (ring.TryWrite(frame, new CaptureRing.Record { Port = w })) Interlocked.Increment(ref accepted);
            }
        })).ToArray();
        long read = 0;
        var last = new int[4];
        Array.Fill(last, -1);
        while (!writers.All(t => t.IsCompleted) || !ring.IsEmpty)
        {
            while (ring.TryPeek(out var meta, out var frame))
            {
                int v = BitConverter.ToInt32(frame) - meta.Port * 100000;
                Assert.True(v > last[meta.Port], "a writer's frames came out of order");
                last[meta.Port] = v;
                ring.Release();
                read++;
            }
        }
        Assert.Equal(Interlocked.Read(ref accepted), read);
    }

    [Fact]
    public void A_port_capture_sees_received_frames_as_they_came_and_sent_frames_as_they_left()
    {
        var (dp, ports, ids, pool, ctx, batch) = Switch();
        var cap = new PacketCapture(ids[0], CaptureDirection.Both, null, 0, 2048, new CaptureRing(16, 2048));
        dp.ArmCapture(cap);
        ports[0].Inject(TestFrames.Eth(TestFrames.Mac(2), TestFrames.Mac(1), payload: 60));
        Receive(dp, ports[0], ids[0], pool, ctx, batch);                  // p0 in, flooded to p1: rx on p0
        ports[1].Inject(TestFrames.Eth(TestFrames.Mac(1), TestFrames.Mac(2), payload: 70));
        Receive(dp, ports[1], ids[1], pool, ctx, batch);                  // p1 in, to p0 (learned): tx on p0
        var got = Read(cap.Ring);
        Assert.Equal(2, got.Count);
        Assert.Equal((CaptureDirection.Rx, 74), (got[0].Meta.Direction, got[0].Frame.Length));
        Assert.Equal((CaptureDirection.Tx, 84), (got[1].Meta.Direction, got[1].Frame.Length));
        Assert.All(got, g => Assert.Equal(ids[0], g.Meta.Port));
        Assert.True(got[1].Meta.TimestampNs >= got[0].Meta.TimestampNs);
        Assert.Equal(0, cap.Overflow);
        dp.DisarmCapture(cap);
        Assert.Null(dp.Captures);
    }

    [Fact]
    public void The_filter_direction_and_count_select_frames_and_a_full_ring_counts_its_loss()
    {
        var (dp, ports, ids, pool, ctx, batch) = Switch();
        var filter = RuleParser.ParseMatch("dl_type=0x88b5,dl_src=02:00:00:00:00:01", _ => null).Match;
        var rxOnly = new PacketCapture(ids[0], CaptureDirection.Rx, filter, 3, 2048, new CaptureRing(2, 2048));
        dp.ArmCapture(rxOnly);
        for (int i = 0; i < 5; i++)
        {
            ports[0].Inject(TestFrames.Eth(TestFrames.Mac(2), TestFrames.Mac(1)));
            ports[0].Inject(TestFrames.Eth(TestFrames.Mac(2), TestFrames.Mac(3))); // another source: not matched
        }
        Receive(dp, ports[0], ids[0], pool, ctx, batch);
        // 3 taken (the count), of which the 2-slot ring kept 2 and lost 1.
        Assert.Equal(3, rxOnly.Accepted);
        Assert.Equal(1, rxOnly.Overflow);
        Assert.True(rxOnly.IsDone);
        Assert.Equal(2, Read(rxOnly.Ring).Count);
    }

    [Fact]
    public void A_drop_capture_records_the_reason_and_the_stage_and_a_dry_run_trace_is_not_captured()
    {
        var (dp, ports, ids, pool, ctx, batch) = Switch();
        var drops = new PacketCapture(-1, CaptureDirection.Rx, null, 0, 2048, new CaptureRing(16, 2048), drops: true);
        var onlyRuleDrops = new PacketCapture(-1, CaptureDirection.Rx, null, 0, 2048, new CaptureRing(16, 2048), drops: true, reason: DropReason.RuleDrop);
        var port1 = new PacketCapture(ids[0], CaptureDirection.Both, null, 0, 2048, new CaptureRing(16, 2048));
        dp.ArmCapture(drops);
        dp.ArmCapture(onlyRuleDrops);
        dp.ArmCapture(port1);
        ports[0].Inject(new byte[10]); // a runt
        Receive(dp, ports[0], ids[0], pool, ctx, batch);
        var got = Read(drops.Ring);
        Assert.Single(got);
        Assert.Equal(DropReason.RuntFrame, got[0].Meta.Drop);
        Assert.Equal("classify", dp.Stages[got[0].Meta.Stage].Name);
        Assert.Equal(ids[0], got[0].Meta.Port);
        Assert.Empty(Read(onlyRuleDrops.Ring));
        Assert.Single(Read(port1.Ring)); // the port capture saw it arrive too

        Tracer.Trace(dp, TestFrames.Eth(TestFrames.Mac(2), TestFrames.Mac(1)), ids[0], 1000);
        Assert.Empty(Read(port1.Ring));
    }

    /// <summary>With a capture running (on another port, or on the port in use, its ring read or left full), the pipeline still allocates nothing.</summary>
    [Theory]
    [InlineData("other-port")]
    [InlineData("port-in-use-read")]
    [InlineData("port-in-use-full")]
    [InlineData("drops")]
    public void A_running_capture_allocates_nothing_per_packet(string kind)
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
        // A port of another network: floods of n1 never reach it.
        dp.AddNetwork("n2");
        var spare = dp.AddPort(new MemoryPort("spare") { KeepSent = false }, "n2").Id;
        for (int i = 0; i < 4; i++)
        {
            var frames = new byte[32][];
            for (int j = 0; j < 32; j++)
                frames[j] = j % 8 == 0
                    ? TestFrames.Eth(0xFFFF_FFFF_FFFFUL, TestFrames.Mac(i))
                    // One frame in 16 from port 0 is a runt: something for a drop capture.
                    : i == 0 && j % 16 == 1 ? new byte[12]
                    : TestFrames.Eth(TestFrames.Mac((i + 1) % 4), TestFrames.Mac(i), payload: 46 + j);
            ports[i].Replay(frames);
        }
        var filter = RuleParser.ParseMatch("dl_type=0x88b5", _ => null).Match;
        var cap = kind switch
        {
            "other-port" => new PacketCapture(spare, CaptureDirection.Both, null, 0, 2048, new CaptureRing(64, 2048)),
            "drops" => new PacketCapture(-1, CaptureDirection.Rx, null, 0, 2048, new CaptureRing(64, 2048), drops: true),
            // Read: room for a whole round (port 0's frames in and out); full: 64 slots, full after the first round.
            _ => new PacketCapture(ids[0], CaptureDirection.Both, filter, 0, 2048, new CaptureRing(kind == "port-in-use-read" ? 512 : 64, 2048)),
        };
        dp.ArmCapture(cap);
        var pool = new PacketPool(512);
        var ctx = dp.CreateContext(pool);
        var batch = new PacketBatch(32);
        bool read = kind != "port-in-use-full";

        void Run(int rounds)
        {
            for (int r = 0; r < rounds; r++)
            {
                for (int i = 0; i < 4; i++)
                {
                    ports[i].Receive(batch, pool);
                    Datapath.CountReceive(batch, ctx, ids[i]);
                    dp.ProcessBatch(batch, ctx, 1000 + r);
                }
                if (read)
                    while (cap.Ring.TryPeek(out _, out _)) cap.Ring.Release();
            }
        }

        Run(100);
        var m = SteadyStateAllocations.Measure(Run, 1000);
        SteadyStateAllocations.AssertNone(m);
        Assert.Equal(0, pool.InUse);
        if (kind == "other-port") Assert.Equal(0, cap.Accepted);
        else Assert.True(cap.Accepted > 1000, $"{kind}: the capture took {cap.Accepted} frames");
        if (kind == "port-in-use-full") Assert.True(cap.Overflow > 0);
        else Assert.Equal(0, cap.Overflow);
    }
}

/// <summary>Port mirrors in the pipeline: copies of a source port's frames both ways out of the output port, counted, with nothing allocated.</summary>
public class MirrorTests
{
    [Fact]
    public void A_mirror_copies_frames_received_and_sent_on_its_source_to_its_output_and_allocates_nothing()
    {
        var dp = new Datapath();
        dp.AddNetwork("n1");
        dp.AddNetwork("span");
        var a = new MemoryPort("a") { KeepSent = false };
        var b = new MemoryPort("b") { KeepSent = false };
        var m = new MemoryPort("m");
        int ia = dp.AddPort(a, "n1").Id, ib = dp.AddPort(b, "n1").Id;
        int im = dp.AddPort(m, "span").Id; // another network: only copies reach it
        a.Replay(Enumerable.Range(0, 32).Select(j => TestFrames.Eth(TestFrames.Mac(2), TestFrames.Mac(1), payload: 46 + j)).ToArray());
        b.Replay(Enumerable.Range(0, 32).Select(j => TestFrames.Eth(TestFrames.Mac(1), TestFrames.Mac(2), payload: 46 + j)).ToArray());
        dp.SetMirrors([new PortMirror("span", 3, [ia], [ia], -1, im)]);
        var pool = new PacketPool(512);
        var ctx = dp.CreateContext(pool);
        var batch = new PacketBatch(32);

        void Run(int rounds)
        {
            for (int r = 0; r < rounds; r++)
            {
                a.Receive(batch, pool);
                Datapath.CountReceive(batch, ctx, ia);
                dp.ProcessBatch(batch, ctx, 1000 + r);
                b.Receive(batch, pool);
                Datapath.CountReceive(batch, ctx, ib);
                dp.ProcessBatch(batch, ctx, 1000 + r);
            }
        }

        Run(1);
        // 32 received on a and 32 sent on a (b's frames, to a's learned MAC... or flooded before it was learned): 64 copies.
        Assert.Equal(64, m.Sent.Count);
        Assert.Equal(64, dp.ReadMirrorCounters(3).Packets);
        Assert.Equal(m.Sent.Sum(f => (long)f.Length), dp.ReadMirrorCounters(3).Bytes);
        m.KeepSent = false;
        Run(100);
        var measured = SteadyStateAllocations.Measure(Run, 1000);
        SteadyStateAllocations.AssertNone(measured);
        Assert.Equal(0, pool.InUse);
        Assert.Equal(64 * (1 + 100 + measured.RoundsRun), dp.ReadMirrorCounters(3).Packets);

        dp.SetMirrors([]);
        Assert.Null(dp.Mirrors);
    }
}
