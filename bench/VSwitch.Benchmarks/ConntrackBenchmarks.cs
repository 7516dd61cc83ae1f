using System.Collections.Frozen;
using BenchmarkDotNet.Attributes;
using VSwitch.Core;
using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Pipeline.Policy;
using VSwitch.Core.Ports;
using VSwitch.Core.Tables.Conntrack;
using VSwitch.Core.Wire;

namespace VSwitch.Benchmarks;

/// <summary>
/// What connection tracking costs per packet (issue 15: conntrack lookup plus NAT at most 40 ns;
/// issue 16: an established connection's policy check at most 15 ns), on the conntrack stage alone
/// with a classified batch of 32 TCP/IPv4 frames of 32 connections, the table holding 100 000 others:
/// <list type="bullet">
/// <item>StageOff: nothing asks for tracking (the stage returns at once: what every switch without services, policy or NAT pays).</item>
/// <item>Established: each packet is found (one hash lookup), counted, and its TCP state moved on: what a packet of an
/// established connection costs under network policy (policy itself is decided once per connection, not per packet).</item>
/// <item>EstablishedNat: the same, and each packet translated (a service's DNAT: addresses, port, IP and TCP checksums patched).</item>
/// <item>PolicyNewConnection: one new connection's verdict from 100 policies (per connection, in the slow path).</item>
/// </list>
/// </summary>
[MemoryDiagnoser]
public class ConntrackBenchmarks
{
    private const int BatchSize = 32;
    private const int BatchesPerInvoke = 16;
    private const int PacketsPerInvoke = BatchSize * BatchesPerInvoke;
    private const uint Client = 0x0A00_0001, Server = 0x0A00_0002, Vip = 0x0A60_000A, Backend = 0x0A00_0063;

    private readonly ConntrackStage _stage = new();
    private DatapathContext _offCtx = null!, _onCtx = null!, _natCtx = null!;
    private PacketBatch _offBatch = null!, _onBatch = null!, _natBatch = null!;
    private PolicyEngine _policy = null!;
    private FlowKey _newKey;
    private Datapath _dpOn = null!;

    private static ConnTuple Tuple(uint src, ushort sport, uint dst, ushort dport) =>
        new() { Src = src, Dst = dst, SrcPort = sport, DstPort = dport, Proto = IpProtocols.Tcp, Family = 4 };

    private sealed class NoPicker : IBackendPicker
    {
        public bool TryPick(in ConnTuple orig, out UInt128 a, out ushort p, out int l, out string? n) { a = 0; p = 0; l = 0; n = null; return false; }
    }

