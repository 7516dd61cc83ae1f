using BenchmarkDotNet.Attributes;
using VSwitch.Core;
using VSwitch.Core.Buffers;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Ports;
using VSwitch.Core.Topology;

namespace VSwitch.Benchmarks;

/// <summary>
/// What port security costs per packet (issue 16's goal: at most 5 ns), on the whole datapath as
/// <see cref="BridgeBenchmarks.KnownUnicast"/> drives it: two ports sending 64-byte UDP/IPv4 frames to
/// each other's learned MAC, batches of 32 alternating. ns/op is ns per received packet.
/// <list type="bullet">
/// <item>NoStage: the pipeline without the port-security stage (classify, flow lookup, actions, output), as before it existed.</item>
/// <item>SecurityOff: the default pipeline, ports without port security (only the invalid-source-MAC check runs).</item>
/// <item>SecurityOn: both ports with port security (source MAC, and the source IPv4 among two addresses, the second matching).</item>
/// <item>StageOff, StageOn: the port-security stage alone on a classified batch of a port without and with port security (allowed frames).</item>
/// </list>
/// </summary>
[MemoryDiagnoser]
public class PortSecurityBenchmarks
{
    private const int BatchSize = 32;
    private const int BatchesPerInvoke = 16;
    private const int PacketsPerInvoke = BatchSize * BatchesPerInvoke;
    private const uint Ip = 0x0A00_0001; // Frames.Udp's source address

    private sealed class Rig
    {
        public Datapath Dp = null!;
        public DatapathContext Ctx = null!;
        public PacketPool Pool = null!;
        public MemoryPort[] Ports = null!;
        public int[] Ids = null!;
    }

    private Rig _noStage = null!, _off = null!, _on = null!;
    private readonly PacketBatch _batch = new(BatchSize);
    private long _now = 1000;

    private PortSecurityStage _stage = null!;
    private DatapathContext _stageCtx = null!, _stageOffCtx = null!;
    private PacketBatch _stageBatch = null!, _stageOffBatch = null!;

    private Rig Build(bool withStage, bool secure)
    {
        var r = new Rig
        {
            Dp = withStage ? new Datapath() : new Datapath(stages: [new ClassifyStage(), new FlowStage(), new ActionStage()]),
        };
        r.Dp.AddNetwork("n1");
        r.Ports = new MemoryPort[2];
        r.Ids = new int[2];
        ulong[] macs = [Frames.Mac(1), Frames.Mac(2)];
        for (int i = 0; i < 2; i++)
        {
            r.Ports[i] = new MemoryPort("u" + i) { KeepSent = false };
            r.Ids[i] = r.Dp.AddPort(r.Ports[i], "n1").Id;
            if (secure) r.Dp.SetPortSecurity("u" + i, new PortSecurity(macs[i], [0x0A00_0009, Ip]), macs[i], pinMac: true);
        }
        r.Ports[0].Replay(Enumerable.Range(0, BatchSize).Select(_ => Frames.Udp(macs[1], macs[0])).ToArray());
        r.Ports[1].Replay(Enumerable.Range(0, BatchSize).Select(_ => Frames.Udp(macs[0], macs[1])).ToArray());
        r.Pool = new PacketPool(1024);
        r.Ctx = r.Dp.CreateContext(r.Pool);
        for (int i = 0; i < 8; i++) Run(r);
        long sentBefore = r.Ports[1].SentCount;
        Run(r);
        if (r.Ports[1].SentCount - sentBefore != PacketsPerInvoke / 2 || r.Dp.ReadDropCounters().Sum() != 0 || r.Pool.InUse != 0)
            throw new InvalidOperationException($"setup (stage {withStage}, secure {secure}) does not forward every frame");
        return r;
    }

    [GlobalSetup]
    public void Setup()
    {
        _noStage = Build(withStage: false, secure: false);
        _off = Build(withStage: true, secure: false);
        _on = Build(withStage: true, secure: true);

        _stage = new PortSecurityStage();
        var pool = new PacketPool(BatchSize);
        _stageCtx = _on.Dp.CreateContext(pool);
        _stageCtx.Topology = _on.Dp.Topology;
        _stageBatch = new PacketBatch(BatchSize);
        var replay = new MemoryPort("s") { KeepSent = false };
        replay.Replay(Enumerable.Range(0, BatchSize).Select(_ => Frames.Udp(Frames.Mac(2), Frames.Mac(1))).ToArray());
        replay.Receive(_stageBatch, pool);
        foreach (var p in _stageBatch.AsSpan()) p.InPort = _on.Ids[0];
        new ClassifyStage().Process(_stageBatch, _stageCtx);
        _stage.Process(_stageBatch, _stageCtx);
        if (_stageBatch.Count != BatchSize) throw new InvalidOperationException("stage setup: the secured port's own frames were refused");
        (_stageOffCtx, _stageOffBatch) = ClassifiedBatch(_off);
    }

    private static (DatapathContext, PacketBatch) ClassifiedBatch(Rig r)
    {
        var pool = new PacketPool(BatchSize);
        var ctx = r.Dp.CreateContext(pool);
        ctx.Topology = r.Dp.Topology;
        var batch = new PacketBatch(BatchSize);
        var replay = new MemoryPort("s") { KeepSent = false };
        replay.Replay(Enumerable.Range(0, BatchSize).Select(_ => Frames.Udp(Frames.Mac(2), Frames.Mac(1))).ToArray());
        replay.Receive(batch, pool);
        foreach (var p in batch.AsSpan()) p.InPort = r.Ids[0];
        new ClassifyStage().Process(batch, ctx);
        return (ctx, batch);
    }

    private void Run(Rig r)
    {
        var batch = _batch;
        long now = _now++;
        for (int b = 0; b < BatchesPerInvoke; b++)
        {
            int i = b & 1;
            r.Ports[i].Receive(batch, r.Pool);
            Datapath.CountReceive(batch, r.Ctx, r.Ids[i]);
            r.Dp.ProcessBatch(batch, r.Ctx, now);
        }
    }

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke, Baseline = true)]
    public void NoStage() => Run(_noStage);

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke)]
    public void SecurityOff() => Run(_off);

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke)]
    public void SecurityOn() => Run(_on);

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke)]
    public void StageOff()
    {
        for (int b = 0; b < BatchesPerInvoke; b++)
            _stage.Process(_stageOffBatch, _stageOffCtx);
    }

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke)]
    public void StageOn()
    {
        for (int b = 0; b < BatchesPerInvoke; b++)
            _stage.Process(_stageBatch, _stageCtx);
    }
}
