using System.Diagnostics;
using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Ports;
using VSwitch.Core.Tables;
using VSwitch.Core.Tables.Conntrack;
using VSwitch.Core.Tables.Rules;
using VSwitch.Core.Topology;

namespace VSwitch.Core;

/// <summary>
/// The switch: its tables, its topology and its stages. Datapath threads (each with its own
/// <see cref="DatapathContext"/>) push batches through <see cref="ProcessBatch"/>; the control
/// plane changes networks and ports through the methods here, which publish a new immutable
/// <see cref="SwitchTopology"/>. Control writes serialise on a lock the datapath never takes.
/// </summary>
public sealed class Datapath
{
    private readonly object _control = new();
    private readonly List<DatapathContext> _contexts = [];
    private SwitchTopology _topology = SwitchTopology.Empty;

    private LiveTrace? _liveTrace;
    // The running captures, replaced whole on every change (copy on write); null when none runs, which is what
    // the datapath tests once per batch.
    private PacketCapture[]? _captures;
    // The port mirrors, published whole by the control plane; null when none is configured.
    private PortMirror[]? _mirrors;
    private readonly Stage[] _stageArray;

    /// <summary>One batch in this many has its stages timed (a power of two).</summary>
    public const int StageTimingInterval = 16;

    public Datapath(MacTable? macTable = null, IReadOnlyList<Stage>? stages = null, int flowCacheCapacity = FlowCache.DefaultCapacity,
        long flowIdleMs = FlowCache.DefaultIdleMs)
    {
        MacTable = macTable ?? new MacTable();
        // The output stage always comes last: it sends what the others queued.
        // Conntrack goes between port security and the flow lookup: it may trust the source addresses, and
        // its NAT and ct_state are part of the key the flow cache looks up (OVS's ct() and recirculation in one pass).
        _stageArray = [.. stages ?? [new ClassifyStage(), new PortSecurityStage(), new ConntrackStage(), new FlowStage(), new ActionStage()], new OutputStage()];
        Stages = _stageArray;
        int flow = Array.FindIndex(_stageArray, s => s is FlowStage);
        FlowStageIndex = flow >= 0 ? flow : 1;
        FlowCacheCapacity = flowCacheCapacity;
        FlowIdleMs = flowIdleMs;
    }

    public MacTable MacTable { get; }
    public RuleTable Rules { get; } = new();
    public RouteTable Routes { get; } = new();
    public NeighborTable Neighbors { get; } = new();
    /// <summary>IPv6 neighbours (RFC 4861 states), apart from the ARP cache.</summary>
    public NeighborTable6 Neighbors6 { get; } = new();

    /// <summary>
    /// Neighbour solicitations the control plane's timers want sent (retransmissions, probes):
    /// (network, target, the MAC to send to for a unicast probe or 0 for the solicited-node group).
    /// Drained between batches like <see cref="ArpRequests"/>.
    /// </summary>
    public System.Collections.Concurrent.ConcurrentQueue<(ushort Network, UInt128 Target, ulong Mac)> NdRequests { get; } = new();

    /// <summary>Networks whose periodic router advertisement is due (the control plane's timer decides, a datapath thread sends).</summary>
    public System.Collections.Concurrent.ConcurrentQueue<ushort> RouterAdvertisements { get; } = new();

    /// <summary>
    /// Frames the control plane wants sent (ARP retransmissions): (network, next hop to ask for).
    /// A datapath thread drains it between batches, since only datapath threads own buffers.
    /// </summary>
    public System.Collections.Concurrent.ConcurrentQueue<(ushort Network, uint Target)> ArpRequests { get; } = new();
    public int FlowCacheCapacity { get; }
    public long FlowIdleMs { get; }

    /// <summary>
    /// Changes whenever a table the slow path reads changes (rules, MAC table, topology). Each
    /// part only grows, so the sum grows on any change: a cached flow holding an older value is
    /// stale and is computed again on its next packet.
    /// </summary>
    public long Generation => Rules.Version + MacTable.StructureGeneration + Volatile.Read(ref _topology).Version + Volatile.Read(ref _ctVersion);

