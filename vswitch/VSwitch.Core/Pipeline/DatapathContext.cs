using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Tables;
using VSwitch.Core.Topology;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// What one datapath thread carries through a batch: its buffer pool, counters, flow cache and
/// output queues, the packets it holds for a neighbour, its ICMP budget, and the topology snapshot
/// and clock, both read once per batch. It also knows which stage is running, so that every drop
/// is counted under (stage, reason), like VPP's per-node error counters.
/// </summary>
public sealed class DatapathContext
{
    private int _flushRequests, _flushesDone;
    private long _lastSweepMs;
    /// <summary>When this thread last swept the conntrack table for expired entries.</summary>
    internal long LastConntrackSweepMs;
    private readonly NeighborHold<uint, ArpResolution> _held = new();
    private readonly NeighborHold<UInt128, NdResolution> _held6 = new();
    private readonly IcmpRateLimiter _icmp = new();
    // Live traces claimed during this batch: handed to the live trace once the batch is out.
    private readonly List<PacketTrace> _claimed = [];

    public DatapathContext(Datapath datapath, PacketPool pool, int index = 0, int flowCacheCapacity = 0)
    {
        Datapath = datapath;
        Pool = pool;
        Index = index;
        Counters = new ThreadCounters(datapath.Stages.Count);
        OutputStage = datapath.Stages.Count - 1;
        Topology = datapath.Topology;
        FlowCache = new FlowCache(flowCacheCapacity > 0 ? flowCacheCapacity : datapath.FlowCacheCapacity, datapath.FlowIdleMs);
        RetireFlow = RetireCounters;
    }

    public int Index { get; }
    internal long BatchNumber;
    public FlowCache FlowCache { get; }
    public OutputQueues Output { get; } = new();
    /// <summary>The tables' generation read once per batch (see <see cref="Core.Datapath.Generation"/>).</summary>
    public long Generation { get; internal set; }
    /// <summary>The routes' and neighbours' generation read once per batch (routed flows depend on it too).</summary>
    public long RoutingGeneration { get; internal set; }
    /// <summary>Room for the slow path to assemble actions without allocating a list per miss.</summary>
    internal List<FlowAction> Scratch { get; } = new(8);
    /// <summary>Cached delegate: passing a method group would allocate a delegate per call.</summary>
    internal Action<FlowEntry> RetireFlow { get; }
    /// <summary>Set while a datapath thread owns this context: then only that thread may touch the flow cache.</summary>
    public volatile bool Owned;

    /// <summary>
    /// A synthetic trace's context: the stages decide as usual but change no table (no learning, no
    /// neighbour requests), and the output stage sends nothing; it records where frames would go.
    /// </summary>
    public bool DryRun { get; init; }

    /// <summary>Index in <see cref="Core.Datapath.Stages"/> of the stage now running (drops are counted under it).</summary>
    public int CurrentStage { get; internal set; }
    /// <summary>Index of the output stage, the last one.</summary>
    public int OutputStage { get; }
    public string StageName => Datapath.Stages[CurrentStage].Name;
    /// <summary>The live trace armed when this batch started, or null (read once per batch).</summary>
    public LiveTrace? Live { get; internal set; }
    /// <summary>The captures running when this batch started, or null (read once per batch).</summary>
    public PacketCapture[]? Captures { get; internal set; }
    /// <summary>The port mirrors in force when this batch started, or null (read once per batch).</summary>
    public PortMirror[]? Mirrors { get; internal set; }

    public Datapath Datapath { get; }
    public PacketPool Pool { get; }
    public ThreadCounters Counters { get; }
    public SwitchTopology Topology { get; internal set; }
    public long NowMs { get; internal set; }
    public int HeldPackets => _held.Count + _held6.Count;

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

