using BenchmarkDotNet.Attributes;
using VSwitch.Core;
using VSwitch.Core.Buffers;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Ports;
using VSwitch.Core.Tables.Rules;

namespace VSwitch.Benchmarks;

/// <summary>
/// What a running capture costs the whole pipeline (BridgeBenchmarks.KnownUnicast: 64-byte UDP between two learned
/// ports, batches of 32 alternating). ns/op is ns per received packet.
/// <list type="bullet">
/// <item>None: no capture: the pipeline as it is (the taps cost one null test per batch, per drop and per queue sent).</item>
/// <item>OtherPort: a capture on a third port: every frame is tested against it and none taken.</item>
/// <item>PortInUse: a capture (both directions, no filter) on one of the two ports: every frame is copied into the
/// ring once (received on it, or sent on it). The ring is emptied after each batch by this thread, as vswitchd's
/// reader does on another; the emptying is included.</item>
/// <item>PortInUseFiltered: the same with a filter that matches nothing ('icmp' on UDP): the cost of the test alone.</item>
/// </list>
/// </summary>
[MemoryDiagnoser]
public class CaptureBenchmarks
{
    public enum Capture { None, OtherPort, PortInUse, PortInUseFiltered }

    private const int BatchSize = 32;
    private const int BatchesPerInvoke = 16;
    private const int PacketsPerInvoke = BatchSize * BatchesPerInvoke;

    [Params(Capture.None, Capture.OtherPort, Capture.PortInUse, Capture.PortInUseFiltered)]
    public Capture Kind { get; set; }

    private Datapath _dp = null!;
    private DatapathContext _ctx = null!;
    private PacketPool _pool = null!;
    private MemoryPort[] _ports = null!;
    private int[] _ids = null!;
    private PacketCapture? _capture;
    private readonly PacketBatch _batch = new(BatchSize);
    private long _now = 1000;

    [GlobalSetup]
    public void Setup()
    {
        _dp = new Datapath();
        _dp.AddNetwork("n1");
        _dp.AddNetwork("n2");
        _ports = new MemoryPort[2];
        _ids = new int[2];
        for (int i = 0; i < 2; i++)
        {
            _ports[i] = new MemoryPort("u" + i) { KeepSent = false };
            _ids[i] = _dp.AddPort(_ports[i], "n1").Id;
        }
        int other = _dp.AddPort(new MemoryPort("other") { KeepSent = false }, "n2").Id;
        ulong macA = Frames.Mac(1), macB = Frames.Mac(2);
        _ports[0].Replay(Enumerable.Range(0, BatchSize).Select(_ => Frames.Udp(macB, macA)).ToArray());
        _ports[1].Replay(Enumerable.Range(0, BatchSize).Select(_ => Frames.Udp(macA, macB)).ToArray());
        _pool = new PacketPool(1024);
        _ctx = _dp.CreateContext(_pool);
        var ring = new CaptureRing(1024, 2048);
        _capture = Kind switch
        {
            Capture.OtherPort => new PacketCapture(other, CaptureDirection.Both, null, 0, 2048, ring),
            Capture.PortInUse => new PacketCapture(_ids[0], CaptureDirection.Both, null, 0, 2048, ring),
            Capture.PortInUseFiltered => new PacketCapture(_ids[0], CaptureDirection.Both, RuleParser.ParseMatch("icmp", _ => null).Match, 0, 2048, ring),
            _ => null,
        };
        if (_capture is not null) _dp.ArmCapture(_capture);
        for (int i = 0; i < 8; i++) Pipeline();
        long before = _capture?.Accepted ?? 0;
        Pipeline();
        long taken = (_capture?.Accepted ?? 0) - before;
        if (taken != (Kind == Capture.PortInUse ? PacketsPerInvoke : 0) || _capture?.Overflow > 0)
            throw new InvalidOperationException($"{Kind}: the capture took {taken} frames of {PacketsPerInvoke}");
    }

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke)]
    public void Pipeline()
    {
        var batch = _batch;
        long now = _now++;
        var ring = _capture?.Ring;
        for (int b = 0; b < BatchesPerInvoke; b++)
        {
            int i = b & 1;
            _ports[i].Receive(batch, _pool);
            Datapath.CountReceive(batch, _ctx, _ids[i]);
            _dp.ProcessBatch(batch, _ctx, now);
            if (ring is not null)
                while (ring.TryPeek(out _, out _)) ring.Release();
        }
    }
}