    /// <summary>What routed flows depend on besides <see cref="Generation"/>: the routes and the neighbours (both families).</summary>
    public long RoutingGeneration => Routes.Version + Neighbors.Version + Neighbors6.Version;

    private ConntrackTable? _conntrack;
    private ConntrackConfig _ctConfig = ConntrackConfig.Off;
    private readonly Dictionary<string, ConntrackPart> _ctParts = new(StringComparer.Ordinal);
    private long _ctVersion;
    private int _conntrackCapacity = ConntrackTable.DefaultCapacity;

    /// <summary>
    /// The connection-tracking table services, policy and NAT share. Made when first asked for (its
    /// index costs a few MB), with <see cref="ConntrackCapacity"/> entries at most.
    /// </summary>
    public ConntrackTable Conntrack
    {
        get
        {
            var t = Volatile.Read(ref _conntrack);
            if (t is not null) return t;
            lock (_control)
            {
                _conntrack ??= new ConntrackTable(_conntrackCapacity);
                return _conntrack;
            }
        }
    }

    /// <summary>The table's size limit (limits.conntrack); settable until the table is made.</summary>
    public int ConntrackCapacity
    {
        get => _conntrack?.Capacity ?? _conntrackCapacity;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            lock (_control)
            {
                if (_conntrack is not null && _conntrack.Capacity != value)
                    throw new InvalidOperationException($"the conntrack table already holds up to {_conntrack.Capacity} connections; its size is set at start");
                _conntrackCapacity = value;
            }
        }
    }

    private IConnectionAdmission? _admission;

    /// <summary>Network policy's verdict on new connections (null: no policy, everything may open).</summary>
    public IConnectionAdmission? Admission => Volatile.Read(ref _admission);

    /// <summary>Publishes a new policy; cached flows are decided again (established connections are not affected: their ct_state is +est).</summary>
    public void SetAdmission(IConnectionAdmission? admission)
    {
        lock (_control)
        {
            Volatile.Write(ref _admission, admission);
            Interlocked.Increment(ref _ctVersion);
        }
    }

    /// <summary>What conntrack does now (read once per batch by the conntrack stage).</summary>
    public ConntrackConfig ConntrackConfig => Volatile.Read(ref _ctConfig);

    /// <summary>
    /// Sets one owner's part ("services", "policy", "nat") of what conntrack does; the union is
    /// published at once, and cached flows are decided again (tracking on or off changes their key).
    /// </summary>
    public void SetConntrackPart(string owner, ConntrackPart part)
    {
        lock (_control)
        {
            _ctParts[owner] = part;
            bool track = false;
            var frontends = new List<NatFrontend>();
            foreach (var p in _ctParts.Values) { track |= p.Track; frontends.AddRange(p.Frontends); }
            if (track || frontends.Count > 0) _ = Conntrack;
            Volatile.Write(ref _ctConfig, new ConntrackConfig(track, frontends));
            Interlocked.Increment(ref _ctVersion);
        }
    }

    private NorthSouth _northSouth = NorthSouth.None;

    /// <summary>Host ports, masquerade and the host's source addresses (read by the router on a flow-cache miss).</summary>
    public NorthSouth NorthSouth => Volatile.Read(ref _northSouth);

    /// <summary>Publishes new north-south settings; cached flows are decided again.</summary>
    public void SetNorthSouth(NorthSouth northSouth)
    {
        ArgumentNullException.ThrowIfNull(northSouth);
        lock (_control)
        {
            Volatile.Write(ref _northSouth, northSouth);
            Interlocked.Increment(ref _ctVersion);
        }
    }

    /// <summary>The armed live trace, or null (the datapath checks this once per batch).</summary>
    public LiveTrace? LiveTrace => Volatile.Read(ref _liveTrace);

    public void ArmLiveTrace(LiveTrace t) => Volatile.Write(ref _liveTrace, t);

    public void DisarmLiveTrace(LiveTrace t) => Interlocked.CompareExchange(ref _liveTrace, null, t);

    /// <summary>At most this many captures run at once: each one is a ring of up to 16 MiB and a test per frame.</summary>
    public const int MaxCaptures = 8;

    /// <summary>The running captures, or null when none runs.</summary>
    public PacketCapture[]? Captures => Volatile.Read(ref _captures);

    /// <summary>Starts offering frames to a capture (from each thread's next batch on).</summary>
    public void ArmCapture(PacketCapture c)
    {
        lock (_control)
        {
            var now = _captures ?? [];
            if (now.Length >= MaxCaptures) throw new InvalidOperationException($"{MaxCaptures} captures are running already: stop one first");
            Volatile.Write(ref _captures, [.. now, c]);
        }
    }

    /// <summary>Stops offering frames to a capture; it refuses those a batch in flight still offers (<see cref="PacketCapture.Close"/>).</summary>
    public void DisarmCapture(PacketCapture c)
    {
        c.Close();
        lock (_control)
        {
            if (_captures is not { } now || Array.IndexOf(now, c) < 0) return;
            var rest = now.Where(x => x != c).ToArray();
            Volatile.Write(ref _captures, rest.Length == 0 ? null : rest);
        }
    }

    /// <summary>The port mirrors in force, or null when there are none.</summary>
    public PortMirror[]? Mirrors => Volatile.Read(ref _mirrors);

    /// <summary>Replaces the port mirrors (from each thread's next batch on); an empty set is stored as null.</summary>
    public void SetMirrors(PortMirror[]? mirrors) => Volatile.Write(ref _mirrors, mirrors is { Length: > 0 } ? mirrors : null);

    /// <summary>A mirror slot's copies and their bytes, summed over threads.</summary>
    public (long Packets, long Bytes) ReadMirrorCounters(int slot)
    {
        long packets = 0, bytes = 0;
        lock (_control)
            foreach (var c in _contexts)
            {
                packets += c.Counters.MirrorPackets[slot];
                bytes += c.Counters.MirrorBytes[slot];
            }
        return (packets, bytes);
    }

    public IReadOnlyList<DatapathContext> Contexts
    {
        get { lock (_control) return [.. _contexts]; }
    }
    public IReadOnlyList<Stage> Stages { get; }
    /// <summary>Where packets held for a neighbour re-enter: they passed classify and port security already.</summary>
    public int FlowStageIndex { get; }
    public SwitchTopology Topology => Volatile.Read(ref _topology);

    private RxqAssignment _rxq = RxqAssignment.Default;

    /// <summary>Which thread polls which port receive queue; read by each thread at its quiescent point.</summary>
    public RxqAssignment RxqAssignment => Volatile.Read(ref _rxq);

    /// <summary>
    /// Publishes a new assignment (its version is set here). A queue that changes thread must go through a
    /// parked step first: <see cref="MoveRxQueues"/> does that.
    /// </summary>
    /// <summary>Every receive queue of every port now: (port id, queue).</summary>
    public List<RxQueueRef> RxQueueRefs()
    {
        var all = new List<RxQueueRef>();
        foreach (var p in Topology.Ports)
            for (int q = 0; q < p.Io.RxQueueCount; q++) all.Add(new RxQueueRef(p.Id, q));
        return all;
    }

    /// <summary>
    /// Changes the assignment to <paramref name="next"/> without a queue ever read by two threads: the queues that
    /// change thread are parked (published), every thread is waited for until it polls by that (its old thread has
    /// stopped reading them; no timeout, <paramref name="stuck"/> hears of a slow thread), then <paramref name="next"/>
    /// is published and waited for. Frames arriving meanwhile wait in the kernel (or the port). Control plane only, one caller at a time.
    /// </summary>
    public void MoveRxQueues(RxqAssignment next, IReadOnlyList<DatapathThread> threads, int threadCount, Action<DatapathThread, TimeSpan>? stuck = null)
    {
        if (RxqAssignment.Parking(next, RxQueueRefs(), threadCount) is { } parking)
        {
            PublishRxqAssignment(parking);
            Quiescence.WaitRxq(threads, parking.Version, stuck);
        }
        // Waited for too, so that what the threads show (DatapathThread.RxQueues) is the new assignment on return.
        Quiescence.WaitRxq(threads, PublishRxqAssignment(next).Version, stuck);
    }

    public RxqAssignment PublishRxqAssignment(RxqAssignment a)
    {
        ArgumentNullException.ThrowIfNull(a);
        lock (_control)
        {
            a.Version = _rxq.Version + 1;
            Volatile.Write(ref _rxq, a);
        }
        return a;
    }

    /// <summary>A context for one datapath thread; its counters are included in <see cref="ReadCounters"/>.</summary>
    public DatapathContext CreateContext(PacketPool pool)
    {
        DatapathContext ctx;
        lock (_control) ctx = new DatapathContext(this, pool, _contexts.Count);
        lock (_control) _contexts.Add(ctx);
        return ctx;
    }

    /// <summary>
    /// Runs one received batch through every stage and transmits what comes out. The topology and
    /// the clock are read once for the whole batch. The batch is empty afterwards.
    /// </summary>
    public void ProcessBatch(PacketBatch batch, DatapathContext ctx, long nowMs) => ProcessBatch(batch, ctx, nowMs, 0);

    /// <summary>Runs a batch from stage <paramref name="firstStage"/> on (packets held for a neighbour re-enter at the flow stage).</summary>
    public void ProcessBatch(PacketBatch batch, DatapathContext ctx, long nowMs, int firstStage)
    {
        ctx.Topology = Volatile.Read(ref _topology);
        ctx.NowMs = nowMs;
        ctx.Generation = Rules.Version + MacTable.StructureGeneration + ctx.Topology.Version + Volatile.Read(ref _ctVersion);
        ctx.RoutingGeneration = Routes.Version + Neighbors.Version + Neighbors6.Version;
        ctx.Live = Volatile.Read(ref _liveTrace);
        // A synthetic trace's frames are not on any wire: no capture sees them.
        ctx.Captures = ctx.DryRun ? null : Volatile.Read(ref _captures);
        ctx.Mirrors = ctx.DryRun ? null : Volatile.Read(ref _mirrors);
        var stages = _stageArray;
        var sc = ctx.Counters.Stages;
        int output = stages.Length - 1;
        // Stage cost is sampled: a clock read costs 30-40 ns on a VM, so only one batch in
        // StageTimingInterval is timed (VPP's `show runtime` is also an estimate).
        bool timed = (++ctx.BatchNumber & (StageTimingInterval - 1)) == 0;
        long t0 = timed ? Stopwatch.GetTimestamp() : 0;
        for (int s = firstStage; s < output && batch.Count > 0; s++)
        {
            int n = batch.Count;
            ctx.CurrentStage = s;
            stages[s].Process(batch, ctx);
            ref var c = ref sc[s];
            c.Calls++;
            c.Packets += n;
            if (timed)
            {
                long t1 = Stopwatch.GetTimestamp();
                c.TimedPackets += n;
                c.Ticks += t1 - t0;
                t0 = t1;
            }
        }
        // Whatever a stage left behind had no decision: count it rather than leak the buffer.
        if (batch.Count > 0)
        {
            ctx.CurrentStage = output - 1;
            foreach (var p in batch.AsSpan()) ctx.Drop(p, DropReason.NoOutput);
            batch.Clear();
        }
        // The output stage runs even when the others emptied the batch: it sends what they queued.
        var queues = ctx.Output;
        int queued = queues.Queued;
        queues.Queued = 0;
        ctx.CurrentStage = output;
        stages[output].Process(batch, ctx);
        if (queued > 0)
        {
            ref var c = ref sc[output];
            c.Calls++;
            c.Packets += queued;
            if (timed)
            {
                c.TimedPackets += queued;
                c.Ticks += Stopwatch.GetTimestamp() - t0;
            }
        }
        if (ctx.Live is not null) ctx.CompleteTraces();
    }

    /// <summary>Counts received frames on a port (the poll loop calls this once per batch).</summary>
    public static void CountReceive(PacketBatch batch, DatapathContext ctx, int portId)
    {
        ref var pc = ref ctx.Counters.Ports[portId];
        long bytes = 0;
        foreach (var p in batch.AsSpan())
        {
            p.InPort = portId;
            bytes += p.Length;
        }
        pc.RxPackets += batch.Count;
        pc.RxBytes += bytes;
    }

    // ---- control plane ----

    /// <summary>
    /// Adds a network. With a gateway (<paramref name="gateway"/>/<paramref name="prefixLength"/>)
    /// the router gets an interface on it (MAC: <see cref="Network.DefaultRouterMac"/> unless given)
    /// and the connected route to its subnet.
    /// </summary>
    public Network AddNetwork(string name, ushort vlan = 0, uint? vni = null, long macAgingMs = MacTable.DefaultAgingMs,
        uint gateway = 0, int prefixLength = 0, int mtu = 1500, ulong routerMac = 0, UInt128 gateway6 = default, int prefixLength6 = 0,
        bool slaac = true)
    {
        lock (_control)
        {
            var t = _topology;
            if (t.NetworkByName(name) is not null) throw new ArgumentException($"network '{name}' already exists");
            ushort id = 1;
            while (t.Networks.Any(n => n.Id == id)) id++;
            RouterInterface? router = null;
            if (gateway != 0)
            {
                if (prefixLength is < 1 or > 30) throw new ArgumentOutOfRangeException(nameof(prefixLength), prefixLength, "a gateway's prefix must be /1../30");
                router = new RouterInterface(gateway, prefixLength, routerMac != 0 ? routerMac : Network.DefaultRouterMac(id));
            }
            if (gateway6 != UInt128.Zero)
            {
                // IPv6 rides on the IPv4 interface (one MAC, one router leg): a dual-stack network.
                if (router is null) throw new ArgumentException("an IPv6 gateway needs the network's IPv4 gateway too (a dual-stack network)", nameof(gateway6));
                if (prefixLength6 is < 1 or > 127) throw new ArgumentOutOfRangeException(nameof(prefixLength6), prefixLength6, "an IPv6 gateway's prefix must be /1../127");
                router = router with { Address6 = gateway6, PrefixLength6 = prefixLength6, Slaac = slaac };
            }
            var net = new Network(id, name, vlan, vni, macAgingMs, router, mtu);
            Publish(new SwitchTopology([.. t.Networks, net], t.Ports, t.Connections));
            if (router is not null) Routes.Add(router.Subnet, router.PrefixLength, new NextHop(RouteKind.Connected, id, 0));
            if (router is { HasIPv6: true }) Routes.Add6(router.Subnet6, router.PrefixLength6, new NextHop(RouteKind.Connected, id, 0));
            return net;
        }
    }

    public void RemoveNetwork(string name)
    {
        lock (_control)
        {
            var t = _topology;
            var net = t.NetworkByName(name) ?? throw new KeyNotFoundException($"no network named '{name}'");
            if (t.Ports.Any(p => ReferenceEquals(p.Network, net)))
                throw new InvalidOperationException($"network '{name}' still has ports");
            // Its connections go with it: the id is reused by the next network added.
            Publish(new SwitchTopology(t.Networks.Where(n => n != net).ToList(), t.Ports, t.Connections.WithoutNetwork(net.Id)));
            MacTable.FlushNetwork(net.Id);
            Routes.RemoveNetwork(net.Id);
            Neighbors.Flush(net.Id);
            Neighbors6.Flush(net.Id);
        }
    }

    /// <summary>Attaches a port. <paramref name="make"/> receives the new port id.</summary>
    public SwitchPort AddPort(Func<int, SwitchPort> make)
    {
        lock (_control)
        {
            var t = _topology;
            int id = 1;
            while (t.Port(id) is not null) id++;
            var port = make(id);
            if (port.Id != id) throw new ArgumentException("port must use the id it was given");
            if (t.PortByName(port.Name) is not null) throw new ArgumentException($"port '{port.Name}' already exists");
            if (!port.IsTunnel && !t.Networks.Contains(port.Network)) throw new ArgumentException($"network '{port.Network.Name}' is not part of this switch");
            if (port.IsTunnel && t.TunnelPort is not null) throw new ArgumentException($"there is already a tunnel port ({t.TunnelPort.Name})");
            Publish(new SwitchTopology(t.Networks, [.. t.Ports, port], t.Connections));
            return port;
        }
    }

    public SwitchPort AddPort(IPort io, string network, VlanMode mode = VlanMode.Access, ushort? accessVlan = null,
        IReadOnlyCollection<ushort>? trunks = null, ushort nativeVlan = 0)
    {
        var net = Topology.NetworkByName(network) ?? throw new KeyNotFoundException($"no network named '{network}'");
        return AddPort(id => new SwitchPort(id, io, net, mode, accessVlan, trunks, nativeVlan));
    }

    /// <summary>
    /// Changes a port's security settings: the same port (id, device, VLAN mode) is published again with
    /// them, so cached flows revalidate and the port-security stage sees the new settings on the next batch.
    /// </summary>
    public SwitchPort SetPortSecurity(string name, PortSecurity? security, ulong mac, bool pinMac)
    {
        lock (_control)
        {
            var t = _topology;
            var old = t.PortByName(name) ?? throw new KeyNotFoundException($"no port named '{name}'");
            var port = old.WithSecurity(security, mac, pinMac);
            Publish(new SwitchTopology(t.Networks, t.Ports.Select(p => p == old ? port : p).ToList(), t.Connections));
            return port;
        }
    }

    /// <summary>Sets the remote VTEPs of a VXLAN network (head-end replication list) and whether unknown VTEPs are accepted.</summary>
    public void SetVteps(string network, IEnumerable<uint> vteps, bool? acceptUnknown = null)
    {
        lock (_control)
        {
            var t = _topology;
            var net = t.NetworkByName(network) ?? throw new KeyNotFoundException($"no network named '{network}'");
            if (net.Vni is null) throw new InvalidOperationException($"network '{network}' has no VNI: it is not a VXLAN network");
            net.SetVteps(vteps.Distinct().ToArray());
            if (acceptUnknown is bool a) net.AcceptUnknownVteps = a;
            // Same networks and ports, new version: cached flows (flood lists) revalidate.
            Publish(new SwitchTopology(t.Networks, t.Ports, t.Connections));
        }
    }

    /// <summary>
    /// Lets the router route between two networks (isolated by default). Returns false when they
    /// already were connected. A new topology is published, so every cached flow is decided again.
    /// </summary>
    public bool ConnectNetworks(string a, string b) => ChangeConnection(a, b, connect: true);

    /// <summary>Isolates two networks again; false when they were not connected. Cached flows between them stop at their next packet.</summary>
    public bool DisconnectNetworks(string a, string b) => ChangeConnection(a, b, connect: false);

    private bool ChangeConnection(string a, string b, bool connect)
    {
        lock (_control)
        {
            var t = _topology;
            var na = t.NetworkByName(a) ?? throw new KeyNotFoundException($"no network named '{a}'");
            var nb = t.NetworkByName(b) ?? throw new KeyNotFoundException($"no network named '{b}'");
            if (na == nb) throw new ArgumentException($"network '{a}' cannot be connected to itself");
            if (t.Connections.Connected(na.Id, nb.Id) == connect) return false;
            var c = connect ? t.Connections.With(na.Id, nb.Id) : t.Connections.Without(na.Id, nb.Id);
            // A new version invalidates every cached flow (as any topology change does): a flow
            // allowed before a disconnect is decided again, and dropped, at its next packet.
            Publish(new SwitchTopology(t.Networks, t.Ports, c));
            return true;
        }
    }

    /// <summary>Detaches a port and forgets its addresses. The caller disposes its I/O once no thread polls it.</summary>
    public SwitchPort RemovePort(string name)
    {
        lock (_control)
        {
            var t = _topology;
            var port = t.PortByName(name) ?? throw new KeyNotFoundException($"no port named '{name}'");
            Publish(new SwitchTopology(t.Networks, t.Ports.Where(p => p != port).ToList(), t.Connections));
            MacTable.FlushPort(port.Id);
            return port;
        }
    }

    private void Publish(SwitchTopology t)
    {
        t.Version = _topology.Version + 1;
        Volatile.Write(ref _topology, t);
        TopologyChanged?.Invoke(t);
    }

    /// <summary>Raised (on the control thread) after a new topology is published; poll loops re-read their ports.</summary>
    public event Action<SwitchTopology>? TopologyChanged;

    // ---- flows and rules, read across threads ----

    /// <summary>A rule's packets and bytes: what its cached flows counted plus what flows that left the caches counted.</summary>
    public (long Packets, long Bytes) RuleCounters(Rule rule)
    {
        long packets = Volatile.Read(ref rule.RetiredPackets), bytes = Volatile.Read(ref rule.RetiredBytes);
        foreach (var ctx in Contexts)
            foreach (var e in ctx.FlowCache.Entries())
                if (ReferenceEquals(e.Rule, rule))
                {
                    packets += e.Packets - e.AttributedPackets;
                    bytes += e.Bytes - e.AttributedBytes;
                }
        return (packets, bytes);
    }

    /// <summary>Empties every thread's flow cache (each thread does its own); returns after they have.</summary>
    public void FlushFlows()
    {
        foreach (var ctx in Contexts) ctx.FlushFlows(TimeSpan.FromSeconds(2));
    }

    // ---- counters, summed over threads ----

    public PortCounters ReadPortCounters(int portId)
    {
        var sum = new PortCounters();
        lock (_control)
            foreach (var c in _contexts) sum.Add(c.Counters.Ports[portId]);
        return sum;
    }

    /// <summary>A port's drops of the reasons counted per port (<see cref="DropReasons.PerPort"/>), summed over threads, in that order.</summary>
    public long[] ReadPortDrops(int portId)
    {
        int n = DropReasons.PerPort.Length;
        var sum = new long[n];
        if ((uint)portId >= SwitchTopology.MaxPorts) return sum;
        lock (_control)
            foreach (var c in _contexts)
                for (int i = 0; i < n; i++) sum[i] += c.Counters.PortDrops[portId * n + i];
        return sum;
    }

    /// <summary>Drops by reason, summed over stages and threads.</summary>
    public long[] ReadDropCounters()
    {
        var byStage = ReadStageDropCounters();
        var sum = new long[(int)DropReason.Count];
        for (int i = 0; i < byStage.Length; i++) sum[i % sum.Length] += byStage[i];
        return sum;
    }

    /// <summary>Drops per (stage, reason) summed over threads, at <c>stage * DropReason.Count + reason</c>.</summary>
    public long[] ReadStageDropCounters()
    {
        var sum = new long[Stages.Count * (int)DropReason.Count];
        lock (_control)
            foreach (var c in _contexts)
                for (int i = 0; i < sum.Length; i++) sum[i] += c.Counters.Drops[i];
        return sum;
    }

    public StageCounters[] ReadStageCounters()
    {
        var sum = new StageCounters[Stages.Count];
        lock (_control)
            foreach (var c in _contexts)
                for (int i = 0; i < sum.Length; i++)
                {
                    sum[i].Calls += c.Counters.Stages[i].Calls;
                    sum[i].Packets += c.Counters.Stages[i].Packets;
                    sum[i].Ticks += c.Counters.Stages[i].Ticks;
                    sum[i].TimedPackets += c.Counters.Stages[i].TimedPackets;
                }
        return sum;
    }
}
