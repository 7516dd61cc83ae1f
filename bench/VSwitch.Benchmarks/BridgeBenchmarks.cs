using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using VSwitch.Core;
using VSwitch.Core.Buffers;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Ports;
using VSwitch.Core.Wire;

namespace VSwitch.Benchmarks;

/// <summary>
/// The whole datapath on 64-byte UDP/IPv4 frames, the way a poll loop drives it: MemoryPort.Receive
/// of a 32-packet batch (copies the replayed frame into a pooled buffer), CountReceive, then
/// Datapath.ProcessBatch (classify + bridge + output, and the transmit, which for a MemoryPort with
/// KeepSent off only releases the buffers). ns/op is ns per received packet.
/// <list type="bullet">
/// <item>KnownUnicast: two ports, each sending to the other's (learned) address, batches alternating.</item>
/// <item>Flood: broadcast frames entering one port of a five-port network, copied out to the other 4.</item>
/// <item>ReceiveOnly: MemoryPort.Receive + release, the share of the above that is the test port, not the switch.</item>
/// <item>FlowStageHit: FlowStage.Process alone on a classified batch whose flow is cached: the flow-cache hit path.</item>
/// </list>
/// </summary>
[MemoryDiagnoser]
public class BridgeBenchmarks
{
    private const int BatchSize = 32;
    private const int BatchesPerInvoke = 16;
    private const int PacketsPerInvoke = BatchSize * BatchesPerInvoke;
    private const int FloodOutPorts = 4;

    // known unicast between two ports
    private Datapath _uni = null!;
    private DatapathContext _uniCtx = null!;
    private PacketPool _uniPool = null!;
    private MemoryPort[] _uniPorts = null!;
    private int[] _uniIds = null!;

    // broadcast into a 1 + 4 port network
    private Datapath _flood = null!;
    private DatapathContext _floodCtx = null!;
    private PacketPool _floodPool = null!;
    private MemoryPort _floodIn = null!;
    private MemoryPort[] _floodOut = null!;
    private int _floodInId;

    // the flow stage alone, all hits
    private FlowStage _flowStage = null!;
    private DatapathContext _stageCtx = null!;
    private PacketBatch _stageBatch = null!;

    private readonly PacketBatch _batch = new(BatchSize);
    private long _now = 1000;

