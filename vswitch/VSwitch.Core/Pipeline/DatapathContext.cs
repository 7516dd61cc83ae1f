using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Tables;
using VSwitch.Core.Tables.Rules;
using VSwitch.Core.Topology;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// What one datapath thread carries through a batch: its buffer pool, its counters, its
/// transmit queues per output port, the topology snapshot and the clock, both read once per batch.
/// </summary>
public sealed class DatapathContext
{
    private readonly PacketBatch?[] _tx = new PacketBatch?[SwitchTopology.MaxPorts];
    private readonly int[] _dirty = new int[SwitchTopology.MaxPorts];
    private int _dirtyCount;

    private int _flushRequests, _flushesDone;
    private long _lastSweepMs;

    public DatapathContext(Datapath datapath, PacketPool pool, int index = 0)
    {
        Datapath = datapath;
        Pool = pool;
        Index = index;
        Counters = new ThreadCounters(datapath.Stages.Count);
        Topology = datapath.Topology;
        FlowCache = new FlowCache(datapath.FlowCacheCapacity, datapath.FlowIdleMs);
        RetireFlow = RetireCounters;
    }

    public int Index { get; }
    internal long BatchNumber;
    public FlowCache FlowCache { get; }
    /// <summary>The tables' generation read once per batch (see <see cref="Core.Datapath.Generation"/>).</summary>
    public long Generation { get; internal set; }
    /// <summary>Room for the slow path to assemble actions without allocating a list per miss.</summary>
    internal List<FlowAction> Scratch { get; } = new(8);
    /// <summary>Cached delegate: passing a method group would allocate a delegate per call.</summary>
    internal Action<FlowEntry> RetireFlow { get; }
    /// <summary>Set while a datapath thread owns this context: then only that thread may touch the flow cache.</summary>
    public volatile bool Owned;

    /// <summary>Adds the flow's not yet attributed counts to its rule's retired counters.</summary>
    internal void RetireCounters(FlowEntry e)
    {
        if (e.Rule is { } r)
        {
            Interlocked.Add(ref r.RetiredPackets, e.Packets - e.AttributedPackets);
            Interlocked.Add(ref r.RetiredBytes, e.Bytes - e.AttributedBytes);
        }
        e.AttributedPackets = e.Packets;
        e.AttributedBytes = e.Bytes;
    }

    /// <summary>Records a live trace of a packet that just passed the flow stage (only while a live trace is armed).</summary>
    internal void TraceLive(LiveTrace live, Packet p, FlowEntry e)
    {
        if (!live.Filter.Matches(p.Key) || !live.TryClaim())
        {
            if (live.Remaining <= 0) Datapath.DisarmLiveTrace(live);
            return;
        }
        var t = new PacketTrace { Flow = FlowKeyFormat.Format(p.Key), CacheHit = e.Packets > 1 && e.CreatedMs != NowMs };
        t.Add("classify", t.Flow);
        t.Add("flow-cache", t.CacheHit ? $"hit (flow seen {e.Packets} packets)" : "miss: slow path");
        var scratchEntry = new FlowEntry();
        SlowPath.Resolve(in p.Key, p.Vlan, Datapath, Topology, NowMs, scratchEntry, new List<FlowAction>(), sideEffects: false, t);
        t.Actions = FlowAction.Format(e.Actions, id => Topology.Port(id)?.Name);
        if (e.Actions.Length == 1 && e.Actions[0].Kind == ActionKind.Drop) t.DropReason = e.Actions[0].DropReason.Name();
        live.Record(t);
    }

    // ---- the router's per-thread state ----

    private const int MaxHeld = 128;
    private const long HoldMs = 3_500;
    private readonly (Packet Packet, ushort Network, uint Target, long Since)[] _held = new (Packet, ushort, uint, long)[MaxHeld];
    private int _heldCount;
    private PacketBatch? _release;
    private readonly Packet[] _ready = new Packet[MaxHeld];
    // ICMP errors: a token bucket per thread, 100 per second with bursts of 100 (like the kernel's icmp_ratelimit).
    private const int IcmpPerSecond = 100;
    private double _icmpTokens = IcmpPerSecond;
    private long _icmpRefillMs;

    public int HeldPackets => Volatile.Read(ref _heldCount);

