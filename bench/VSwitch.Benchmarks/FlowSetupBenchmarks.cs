using BenchmarkDotNet.Attributes;
using VSwitch.Core;
using VSwitch.Core.Buffers;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Ports;
using VSwitch.Core.Wire;

namespace VSwitch.Benchmarks;

/// <summary>
/// Flow setup: the whole datapath on 64-byte UDP/IPv4 frames whose port pairs are all different, so every packet
/// misses the flow cache and runs the slow path (the rule table, the learning bridge) and installs a flow, evicting
/// an old one: what pktrate's "new flows/s" row does on the wire, without the ports. 262144 distinct port pairs
/// cycle through a 65536-entry cache, so no flow is still cached when its turn comes again. ns/op is ns per packet,
/// that is per flow set up; the allocation column is the new flow's entry.
/// </summary>
[MemoryDiagnoser]
public class FlowSetupBenchmarks
{
    private const int BatchSize = 32;
    private const int BatchesPerInvoke = 16;
    private const int PacketsPerInvoke = BatchSize * BatchesPerInvoke;
    private const int DistinctFlows = 262_144;

    private Datapath _dp = null!;
    private DatapathContext _ctx = null!;
    private PacketPool _pool = null!;
    private MemoryPort _in = null!;
    private int _inId;
    private readonly PacketBatch _batch = new(BatchSize);
    private long _now = 1000;

    [GlobalSetup]
    public void Setup()
    {
        _dp = new Datapath();
        _dp.AddNetwork("n1");
        _in = new MemoryPort("in") { KeepSent = false };
        var out_ = new MemoryPort("out") { KeepSent = false };
        _inId = _dp.AddPort(_in, "n1").Id;
        int outId = _dp.AddPort(out_, "n1").Id;
        ulong macA = Frames.Mac(1), macB = Frames.Mac(2);
        _pool = new PacketPool(1024);
        _ctx = _dp.CreateContext(_pool);
        // The receiver speaks first, so its address is learned and every new flow is known unicast.
        out_.Inject(Frames.Udp(macA, macB));
        out_.Receive(_batch, _pool);
        Datapath.CountReceive(_batch, _ctx, outId);
        _dp.ProcessBatch(_batch, _ctx, _now);
        _in.Replay(Enumerable.Range(0, DistinctFlows).Select(i => Frames.Udp(macB, macA, (ushort)(1024 + (i & 0x3FFF)), (ushort)(2000 + (i >> 14)))).ToArray());
        long misses = _ctx.FlowCache.Misses, sent = out_.SentCount;
        NewFlows();
        if (_ctx.FlowCache.Misses - misses != PacketsPerInvoke || out_.SentCount - sent != PacketsPerInvoke || _pool.InUse != 0)
            throw new InvalidOperationException($"flow-setup setup: {_ctx.FlowCache.Misses - misses} misses and {out_.SentCount - sent} frames out for {PacketsPerInvoke} new flows");
    }

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke)]
    public void NewFlows()
    {
        var batch = _batch;
        long now = _now++;
        for (int b = 0; b < BatchesPerInvoke; b++)
        {
            _in.Receive(batch, _pool);
            Datapath.CountReceive(batch, _ctx, _inId);
            _dp.ProcessBatch(batch, _ctx, now);
        }
    }
}
