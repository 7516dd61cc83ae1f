using BenchmarkDotNet.Attributes;
using VSwitch.Core;
using VSwitch.Core.Buffers;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Ports;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;
using VSwitch.Core.Flow;
using VSwitch.Overlay.Wire;

namespace VSwitch.Benchmarks;

/// <summary>
/// VXLAN in memory, without sockets.
/// <list type="bullet">
/// <item>Encap: <c>VxlanCodec.Encapsulate</c> on a 64-byte inner frame in a pooled packet (the call
/// <c>VxlanPort</c> makes before sendmmsg), then TrimFront(8) to undo, so the loop stays in steady
/// state. ns per packet.</item>
/// <item>Decap: <c>VxlanCodec.Decapsulate</c> (header check, VNI into TunnelId, TrimFront(8): the call
/// <c>VxlanPort</c> makes after recvmmsg), then Prepend(8) to undo. ns per packet.</item>
/// <item>PipelineLocalToRemote: the whole datapath for a VXLAN network (VNI 42, one remote VTEP):
/// 32-packet batches of 64-byte UDP frames from a local MemoryPort to a MAC statically behind the
/// remote VTEP, through classify + flow-cache hit + actions, out of an in-memory tunnel port whose
/// Transmit encapsulates (prepends the VXLAN header) and releases. ns per packet, like KnownUnicast.</item>
/// <item>PipelineRemoteToLocal: the reverse: the tunnel port replays encapsulated frames, decapsulates
/// them on receive (TunnelId/TunnelRemote set), and the pipeline delivers them to the local port.</item>
/// </list>
/// </summary>
[MemoryDiagnoser]
public class VxlanBenchmarks
{
    private const int BatchSize = 32;
    private const int Rounds = 32;
    private const int HeaderOpsPerInvoke = BatchSize * Rounds;
    private const int BatchesPerInvoke = 16;
    private const int PacketsPerInvoke = BatchSize * BatchesPerInvoke;
    private const uint Vni = 42;
    private const uint Remote = 0xC0A8_0002; // 192.168.0.2

    // header ops alone
    private PacketPool _hdrPool = null!;
    private Packet[] _inner = null!, _outer = null!;

    // the pipeline
    private Datapath _dp = null!;
    private DatapathContext _ctx = null!;
    private PacketPool _pool = null!;
    private MemoryPort _local = null!;
    private ReplayTunnelPort _tunnel = null!;
    private int _localId, _tunnelId;
    private readonly PacketBatch _batch = new(BatchSize);
    private long _now = 1000;

    /// <summary>
    /// An <see cref="ITunnelPort"/> in memory: receive replays VXLAN-encapsulated frames and
    /// decapsulates them the way VxlanPort does (TunnelId, TunnelRemote, TrimFront); transmit
    /// prepends the VXLAN header in the headroom, counts and releases (KeepSent keeps a copy of
    /// the encapsulated bytes and the remote, for checks).
    /// </summary>
    public sealed class ReplayTunnelPort(string name) : ITunnelPort
    {
        private byte[][] _replay = [];
        private uint _replayRemote;
        private int _next;

        public string Name { get; } = name;
        public int PollFd => -1;
        public bool KeepSent { get; set; }
        public List<(uint Remote, byte[] Frame)> Sent { get; } = [];
        public long SentCount { get; private set; }

        /// <summary>Frames (VXLAN header + inner Ethernet frame) received over and over, as if from <paramref name="remote"/>.</summary>
        public void Replay(byte[][] encapsulated, uint remote)
        {
            _replay = encapsulated;
            _replayRemote = remote;
            _next = 0;
        }

        public int Receive(PacketBatch batch, PacketPool pool)
        {
            int n = 0;
            while (!batch.IsFull && _replay.Length > 0)
            {
                var frame = _replay[_next++ % _replay.Length];
                var p = pool.TryRent();
                if (p is null) break;
                var buf = p.ReceiveBuffer();
                frame.CopyTo(buf);
                p.SetLength(frame.Length);
                p.TunnelRemote = _replayRemote;
                p.Drop = VxlanCodec.Decapsulate(p);
                batch.Add(p);
                n++;
            }
            return n;
        }

        public int Transmit(PacketBatch batch)
        {
            int n = batch.Count;
            foreach (var p in batch.AsSpan())
            {
                VxlanCodec.Encapsulate(p);
                if (KeepSent) Sent.Add((p.TunnelRemote, p.Data.ToArray()));
                p.Release();
            }
            SentCount += n;
            return n;
        }

        public void Dispose() { }
    }