    /// <summary>Keeps a packet until its next hop answers ARP (the kernel's unresolved queue), sending the first request.</summary>
    internal void HoldForNeighbor(Packet p, ushort network, uint target)
    {
        var entry = Datapath.Neighbors.Resolve(network, target, NowMs, out bool created);
        if (entry is null) { Drop(p, DropReason.NeighborQueueFull); return; }
        if (created) SendArpRequest(network, target);
        if (entry.State == NeighborState.Failed)
        {
            SendIcmpError(p, Router.IcmpUnreachable, Router.CodeHost, 0);
            Drop(p, DropReason.NeighborUnresolved);
            return;
        }
        if (_heldCount == MaxHeld) { Drop(p, DropReason.NeighborQueueFull); return; }
        p.Flow = null;
        _held[_heldCount++] = (p, network, target, NowMs);
    }

    /// <summary>Sends a broadcast ARP request from the router's interface on a network.</summary>
    internal void SendArpRequest(ushort network, uint target)
    {
        var net = Topology.Network(network);
        if (net?.Router is null) return;
        var req = Pool.TryRent();
        if (req is null) { Counters.Drops[(int)DropReason.PoolExhausted]++; return; }
        RouterPackets.ArpRequest(req, net.Router, target);
        req.InPort = 0;
        req.Vlan = net.Vlan;
        ActionStage.Flood(req, network, Topology, this);
    }

    /// <summary>Sends an ICMP error about <paramref name="original"/> back out of its ingress port, if the rate limit allows.</summary>
    internal void SendIcmpError(Packet original, byte type, byte code, ushort mtu)
    {
        if (NowMs != _icmpRefillMs)
        {
            _icmpTokens = Math.Min(IcmpPerSecond, _icmpTokens + (NowMs - _icmpRefillMs) * IcmpPerSecond / 1000.0);
            _icmpRefillMs = NowMs;
        }
        if (_icmpTokens < 1) { Counters.Drops[(int)DropReason.IcmpRateLimited]++; return; }
        var port = Topology.Port(original.InPort);
        if (port is null || Topology.IngressNetwork(port, original.TunnelId)?.Router is not { } r) return;
        var reply = Pool.TryRent();
        if (reply is null) { Counters.Drops[(int)DropReason.PoolExhausted]++; return; }
        if (!RouterPackets.IcmpError(original, reply, r, type, code, mtu)) { reply.Release(); return; }
        _icmpTokens -= 1;
        ActionStage.Send(reply, port, this);
    }

    /// <summary>Releases held packets whose neighbour answered (they re-enter at the flow stage) and drops those that waited too long.</summary>
    private void ReleaseHeld(long nowMs)
    {
        if (_heldCount == 0) return;
        NowMs = nowMs;
        Topology = Datapath.Topology;
        _release ??= new PacketBatch(PacketBatch.MaxSize);
        // Decide first, then send: sending may hold packets again, which must not disturb this walk.
        int kept = 0, ready = 0;
        for (int i = 0; i < _heldCount; i++)
        {
            var h = _held[i];
            var e = Datapath.Neighbors.Lookup(h.Network, h.Target);
            if (e is { Usable: true }) _ready[ready++] = h.Packet;
            else if (e is null || e.State == NeighborState.Failed || nowMs - h.Since > HoldMs)
            {
                SendIcmpError(h.Packet, Router.IcmpUnreachable, Router.CodeHost, 0);
                Drop(h.Packet, DropReason.NeighborUnresolved);
            }
            else _held[kept++] = h;
        }
        for (int i = kept; i < _heldCount; i++) _held[i] = default;
        _heldCount = kept;
        for (int i = 0; i < ready; i++)
        {
            _release.Add(_ready[i]);
            _ready[i] = null!;
            if (_release.IsFull || i == ready - 1) Datapath.ProcessBatch(_release, this, nowMs, 1);
        }
        Flush();
    }

    /// <summary>Sends the ARP requests the control plane queued (retransmissions).</summary>
    private void SendQueuedArp()
    {
        if (Datapath.ArpRequests.IsEmpty) return;
        Topology = Datapath.Topology;
        while (Datapath.ArpRequests.TryDequeue(out var r)) SendArpRequest(r.Network, r.Target);
        Flush();
    }