    /// <summary>Counts and frees a packet the pipeline will not send, under the running stage.</summary>
    public void Drop(Packet p, DropReason reason)
    {
        Counters.CountDrop(CurrentStage, reason);
        if ((uint)p.InPort < (uint)Counters.Ports.Length)
        {
            // Nowhere to go is what a switch does with a frame no one else wants, not a fault of the port.
            if (reason.IsExpected()) Counters.Ports[p.InPort].RxUnsent++;
            else Counters.Ports[p.InPort].RxDrops++;
            int slot = reason.PerPortSlot();
            if (slot >= 0) Counters.PortDrops[p.InPort * DropReasons.PerPort.Length + slot]++;
        }
        if (Captures is { } caps) CaptureTap.Dropped(caps, p, reason, CurrentStage);
        if (p.Trace is { } t)
        {
            t.Add(StageName, $"drop ({reason.Name()})");
            t.DropReason ??= reason.Name();
        }
        p.Drop = reason;
        p.Release();
    }

    /// <summary>Counts drops that had no packet to free (a buffer that could not be had, an ICMP error not sent).</summary>
    public void CountDrop(DropReason reason, long n = 1) => Counters.CountDrop(CurrentStage, reason, n);

    /// <summary>Queues a packet for a port; the queue goes out as one batch in the output stage, or when full.</summary>
    public void Enqueue(Packet p, SwitchPort port) => Output.Enqueue(p, port, this);

    /// <summary>Transmits every queued batch (OutputQueues counts what fails under the output stage itself).</summary>
    public void Flush() => Output.Flush(this);

    /// <summary>Starts tracing a packet a live trace wants (the classify stage asks, once per packet, while one is armed).</summary>
    internal void ClaimLive(Packet p, LiveTrace live)
    {
        if (!live.Filter.Matches(p.Key) || !live.TryClaim()) return;
        var topo = Topology;
        var t = new PacketTrace { Flow = FlowKeyFormat.Format(p.Key, id => topo.Port(id)?.Name), Time = DateTime.UtcNow };
        p.Trace = t;
        _claimed.Add(t);
    }

    /// <summary>Hands the traces finished in this batch to the live trace (once the output stage ran).</summary>
    internal void CompleteTraces()
    {
        if (Live is not { } live) return;
        foreach (var t in _claimed) live.Record(t);
        _claimed.Clear();
        if (live.Remaining <= 0) Datapath.DisarmLiveTrace(live);
    }

    // ---- the router's per-thread helpers ----

    /// <summary>Keeps a packet until its next hop answers ARP or a neighbour solicitation, sending the first request.</summary>
    internal void HoldForNeighbor(Packet p, ushort network, uint target)
    {
        if (!p.Key.IsIPv6) { _held.Hold(p, network, target, this); return; }
        // An IPv6 next hop does not fit the action: it is found again from the packet (0: the route went away).
        UInt128 target6 = Router6.NextHop(in p.Key, Datapath);
        if (target6 == UInt128.Zero) Drop(p, DropReason.NoRoute);
        else _held6.Hold(p, network, target6, this);
    }

    /// <summary>Packets this thread holds while their next hop resolves (at most <see cref="NeighborHold.MaxHeld"/> per family).</summary>
    public int HeldForNeighbor => _held.Count + _held6.Count;

    /// <summary>Sends a broadcast ARP request from the router's interface on a network.</summary>
    internal void SendArpRequest(ushort network, uint target)
    {
        var net = Topology.Network(network);
        if (net?.Router is null) return;
        var req = Pool.TryRent();
        if (req is null) { CountDrop(DropReason.PoolExhausted); return; }
        RouterPackets.ArpRequest(req, net.Router, target);
        req.InPort = 0;
        req.Vlan = net.Vlan;
        ActionStage.Flood(req, network, Topology, this);
    }