    [GlobalSetup]
    public void Setup()
    {
        ulong macLocal = Frames.Mac(1), macRemote = Frames.Mac(2);

        // --- header ops: a batch of inner frames, and a batch of encapsulated ones ---
        _hdrPool = new PacketPool(2 * BatchSize);
        var inner = Frames.Udp(macRemote, macLocal);
        _inner = new Packet[BatchSize];
        _outer = new Packet[BatchSize];
        for (int i = 0; i < BatchSize; i++)
        {
            _inner[i] = Load(_hdrPool, inner);
            _outer[i] = Load(_hdrPool, inner);
            VxlanHeader.Write(_outer[i].Prepend(VxlanHeader.HeaderLength), Vni);
        }
        if (Encap() != HeaderOpsPerInvoke || Decap() != (long)Vni * HeaderOpsPerInvoke || _inner[0].Length != Frames.Size || _outer[0].Length != Frames.Size + 8)
            throw new InvalidOperationException("header benchmarks do not leave the packets as they found them");

        // --- the pipeline ---
        _dp = new Datapath();
        var net = _dp.AddNetwork("ov", vni: Vni);
        _dp.SetVteps("ov", [Remote]);
        _local = new MemoryPort("local") { KeepSent = true };
        _localId = _dp.AddPort(_local, "ov").Id;
        _tunnel = new ReplayTunnelPort("vxlan") { KeepSent = true };
        _tunnelId = _dp.AddPort(id => new SwitchPort(id, _tunnel, Network.Underlay)).Id;
        _dp.MacTable.AddStatic(net.Id, net.Vlan, macRemote, _tunnelId, Remote);
        _local.Replay(Enumerable.Range(0, BatchSize).Select(_ => Frames.Udp(macRemote, macLocal)).ToArray());
        var encapsulated = new byte[VxlanHeader.HeaderLength + Frames.Size];
        VxlanHeader.Write(encapsulated, Vni);
        Frames.Udp(macLocal, macRemote).CopyTo(encapsulated, VxlanHeader.HeaderLength);
        _tunnel.Replay(Enumerable.Range(0, BatchSize).Select(_ => encapsulated).ToArray(), Remote);
        _pool = new PacketPool(1024);
        _ctx = _dp.CreateContext(_pool);

        // One batch each way, checked: local -> remote leaves the tunnel encapsulated for the VTEP,
        // remote -> local leaves the local port decapsulated.
        PipelineLocalToRemote();
        if (_tunnel.SentCount != PacketsPerInvoke || _tunnel.Sent[^1].Remote != Remote || _tunnel.Sent[^1].Frame.Length != Frames.Size + 8
            || !VxlanHeader.TryCreate(_tunnel.Sent[^1].Frame, out var vx) || vx.Vni != Vni
            || !_tunnel.Sent[^1].Frame.AsSpan(8).SequenceEqual(Frames.Udp(macRemote, macLocal)))
            throw new InvalidOperationException("vxlan setup: local frames do not leave the tunnel port encapsulated for the remote VTEP");
        PipelineRemoteToLocal();
        if (_local.SentCount != PacketsPerInvoke || !_local.Sent[^1].AsSpan().SequenceEqual(Frames.Udp(macLocal, macRemote)))
            throw new InvalidOperationException("vxlan setup: tunnel frames are not delivered decapsulated to the local port");
        _tunnel.KeepSent = false;
        _local.KeepSent = false;
        _tunnel.Sent.Clear();
        _local.Sent.Clear();

        for (int i = 0; i < 8; i++) { PipelineLocalToRemote(); PipelineRemoteToLocal(); }
        long hits = _ctx.FlowCache.Hits, tunnelSent = _tunnel.SentCount, localSent = _local.SentCount;
        PipelineLocalToRemote();
        PipelineRemoteToLocal();
        if (_tunnel.SentCount - tunnelSent != PacketsPerInvoke || _local.SentCount - localSent != PacketsPerInvoke
            || _ctx.FlowCache.Hits - hits != 2 * PacketsPerInvoke || _dp.ReadDropCounters().Sum() != 0 || _pool.InUse != 0)
            throw new InvalidOperationException("vxlan setup: steady state is not every frame a flow-cache hit delivered");
    }

    private static Packet Load(PacketPool pool, byte[] frame)
    {
        var p = pool.TryRent()!;
        p.CopyFrom(frame);
        return p;
    }

    [Benchmark(OperationsPerInvoke = HeaderOpsPerInvoke)]
    public int Encap()
    {
        var ps = _inner;
        int acc = 0;
        for (int r = 0; r < Rounds; r++)
            for (int i = 0; i < ps.Length; i++)
            {
                var p = ps[i];
                p.TunnelId = Vni;
                if (VxlanCodec.Encapsulate(p)) acc++;
                p.TrimFront(VxlanHeader.HeaderLength);
            }
        return acc;
    }

    [Benchmark(OperationsPerInvoke = HeaderOpsPerInvoke)]
    public long Decap()
    {
        var ps = _outer;
        long acc = 0;
        for (int r = 0; r < Rounds; r++)
            for (int i = 0; i < ps.Length; i++)
            {
                var p = ps[i];
                if (VxlanCodec.Decapsulate(p) == DropReason.None)
                {
                    acc += p.TunnelId;
                    p.Prepend(VxlanHeader.HeaderLength);
                }
            }
        return acc;
    }

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke)]
    public void PipelineLocalToRemote()
    {
        var batch = _batch;
        long now = _now++;
        for (int b = 0; b < BatchesPerInvoke; b++)
        {
            _local.Receive(batch, _pool);
            Datapath.CountReceive(batch, _ctx, _localId);
            _dp.ProcessBatch(batch, _ctx, now);
        }
    }

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke)]
    public void PipelineRemoteToLocal()
    {
        var batch = _batch;
        long now = _now++;
        for (int b = 0; b < BatchesPerInvoke; b++)
        {
            _tunnel.Receive(batch, _pool);
            Datapath.CountReceive(batch, _ctx, _tunnelId);
            _dp.ProcessBatch(batch, _ctx, now);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        var sc = _dp.ReadStageCounters();
        for (int i = 0; i < sc.Length; i++)
            if (sc[i].Packets > 0)
                Console.WriteLine($"// stage-cost vxlan (both directions) {_dp.Stages[i].Name}: {sc[i].NsPerPacket:F1} ns/packet over {sc[i].Packets} packets");
    }
}
