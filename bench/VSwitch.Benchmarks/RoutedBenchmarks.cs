using BenchmarkDotNet.Attributes;
using VSwitch.Core;
using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Ports;
using VSwitch.Core.Wire;

namespace VSwitch.Benchmarks;

/// <summary>
/// The routed path through the flow cache: two networks with gateways (10.1.0.1/24 and
/// 10.2.0.1/24), a static neighbour for the destination, 32-packet batches of 64-byte UDP/IPv4
/// frames from host A (10.1.0.2, on n1) to host B (10.2.0.2, on n2), addressed to n1's router MAC.
/// Steady state: the flow is cached, so each packet is classify + flow-cache hit + actions
/// (CheckMtu, SetDlSrc, SetDlDst, DecTtl with checksum patch, Output) + transmit.
/// ns/op is ns per received packet of MemoryPort.Receive + CountReceive + Datapath.ProcessBatch,
/// like <see cref="BridgeBenchmarks.KnownUnicast"/>.
/// </summary>
[MemoryDiagnoser]
public class RoutedBenchmarks
{
    private const int BatchSize = 32;
    private const int BatchesPerInvoke = 16;
    private const int PacketsPerInvoke = BatchSize * BatchesPerInvoke;
    private const uint Gw1 = 0x0A01_0001, HostA = 0x0A01_0002, Gw2 = 0x0A02_0001, HostB = 0x0A02_0002;
    private const byte Ttl = 64;

    private Datapath _dp = null!;
    private DatapathContext _ctx = null!;
    private PacketPool _pool = null!;
    private MemoryPort _a = null!, _b = null!;
    private int _idA, _idB;
    private readonly PacketBatch _batch = new(BatchSize);
    private long _now = 1000;

    /// <summary>A 64-byte UDP/IPv4 frame (14 + 20 + 8 + 22 bytes).</summary>
    public static byte[] RoutedUdp(ulong src, ulong dst, uint ipSrc, uint ipDst, byte ttl)
    {
        var k = new FlowKey
        {
            DlSrc = src, DlDst = dst, DlType = EtherTypes.IPv4, NwSrc = ipSrc, NwDst = ipDst, NwTtl = ttl,
            NwProto = IpProtocols.Udp, TpSrc = 5000, TpDst = 6000,
        };
        var f = FrameBuilder.FromKey(k, payload: Frames.Size - 14 - 20 - 8);
        if (f.Length != Frames.Size) throw new InvalidOperationException($"routed test frame is {f.Length} bytes, not {Frames.Size}");
        return f;
    }

    [GlobalSetup]
    public void Setup()
    {
        ulong macA = Frames.Mac(0xA), macB = Frames.Mac(0xB);
        _dp = new Datapath();
        ulong r1 = _dp.AddNetwork("n1", gateway: Gw1, prefixLength: 24).Router!.Mac;
        ulong r2 = _dp.AddNetwork("n2", gateway: Gw2, prefixLength: 24).Router!.Mac;
        _dp.ConnectNetworks("n1", "n2"); // isolated otherwise
        _a = new MemoryPort("a") { KeepSent = false };
        _b = new MemoryPort("b") { KeepSent = true }; // kept for the check below, then switched off
        _idA = _dp.AddPort(_a, "n1").Id;
        _idB = _dp.AddPort(_b, "n2").Id;
        _dp.Neighbors.AddStatic(2, HostB, macB);
        _a.Replay(Enumerable.Range(0, BatchSize).Select(_ => RoutedUdp(macA, r1, HostA, HostB, Ttl)).ToArray());
        _pool = new PacketPool(1024);
        _ctx = _dp.CreateContext(_pool);

        // First batch: misses, slow path installs the routed flow. Check what leaves on B.
        Batch();
        if (_b.Sent.Count != BatchSize) throw new InvalidOperationException($"routed setup: {_b.Sent.Count} of {BatchSize} frames left on n2");
        var k = new FlowKey();
        var f = _b.Sent[^1];
        if (Classify.Extract(f.AsSpan(), 0, ref k) != DropReason.None || k.NwTtl != Ttl - 1 || k.DlDst != macB || k.DlSrc != r2
            || !IPv4Header.TryCreate(f.AsSpan(14), out var ip) || !ip.VerifyChecksum())
            throw new InvalidOperationException("routed setup: the forwarded frame is not rewritten (MACs, TTL-1, checksum)");
        _b.Sent.Clear();
        _b.KeepSent = false;

        for (int i = 0; i < 8; i++) Routed();
        long hitsBefore = _ctx.FlowCache.Hits, sentBefore = _b.SentCount;
        Routed();
        if (_b.SentCount - sentBefore != PacketsPerInvoke || _ctx.FlowCache.Hits - hitsBefore != PacketsPerInvoke
            || _dp.ReadDropCounters().Sum() != 0 || _pool.InUse != 0 || _a.SentCount != 0)
            throw new InvalidOperationException("routed setup: steady state is not every frame a flow-cache hit out of port b");
    }

    private void Batch()
    {
        _a.Receive(_batch, _pool);
        Datapath.CountReceive(_batch, _ctx, _idA);
        _dp.ProcessBatch(_batch, _ctx, _now);
    }

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke)]
    public void Routed()
    {
        var batch = _batch;
        long now = _now++;
        for (int b = 0; b < BatchesPerInvoke; b++)
        {
            _a.Receive(batch, _pool);
            Datapath.CountReceive(batch, _ctx, _idA);
            _dp.ProcessBatch(batch, _ctx, now);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        var sc = _dp.ReadStageCounters();
        for (int i = 0; i < sc.Length; i++)
            if (sc[i].Packets > 0)
                Console.WriteLine($"// stage-cost routed {_dp.Stages[i].Name}: {sc[i].NsPerPacket:F1} ns/packet over {sc[i].Packets} packets");
    }
}