    /// <summary>A datapath with tracking on or off, a context, and a classified batch of frames Client:40000+i -> dst:80.</summary>
    private static (Datapath, DatapathContext, PacketBatch) Build(bool track, uint dst)
    {
        var dp = new Datapath { ConntrackCapacity = 262144 };
        dp.AddNetwork("n1");
        var port = new MemoryPort("c") { KeepSent = false };
        int id = dp.AddPort(port, "n1").Id;
        if (track) dp.SetConntrackPart("bench", new ConntrackPart(true, []));
        var frames = new byte[BatchSize][];
        for (int i = 0; i < BatchSize; i++)
        {
            var f = Frames.Tcp(Frames.Mac(2), Frames.Mac(1));
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(30), dst);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(34), (ushort)(40000 + i));
            // Checksums need not be right for the stage; the NAT patch keeps whatever sum is there consistent.
            frames[i] = f;
        }
        port.Replay(frames);
        var pool = new PacketPool(BatchSize * 2);
        var ctx = dp.CreateContext(pool);
        ctx.Topology = dp.Topology;
        var batch = new PacketBatch(BatchSize);
        port.Receive(batch, pool);
        foreach (var p in batch.AsSpan()) p.InPort = id;
        new ClassifyStage().Process(batch, ctx);
        if (batch.Count != BatchSize) throw new InvalidOperationException("setup: frames did not classify");
        return (dp, ctx, batch);
    }

    [GlobalSetup]
    public void Setup()
    {
        (_, _offCtx, _offBatch) = Build(track: false, Server);
        (_dpOn, _onCtx, _onBatch) = Build(track: true, Server);
        var t = _dpOn.Conntrack;
        // 100 000 other connections, and the batch's 32, established (a reply was seen).
        for (int k = 0; k < 100_000; k++)
        {
            var o = Tuple(0x0B00_0000u + (uint)k, (ushort)(k % 60000 + 1024), Server, 443);
            t.Commit(o, o.Reverse(), 0, 1L << 40, ConnFlags.SeenReply, TcpConnState.Established, 0, out _);
        }
        for (int i = 0; i < BatchSize; i++)
        {
            var o = Tuple(Client, (ushort)(40000 + i), Server, 80);
            t.Commit(o, o.Reverse(), 0, 1L << 40, ConnFlags.SeenReply, TcpConnState.Established, 0, out _);
        }
        _stage.Process(_onBatch, _onCtx);
        if (_onBatch.Count != BatchSize || (_onBatch.AsSpan()[0].Key.CtState & (byte)CtState.Established) == 0)
            throw new InvalidOperationException("setup: the established packets were not found");

        // NAT: two entries that translate into each other, so that the batch (Client -> VIP) becomes
        // Client -> Backend and back again on the next pass: every pass is a lookup and a translation.
        Datapath dpNat;
        (dpNat, _natCtx, _natBatch) = Build(track: true, Vip);
        var n = dpNat.Conntrack;
        for (int i = 0; i < BatchSize; i++)
        {
            ushort sp = (ushort)(40000 + i);
            n.Commit(Tuple(Client, sp, Vip, 80), Tuple(Backend, 80, Client, sp), 0, 1L << 40, ConnFlags.SeenReply | ConnFlags.DstNat, TcpConnState.Established, 0, out _);
            n.Commit(Tuple(Client, sp, Backend, 80), Tuple(Vip, 80, Client, sp), 0, 1L << 40, ConnFlags.SeenReply | ConnFlags.DstNat, TcpConnState.Established, 0, out _);
        }
        _stage.Process(_natBatch, _natCtx);
        if (_natBatch.Count != BatchSize || (uint)_natBatch.AsSpan()[0].Key.NwDst != Backend)
            throw new InvalidOperationException("setup: the NAT entries did not translate");

        // 100 policies, each selecting 10 addresses and allowing one /24 on one port; the key is denied by all it meets.
        var policies = new List<CompiledPolicy>();
        for (int k = 0; k < 100; k++)
        {
            var selected = Enumerable.Range(0, 10).Select(j => (UInt128)(0x0C00_0000u + (uint)(k * 10 + j))).ToFrozenSet();
            policies.Add(new CompiledPolicy
            {
                Name = "p" + k, Counters = new PolicyCounters(), Ingress = true, Selected = selected,
                IngressRules = [new PolicyRule
                {
                    Peers = [new PolicyPeer { Block = new AddressBlock(4, 0x0D00_0000u + (uint)(k << 8), 24), Description = "b" }],
                    Ports = [(IpProtocols.Tcp, (ushort)(8000 + k))],
                }],
            });
        }
        _policy = new PolicyEngine(policies);
        _newKey = new FlowKey { DlType = EtherTypes.IPv4, NwSrc = 0x0D00_0505u, NwDst = 0x0C00_0005u, NwProto = IpProtocols.Tcp, TpSrc = 40000, TpDst = 8000 };
    }

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke, Baseline = true)]
    public void StageOff()
    {
        for (int b = 0; b < BatchesPerInvoke; b++) _stage.Process(_offBatch, _offCtx);
    }

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke)]
    public void Established()
    {
        for (int b = 0; b < BatchesPerInvoke; b++) _stage.Process(_onBatch, _onCtx);
    }

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke)]
    public void EstablishedNat()
    {
        for (int b = 0; b < BatchesPerInvoke; b++) _stage.Process(_natBatch, _natCtx);
    }

    [Benchmark]
    public bool PolicyNewConnection() => _policy.Allows(in _newKey, _dpOn.Topology, false, null);
}
