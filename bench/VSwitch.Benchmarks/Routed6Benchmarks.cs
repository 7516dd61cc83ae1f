using System.Buffers.Binary;
using System.Net;
using BenchmarkDotNet.Attributes;
using VSwitch.Core;
using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Ports;
using VSwitch.Core.Wire;

namespace VSwitch.Benchmarks;

/// <summary>
/// The routed IPv6 path through the flow cache, next to the IPv4 one in the same run (the goal:
/// within 1.3× of it): two dual-stack networks (fd00:1::1/64, fd00:2::1/64), a static neighbour for
/// the destination, 32-packet batches of UDP/IPv6 frames with the IPv4 benchmark's 22-byte payload
/// (84 bytes: the IPv6 header is 20 bytes longer) from fd00:1::2 to fd00:2::2, to n1's router MAC.
/// Steady state: classify + flow-cache hit + actions (CheckMtu, SetDlSrc, SetDlDst, DecTtl: the hop
/// limit has no checksum to patch, Output) + transmit. ns/op is ns per received packet.
/// </summary>
[MemoryDiagnoser]
public class Routed6Benchmarks
{
    private const int BatchSize = 32;
    private const int BatchesPerInvoke = 16;
    private const int PacketsPerInvoke = BatchSize * BatchesPerInvoke;
    private const byte HopLimit = 64;
    private static readonly UInt128 Gw1 = Ip6("fd00:1::1"), HostA = Ip6("fd00:1::2"), Gw2 = Ip6("fd00:2::1"), HostB = Ip6("fd00:2::2");

    private Datapath _dp = null!;
    private DatapathContext _ctx = null!;
    private PacketPool _pool = null!;
    private MemoryPort _a = null!, _b = null!;
    private int _idA;
    private readonly PacketBatch _batch = new(BatchSize);
    private long _now = 1000;

    private static UInt128 Ip6(string s) => BinaryPrimitives.ReadUInt128BigEndian(IPAddress.Parse(s).GetAddressBytes());

    public static byte[] RoutedUdp6(ulong src, ulong dst, UInt128 ipSrc, UInt128 ipDst, byte hops)
    {
        var k = new FlowKey
        {
            DlSrc = src, DlDst = dst, DlType = EtherTypes.IPv6, NwSrc = ipSrc, NwDst = ipDst, NwTtl = hops,
            NwProto = IpProtocols.Udp, TpSrc = 5000, TpDst = 6000,
        };
        return FrameBuilder.FromKey(k, payload: Frames.Size - 14 - 20 - 8);
    }

    [GlobalSetup]
    public void Setup()
    {
        ulong macA = Frames.Mac(0xA), macB = Frames.Mac(0xB);
        _dp = new Datapath();
        ulong r1 = _dp.AddNetwork("n1", gateway: 0x0A01_0001, prefixLength: 24, gateway6: Gw1, prefixLength6: 64).Router!.Mac;
        ulong r2 = _dp.AddNetwork("n2", gateway: 0x0A02_0001, prefixLength: 24, gateway6: Gw2, prefixLength6: 64).Router!.Mac;
        _dp.ConnectNetworks("n1", "n2");
        _a = new MemoryPort("a") { KeepSent = false };
        _b = new MemoryPort("b") { KeepSent = true };
        _idA = _dp.AddPort(_a, "n1").Id;
        _dp.AddPort(_b, "n2");
        _dp.Neighbors6.AddStatic(2, HostB, macB);
        _a.Replay(Enumerable.Range(0, BatchSize).Select(_ => RoutedUdp6(macA, r1, HostA, HostB, HopLimit)).ToArray());
        _pool = new PacketPool(1024);
        _ctx = _dp.CreateContext(_pool);

        Batch();
        if (_b.Sent.Count != BatchSize) throw new InvalidOperationException($"routed6 setup: {_b.Sent.Count} of {BatchSize} frames left on n2");
        var k = new FlowKey();
        var f = _b.Sent[^1];
        if (Classify.Extract(f.AsSpan(), 0, ref k) != DropReason.None || k.NwTtl != HopLimit - 1 || k.DlDst != macB || k.DlSrc != r2)
            throw new InvalidOperationException("routed6 setup: the forwarded frame is not rewritten (MACs, hop limit - 1)");
        _b.Sent.Clear();
        _b.KeepSent = false;

        for (int i = 0; i < 8; i++) Routed6();
        long hitsBefore = _ctx.FlowCache.Hits, sentBefore = _b.SentCount;
        Routed6();
        if (_b.SentCount - sentBefore != PacketsPerInvoke || _ctx.FlowCache.Hits - hitsBefore != PacketsPerInvoke
            || _dp.ReadDropCounters().Sum() != 0 || _pool.InUse != 0 || _a.SentCount != 0)
            throw new InvalidOperationException("routed6 setup: steady state is not every frame a flow-cache hit out of port b");
    }

    private void Batch()
    {
        _a.Receive(_batch, _pool);
        Datapath.CountReceive(_batch, _ctx, _idA);
        _dp.ProcessBatch(_batch, _ctx, _now);
    }

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke)]
    public void Routed6()
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
}