    /// <summary>Sends an ICMP error about <paramref name="original"/> back out of its ingress port, if the rate limit allows.</summary>
    /// <remarks>For an IPv6 packet, <paramref name="type"/> and <paramref name="code"/> are ICMPv6's; both families share one budget.</remarks>
    internal void SendIcmpError(Packet original, byte type, byte code, ushort mtu)
    {
        var port = Topology.Port(original.InPort);
        if (port is null || Topology.IngressNetwork(port, original.TunnelId)?.Router is not { } r) return;
        bool v6 = original.Key.IsIPv6;
        if (v6 && !r.HasIPv6) return;
        if (!_icmp.TryTake(NowMs)) { CountDrop(DropReason.IcmpRateLimited); return; }
        var reply = Pool.TryRent();
        if (reply is null) { CountDrop(DropReason.PoolExhausted); return; }
        if (!(v6 ? Router6Packets.IcmpError(original, reply, r, type, code, mtu) : RouterPackets.IcmpError(original, reply, r, type, code, mtu)))
        {
            reply.Release();
            return;
        }
        if (original.Trace is { } t)
        {
            t.Add(StageName, $"ICMP error type {type} code {code} back to {port.Name}");
            reply.Trace = t;
        }
        ActionStage.Send(reply, port, this);
    }

    /// <summary>Sends the ARP requests the control plane queued (retransmissions).</summary>
    private void SendQueuedArp()
    {
        if (Datapath.ArpRequests.IsEmpty) return;
        Topology = Datapath.Topology;
        CurrentStage = OutputStage - 1;
        while (Datapath.ArpRequests.TryDequeue(out var r)) SendArpRequest(r.Network, r.Target);
        Flush();
    }

    /// <summary>
    /// Sends a neighbour solicitation from the router's interface on a network: to the target's
    /// solicited-node group, or with <paramref name="unicastMac"/> to the target itself (a probe).
    /// Flooded in the network like an ARP request: the group's hosts may sit on any port.
    /// </summary>
    internal void SendNeighborSolicitation(ushort network, UInt128 target, ulong unicastMac)
    {
        var net = Topology.Network(network);
        if (net?.Router is not { HasIPv6: true } r) return;
        var req = Pool.TryRent();
        if (req is null) { CountDrop(DropReason.PoolExhausted); return; }
        Router6Packets.NeighborSolicitation(req, r, target, unicastMac);
        req.InPort = 0;
        req.Vlan = net.Vlan;
        ActionStage.Flood(req, network, Topology, this);
    }

    /// <summary>Sends a router advertisement to all nodes of a network (the periodic one, RFC 4861 §6.2.4).</summary>
    internal void SendRouterAdvertisement(ushort network)
    {
        var net = Topology.Network(network);
        if (net?.Router is not { HasIPv6: true } r) return;
        var ra = Pool.TryRent();
        if (ra is null) { CountDrop(DropReason.PoolExhausted); return; }
        Router6Packets.RouterAdvertisement(ra, r, net.Mtu, Wire.Ndp.AllNodes, Wire.Ndp.MulticastMac(Wire.Ndp.AllNodes));
        ra.InPort = 0;
        ra.Vlan = net.Vlan;
        ActionStage.Flood(ra, network, Topology, this);
    }

    /// <summary>Sends the solicitations and advertisements the control plane's IPv6 timers queued.</summary>
    private void SendQueuedNd()
    {
        if (Datapath.NdRequests.IsEmpty && Datapath.RouterAdvertisements.IsEmpty) return;
        Topology = Datapath.Topology;
        CurrentStage = OutputStage - 1;
        while (Datapath.NdRequests.TryDequeue(out var r)) SendNeighborSolicitation(r.Network, r.Target, r.Mac);
        while (Datapath.RouterAdvertisements.TryDequeue(out var n)) SendRouterAdvertisement(n);
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

    /// <summary>The owning thread's chores between batches: held packets, ARP retransmissions, flush requests and idle flows (twice a second).</summary>
    public void Housekeeping(long nowMs)
    {
        if (_held.Count > 0 || _held6.Count > 0)
        {
            NowMs = nowMs;
            Topology = Datapath.Topology;
            // Packets that waited too long are the action stage's drops, as when they were held.
            CurrentStage = OutputStage - 1;
            _held.ReleaseReady(nowMs, this);
            _held6.ReleaseReady(nowMs, this);
            Flush();
        }
        SendQueuedArp();
        SendQueuedNd();
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
}