    [GlobalSetup]
    public void Setup()
    {
        // --- known unicast ---
        _uni = new Datapath();
        _uni.AddNetwork("n1");
        _uniPorts = new MemoryPort[2];
        _uniIds = new int[2];
        for (int i = 0; i < 2; i++)
        {
            _uniPorts[i] = new MemoryPort("u" + i) { KeepSent = false };
            _uniIds[i] = _uni.AddPort(_uniPorts[i], "n1").Id;
        }
        ulong macA = Frames.Mac(1), macB = Frames.Mac(2);
        _uniPorts[0].Replay(Enumerable.Range(0, BatchSize).Select(_ => Frames.Udp(macB, macA)).ToArray());
        _uniPorts[1].Replay(Enumerable.Range(0, BatchSize).Select(_ => Frames.Udp(macA, macB)).ToArray());
        _uniPool = new PacketPool(1024);
        _uniCtx = _uni.CreateContext(_uniPool);
        for (int i = 0; i < 8; i++) KnownUnicast(); // learn both addresses, create the tx queues
        long sentBefore = _uniPorts[1].SentCount;
        KnownUnicast();
        if (_uniPorts[1].SentCount - sentBefore != PacketsPerInvoke / 2 || _uni.ReadDropCounters().Sum() != 0 || _uniPool.InUse != 0)
            throw new InvalidOperationException("known-unicast setup does not forward every frame to its port");

        // --- flood ---
        _flood = new Datapath();
        _flood.AddNetwork("n1");
        _floodIn = new MemoryPort("in") { KeepSent = false };
        _floodInId = _flood.AddPort(_floodIn, "n1").Id;
        _floodOut = new MemoryPort[FloodOutPorts];
        for (int i = 0; i < FloodOutPorts; i++)
        {
            _floodOut[i] = new MemoryPort("out" + i) { KeepSent = false };
            _flood.AddPort(_floodOut[i], "n1");
        }
        _floodIn.Replay(Enumerable.Range(0, BatchSize).Select(_ => Frames.Udp(MacAddress.Broadcast, macA)).ToArray());
        _floodPool = new PacketPool(1024);
        _floodCtx = _flood.CreateContext(_floodPool);
        for (int i = 0; i < 8; i++) Flood();
        long floodBefore = _floodOut.Sum(p => p.SentCount);
        Flood();
        if (_floodOut.Sum(p => p.SentCount) - floodBefore != (long)PacketsPerInvoke * FloodOutPorts || _flood.ReadDropCounters().Sum() != 0 || _floodPool.InUse != 0)
            throw new InvalidOperationException("flood setup does not copy every frame to every other port");

        // --- flow stage alone: a classified batch whose flow is cached, looked up again and again ---
        _flowStage = new FlowStage();
        var stagePool = new PacketPool(BatchSize);
        _stageCtx = _uni.CreateContext(stagePool);
        _stageCtx.NowMs = _now;
        _stageCtx.Generation = _uni.Generation;
        _stageBatch = new PacketBatch(BatchSize);
        var replay = new MemoryPort("s") { KeepSent = false };
        replay.Replay(Enumerable.Range(0, BatchSize).Select(_ => Frames.Udp(macB, macA)).ToArray());
        replay.Receive(_stageBatch, stagePool);
        Datapath.CountReceive(_stageBatch, _stageCtx, _uniIds[0]);
        new ClassifyStage().Process(_stageBatch, _stageCtx);
        _flowStage.Process(_stageBatch, _stageCtx);
        if (_stageBatch.Count != BatchSize || _stageBatch[0].Flow?.Actions[0].Port != _uniIds[1])
            throw new InvalidOperationException("flow-stage setup does not decide known unicast");
    }

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke, Baseline = true)]
    public void KnownUnicast()
    {
        var batch = _batch;
        long now = _now++;
        for (int b = 0; b < BatchesPerInvoke; b++)
        {
            int i = b & 1;
            _uniPorts[i].Receive(batch, _uniPool);
            Datapath.CountReceive(batch, _uniCtx, _uniIds[i]);
            _uni.ProcessBatch(batch, _uniCtx, now);
        }
    }

    /// <summary>ns per received broadcast frame; each one leaves on 4 ports (1 original + 3 copies).</summary>
    [Benchmark(OperationsPerInvoke = PacketsPerInvoke)]
    public void Flood()
    {
        var batch = _batch;
        long now = _now++;
        for (int b = 0; b < BatchesPerInvoke; b++)
        {
            _floodIn.Receive(batch, _floodPool);
            Datapath.CountReceive(batch, _floodCtx, _floodInId);
            _flood.ProcessBatch(batch, _floodCtx, now);
        }
    }

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke)]
    public void ReceiveOnly()
    {
        var batch = _batch;
        for (int b = 0; b < BatchesPerInvoke; b++)
        {
            _uniPorts[b & 1].Receive(batch, _uniPool);
            batch.ReleaseAll();
        }
    }

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke)]
    public void FlowStageHit()
    {
        for (int b = 0; b < BatchesPerInvoke; b++)
            _flowStage.Process(_stageBatch, _stageCtx);
    }

    /// <summary>Prints the datapath's own per-stage cost counters (VPP-style), which include warm-up and pilot runs.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        Print("known-unicast", _uni);
        Print("flood", _flood);
    }

    private static void Print(string label, Datapath dp)
    {
        var sc = dp.ReadStageCounters();
        for (int i = 0; i < sc.Length; i++)
        {
            if (sc[i].Packets == 0) continue;
            double ns = sc[i].NsPerPacket;
            Console.WriteLine($"// stage-cost {label} {dp.Stages[i].Name}: {ns:F1} ns/packet over {sc[i].Packets} packets");
        }
    }
}