    /// <summary>Asks the owning thread to empty the flow cache, and waits until it has (or does it now when no thread owns it).</summary>
    public int FlushFlows(TimeSpan timeout)
    {
        if (!Owned) return FlowCache.Flush(RetireFlow);
        int want = Interlocked.Increment(ref _flushRequests);
        var deadline = DateTime.UtcNow + timeout;
        while (Volatile.Read(ref _flushesDone) < want && DateTime.UtcNow < deadline) Thread.Sleep(1);
        return 0;
    }

    /// <summary>The owning thread's chores between batches: flush requests and idle flows (twice a second).</summary>
    public void Housekeeping(long nowMs)
    {
        ReleaseHeld(nowMs);
        SendQueuedArp();
        int req = Volatile.Read(ref _flushRequests);
        if (req != _flushesDone)
        {
            FlowCache.Flush(RetireFlow);
            Volatile.Write(ref _flushesDone, req);
        }
        if (nowMs - _lastSweepMs >= 500)
        {
            _lastSweepMs = nowMs;
            FlowCache.ExpireIdle(nowMs, RetireFlow);
        }
    }

    public Datapath Datapath { get; }
    public PacketPool Pool { get; }
    public ThreadCounters Counters { get; }
    public SwitchTopology Topology { get; internal set; }
    public long NowMs { get; internal set; }

    /// <summary>Counts and frees a packet the pipeline will not send.</summary>
    public void Drop(Packet p, DropReason reason)
    {
        Counters.Drops[(int)reason]++;
        if ((uint)p.InPort < (uint)Counters.Ports.Length) Counters.Ports[p.InPort].RxDrops++;
        p.Drop = reason;
        p.Release();
    }

    /// <summary>Queues a packet for a port; the queue goes out as one batch at the end of the pipeline or when full.</summary>
    public void Enqueue(Packet p, SwitchPort port)
    {
        if (p.GsoSize != 0 && !port.Io.AcceptsGso) { EnqueueSegments(p, port); return; }
        var q = _tx[port.Id];
        if (q is null) _tx[port.Id] = q = new PacketBatch(PacketBatch.MaxSize);
        if (q.Count == 0) _dirty[_dirtyCount++] = port.Id;
        else if (q.IsFull) Send(port.Id, q);
        q.Add(p);
    }

    /// <summary>
    /// Software GSO: cuts a TCP super-frame into MSS-sized frames with full checksums for a port
    /// that cannot take it whole (TAP without offloads, VXLAN, memory), and queues them.
    /// </summary>
    private void EnqueueSegments(Packet p, SwitchPort port)
    {
        var frame = p.Data;
        if (!Ports.Offload.TcpSegmenter.TryParse(frame, p.GsoSize, out var layout)) { Drop(p, DropReason.GsoUnsupported); return; }
        if (layout.MaxSegmentLength > Pool.FrameSize) { Drop(p, DropReason.GsoUnsupported); return; }
        int count = layout.SegmentCount;
        for (int i = 0; i < count; i++)
        {
            var seg = Pool.TryRent();
            if (seg is null) { Counters.Drops[(int)DropReason.PoolExhausted] += count - i; break; }
            seg.CopyMetadataFrom(p);
            var buf = seg.ReceiveBuffer();
            seg.SetLength(Ports.Offload.TcpSegmenter.WriteSegment(frame, layout, i, buf));
            Enqueue(seg, port);
        }
        p.Release();
    }

    /// <summary>Transmits every queued batch.</summary>
    public void Flush()
    {
        for (int i = 0; i < _dirtyCount; i++)
        {
            int id = _dirty[i];
            var q = _tx[id]!;
            if (q.Count > 0) Send(id, q);
        }
        _dirtyCount = 0;
    }

    private void Send(int portId, PacketBatch q)
    {
        ref var pc = ref Counters.Ports[portId];
        int n = q.Count;
        long bytes = 0;
        foreach (var p in q.AsSpan()) bytes += p.Length;
        var port = Topology.Port(portId);
        if (port is null)
        {
            Counters.Drops[(int)DropReason.PortDown] += n;
            pc.TxDrops += n;
            q.ReleaseAll();
            return;
        }
        int sent = port.Io.Transmit(q);
        // Transmit returned every buffer to its pool; forget them without a second release.
        q.Clear();
        pc.TxPackets += sent;
        pc.TxBytes += sent == n ? bytes : bytes * sent / Math.Max(1, n);
        if (sent < n)
        {
            pc.TxDrops += n - sent;
            Counters.Drops[(int)DropReason.TxFailed] += n - sent;
        }
    }
}
