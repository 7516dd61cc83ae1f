using VSwitchd.Host;
using System.Globalization;
using VSwitch.Api;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Tables;
using VSwitch.Core.Tables.Rules;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;
using VSwitchd.Config;

namespace VSwitchd.Runtime;

/// <summary>
/// What the management API shows, as the API contract's records: read from the tables the datapath
/// uses when asked (nothing here is a copy kept on the side), with the lookups by name that refuse an
/// unknown name with <see cref="NotFoundException"/>. The API maps HTTP onto these and walks no table itself.
/// </summary>
public sealed partial class SwitchRuntime
{
    private static NotFoundException NoNetwork(string? name) => new($"no network named '{name}'");
    private static NotFoundException NoPort(string? name) => new($"no port named '{name}'");

    /// <summary>A network by name, or <see cref="NotFoundException"/>.</summary>
    public Network RequireNetwork(string name) => Datapath.Topology.NetworkByName(name) ?? throw NoNetwork(name);

    /// <summary>A port by name, or <see cref="NotFoundException"/>.</summary>
    public SwitchPort RequirePort(string name) => Datapath.Topology.PortByName(name) ?? throw NoPort(name);

    public ShowView Show() => new(
        typeof(SwitchRuntime).Assembly.GetName().Version?.ToString() ?? "0",
        (DateTime.UtcNow - StartedAt).TotalSeconds, Options.Threads, Options.BusyPoll,
        ListNetworks(), ListPorts(), Datapath.MacTable.Count);

    // ---- networks and ports ----

    public NetworkView[] ListNetworks()
    {
        var t = Datapath.Topology;
        return t.Networks.Select(n => NetworkView(t, n)).ToArray();
    }

    /// <summary>A network by its name, or by the name of the Docker network it serves (vsctl network inspect my-net).</summary>
    public NetworkView GetNetwork(string name)
    {
        var t = Datapath.Topology;
        return NetworkView(t, NetworkOrDocker(t, name) ?? throw NoNetwork(name));
    }

    /// <summary>A network by its own name, else by the name of the Docker network it serves (vswitchd --docker-plugin); null when neither.</summary>
    private Network? NetworkOrDocker(SwitchTopology t, string name) =>
        t.NetworkByName(name) ?? (Store?.DockerNetworks().FirstOrDefault(d => d.DockerName == name) is { } d ? t.NetworkByName(d.Network) : null);

    private NetworkView NetworkView(SwitchTopology t, Network n) => WithAddressing(new NetworkView(n.Name, n.Id, n.Vlan, n.Vni, (int)(n.MacAgingMs / 1000),
        t.Members(n.Id).Select(p => p.Name).ToArray(),
        n.Router is { } r ? FormatPrefix(r.Subnet, r.PrefixLength) : null,
        n.Router is { } g ? AddressFormat.IPv4(g.Address) : null,
        n.Router is { } m ? MacAddress.Format(m.Mac) : null, n.Mtu)
    {
        ConnectedTo = ConnectedTo(t, n),
        HostPort = HostPortViewOf(n.Name),
        Subnet6 = n.Router is { HasIPv6: true } r6 ? FormatPrefix6(r6.Subnet6, r6.PrefixLength6) : null,
        Gateway6 = n.Router is { HasIPv6: true } g6 ? AddressFormat.IPv6(g6.Address6) : null,
        LinkLocal6 = n.Router is { HasIPv6: true } l6 ? AddressFormat.IPv6(l6.LinkLocal6) : null,
        Slaac = n.Router is { HasIPv6: true } a6 ? a6.Slaac : null,
    });

    /// <summary>The network view with its address plan: subnet, gateway, MTU and the addresses in use.</summary>
    private NetworkView WithAddressing(NetworkView v)
    {
        var cfg = NetworkConfig(v.Name);
        if (cfg is null) return v;
        Ipv4Pool? pool = null;
        try { pool = Ipv4Pool.Of(cfg.Subnet, cfg.Gateway); } catch (ArgumentException) { }
        var allocations = Attachments?.Allocations(v.Name)
            .Select(x => new AllocationView(x.Address.Split('/')[0], x.Owner.Id, x.Owner.ContainerId, x.Owner.Ifname, x.Owner.Port)
            { Name = x.Owner.Name ?? Attachments.DisplayName(null, x.Owner.ContainerId, x.Owner.Netns) }).ToArray() ?? [];
        var docker = Store?.DockerNetworks().FirstOrDefault(d => d.Network == v.Name);
        return v with
        {
            Subnet = v.Subnet ?? pool?.Subnet,
            Gateway = v.Gateway ?? pool?.GatewayAddress,
            Subnet6 = v.Subnet6 ?? cfg.Subnet6,
            Gateway6 = v.Gateway6 ?? cfg.Gateway6,
            Allocations = allocations,
            DockerId = docker?.Id,
            DockerName = docker?.DockerName,
        };
    }

    public PortView[] ListPorts()
    {
        var cfgs = PortConfigs;
        return Datapath.Topology.Ports.OrderBy(p => p.Id).Select(p => PortView(p, cfgs.GetValueOrDefault(p.Name)))
            .Concat(DownPorts.OrderBy(d => d.Key, StringComparer.Ordinal).Select(d => DownPortView(d.Value.Config, d.Value.Reason))).ToArray();
    }

    public PortView GetPort(string name)
    {
        if (DownPorts.TryGetValue(name, out var down)) return DownPortView(down.Config, down.Reason);
        var p = RequirePort(name);
        return PortView(p, PortConfigs.GetValueOrDefault(p.Name));
    }

    private PortView PortView(SwitchPort p, PortConfig? c)
    {
        var k = Datapath.ReadPortCounters(p.Id);
        var state = PortState(p, c);
        return new PortView(p.Name, p.Id, c?.Type ?? p.Io.GetType().Name, p.Network.Name,
            p.Mode == VlanMode.Trunk ? "trunk" : "access", p.AccessVlan, p.Trunks.Select(v => (int)v).ToArray(), p.NativeVlan,
            c?.Netns, c?.AttachesDevice == true ? c.Device ?? c.Name : null,
            // The MAC as configured, else the one the kernel gave the device (a random one): never "-" for a device that has one.
            c?.Mac ?? (state.Mac is ulong mac ? MacAddress.Format(mac) : null), c?.Addresses.ToArray() ?? [],
            new CountersView(k.RxPackets, k.RxBytes, k.TxPackets, k.TxBytes, k.RxDrops, k.TxDrops, k.RxUnsent),
            Details(p),
            state.State, state.Reason, Features(p))
        {
            PortSecurity = p.Security is not null,
            PinMac = p.PinMac,
            SecurityDrops = SecurityDrops(p.Id),
            MacMoves = Datapath.MacTable.Moves.ToPort(p.Id),
        };
    }

    /// <summary>The port's drops by the reasons counted per port, those with a count only (null when none).</summary>
    private Dictionary<string, long>? SecurityDrops(int portId)
    {
        var counts = Datapath.ReadPortDrops(portId);
        Dictionary<string, long>? d = null;
        for (int i = 0; i < counts.Length; i++)
            if (counts[i] > 0) (d ??= [])[VSwitch.Core.Flow.DropReasons.PerPort[i].Name()] = counts[i];
        return d;
    }

    /// <summary>The port's own diagnostic counters, and how many times its device vanished under it (when it did).</summary>
    private Dictionary<string, long>? Details(SwitchPort p)
    {
        var d = p.Io is VSwitch.Core.Ports.IPortDiagnostics diag ? diag.Diagnostics().ToDictionary(kv => kv.Key, kv => kv.Value) : null;
        if (DeviceLosses(p.Name) is > 0 and var lost) (d ??= [])[DeviceLossesDetail] = lost;
        return d;
    }

    /// <summary>How a port does its I/O, in words (they were codes in the details: "offloads": 1, "io-uring": 3).</summary>
    private static Dictionary<string, string>? Features(SwitchPort p) => p.Io switch
    {
        VSwitch.Core.Ports.TapPort t => new() { ["offloads"] = t.Offloads ? "on" : "off", ["io-uring"] = t.IoUringMode },
        VSwitch.Core.Ports.AfPacketPort a => AfPacketFeatures(a),
        VSwitch.Core.Ports.AfXdp.AfXdpPort x => AfXdpFeatures(x),
        _ => null,
    };

    /// <summary>
    /// Up, down or gone, with the reason: the port's own word first (a device that vanished under it),
    /// then what the host says of the device where it lives. The tunnel port has no device of its own.
    /// </summary>
    private LinkState PortState(SwitchPort p, PortConfig? c)
    {
        if (p.Io.Fault is { } fault) return new("gone", fault);
        if (p.IsTunnel || c is null) return LinkState.Up;
        // An attachment's TAP was renamed inside the container (eth0): ask for that name there.
        string dev = c.AttachesDevice ? c.Device ?? c.Name : Attachments?.IfnameOf(p.Name) ?? p.Io.Name;
        try { return LinkProbe.Probe(dev, c.AttachesDevice ? null : c.Netns); }
        catch (Exception e) when (e is VSwitch.Core.Ports.Linux.PortException or IOException) { return new("unknown", e.Message); }
    }

    // ---- the MAC table ----

    /// <summary>The MAC table, of one network (which must exist) or of all.</summary>
    public FdbEntryView[] ListFdb(string? network)
    {
        var t = Datapath.Topology;
        if (network is not null && t.NetworkByName(network) is null) throw NoNetwork(network);
        var nets = t.Networks.ToDictionary(n => n.Id, n => n.Name);
        return Datapath.MacTable.Entries(Environment.TickCount64)
            .Select(e => new FdbEntryView(nets.GetValueOrDefault(e.Network, $"#{e.Network}"), e.Vlan, MacAddress.Format(e.Mac),
                t.Port(e.Port)?.Name ?? $"#{e.Port}", Math.Round(e.AgeMs / 1000.0, 1), e.IsStatic,
                e.Remote != 0 ? VtepRemote.Format(e.Remote) : null))
            .Where(e => network is null || e.Network == network)
            .OrderBy(e => e.Network).ThenBy(e => e.Vlan).ThenBy(e => e.Port).ThenBy(e => e.Mac)
            .ToArray();
    }

    /// <summary>
    /// Forgets learned MAC entries: those learned on a port, or in a network, or all (a port wins over a
    /// network). Static entries (remote MACs) stay: they leave one at a time (<see cref="RemoveMac"/>).
    /// </summary>
    public int FlushLearnedMacs(string? network, string? port)
    {
        var macs = Datapath.MacTable;
        if (port is not null) return macs.FlushLearned(port: RequirePort(port).Id);
        if (network is not null) return macs.FlushLearned(network: RequireNetwork(network).Id);
        return macs.FlushLearned();
    }

    // ---- counters ----

    public StatsView GetStats()
    {
        // One read of the per-(stage, reason) counters: the totals are summed from it, so they agree.
        var byStage = Datapath.ReadStageDropCounters();
        var stages = Datapath.ReadStageCounters();
        int reasons = (int)DropReason.Count;
        var drops = new long[reasons];
        for (int i = 0; i < byStage.Length; i++) drops[i % reasons] += byStage[i];
        return new StatsView(
            ListPorts(),
            Enumerable.Range(1, reasons - 1).Where(i => drops[i] > 0)
                .Select(i => new DropView(((DropReason)i).Name(), drops[i], ((DropReason)i).IsExpected())).ToArray(),
            stages.Select((s, i) => new StageView(Datapath.Stages[i].Name, s.Calls, s.Packets,
                Math.Round(s.NsPerPacket, 1),
                s.Calls == 0 ? 0 : Math.Round((double)s.Packets / s.Calls, 1), s.TimedPackets,
                Enumerable.Range(1, reasons - 1).Where(r => byStage[i * reasons + r] > 0)
                    .Select(r => new DropView(((DropReason)r).Name(), byStage[i * reasons + r], ((DropReason)r).IsExpected())).ToArray())).ToArray(),
            Datapath.MacTable.Count, Datapath.MacTable.Capacity, FlowCacheStats(), Datapath.MacTable.RefusedLearns, GetLimits(), ListCaptures(), ListThreads())
        { NorthSouth = NorthSouthStats() };
    }

    /// <summary>The datapath threads' flow caches, summed.</summary>
    public FlowCacheView FlowCacheStats()
    {
        long flows = 0, hits = 0, misses = 0, reval = 0, evict = 0, exp = 0;
        foreach (var c in Datapath.Contexts)
        {
            var f = c.FlowCache;
            flows += f.Count; hits += f.Hits; misses += f.Misses; reval += f.Revalidations; evict += f.Evictions; exp += f.Expirations;
        }
        double total = hits + misses + reval;
        return new FlowCacheView(flows, hits, misses, reval, evict, exp, total == 0 ? 0 : Math.Round(hits / total, 4));
    }

    // ---- rules and datapath flows ----

    public RuleView[] ListRules() => Datapath.Rules.Rules.Select(RuleView).ToArray();

    public int RuleCount => Datapath.Rules.Rules.Count;

    private RuleView RuleView(Rule r)
    {
        var (packets, bytes) = Datapath.RuleCounters(r);
        return new RuleView(r.Priority, "0x" + r.Cookie.ToString("x"), r.Match.Format(PortName), FlowAction.Format(r.Actions, PortName),
            r.Format(PortName), packets, bytes, r.IdleTimeout, r.HardTimeout,
            Math.Round((Environment.TickCount64 - r.InstalledAtMs) / 1000.0, 1));
    }

    /// <summary>Every thread's cached datapath flows (<c>dpctl/dump-flows</c>), busiest first; those a filter accepts when given.</summary>
    public FlowView[] DumpFlows(FlowFilter? filter = null)
    {
        long now = Environment.TickCount64;
        var topology = Datapath.Topology;
        var list = new List<FlowView>();
        foreach (var ctx in Datapath.Contexts)
            foreach (var e in ctx.FlowCache.Entries())
                if (filter is null || filter.Accepts(e, topology))
                    list.Add(new FlowView(ctx.Index, FlowKeyFormat.Format(e.Key).Replace("in_port=" + e.Key.InPort, "in_port=" + (PortName(e.Key.InPort) ?? e.Key.InPort.ToString(CultureInfo.InvariantCulture))),
                    FlowAction.Format(e.Actions, PortName), e.Rule?.Format(PortName), e.Packets, e.Bytes,
                    Math.Round((now - e.CreatedMs) / 1000.0, 1), Math.Round((now - e.LastUsedMs) / 1000.0, 1)));
        return list.OrderByDescending(f => f.Packets).ToArray();
    }

    /// <summary>Empties every thread's flow cache; returns how many flows there were.</summary>
    public int FlushFlows()
    {
        int before = Datapath.Contexts.Sum(c => c.FlowCache.Count);
        Datapath.FlushFlows();
        return before;
    }

    // ---- traces ----

    /// <summary>
    /// Runs a packet through the tables without sending it (<c>ofproto/trace</c>): a match (spec, with
    /// in_port or <paramref name="inPort"/>) made into a frame, or a frame as hex arriving on <paramref name="inPort"/>.
    /// </summary>
    public TraceView Trace(string? spec, string? hex, string? inPort, bool routed = false)
    {
        byte[] frame;
        int port;
        uint tunId = 0, tunSrc = 0;
        if (!string.IsNullOrWhiteSpace(hex))
        {
            try { frame = Convert.FromHexString(new string(hex.Where(c => !char.IsWhiteSpace(c) && c != ':').ToArray())); }
            catch (FormatException) { throw new InvalidRequestException($"hex: '{Shorten(hex)}' is not a hex string"); }
            if (inPort is null) throw new InvalidRequestException("a hex frame needs inPort (the port it arrives on)");
            port = PortId(inPort) ?? throw NoPort(inPort);
        }
        else if (!string.IsNullOrWhiteSpace(spec))
        {
            ParsedRule parsed;
            try { parsed = RuleParser.ParseMatch(spec, PortId); }
            catch (RuleSyntaxException e) { throw Syntax("bad packet description", e); }
            var key = parsed.Match.Value;
            if (parsed.Match.Mask.InPort == 0)
            {
                if (inPort is null) throw new InvalidRequestException("say where the packet comes in: in_port=PORT");
                key.InPort = (ushort)(PortId(inPort) ?? throw NoPort(inPort));
            }
            port = key.InPort;
            // A routed packet goes to the router's MAC: say so for the user when the destination is
            // off the ingress network's subnet (or --routed), as a host's own stack would.
            if (parsed.Match.Mask.DlDst == 0 && Datapath.Topology.Port(port) is { } ingress
                && Datapath.Topology.IngressNetwork(ingress, key.TunId) is { Router: { } router }
                && (routed || key.IsIPv4 && parsed.Match.Mask.NwDst != 0 && !router.OnLink((uint)key.NwDst)
                    || key.IsIPv6 && router.HasIPv6 && parsed.Match.Mask.NwDst != 0 && !router.OnLink6(key.NwDst)))
                key.DlDst = router.Mac;
            else if (routed) throw new InvalidRequestException("--routed: the packet's network has no router (give it a subnet), or the spec names dl_dst itself");
            // From the tunnel port, the frame arrives with the VNI and remote VTEP the spec names (tun_id, tun_src).
            tunId = key.TunId;
            tunSrc = key.TunRemote;
            // A described TCP packet is a connection's first (SYN): with connection tracking on, a segment
            // without flags opens nothing and is dropped as invalid, so a trace to a service VIP showed no backend.
            if (key.NwProto == VSwitch.Core.Wire.IpProtocols.Tcp && key.TcpFlags == 0) key.TcpFlags = VSwitch.Core.Tables.Conntrack.TcpTracker.Syn;
            frame = FrameBuilder.FromKey(key);
        }
        else throw new InvalidRequestException("give a packet: {\"spec\": \"in_port=p1,icmp,nw_dst=...\"} or {\"hex\": \"...\", \"inPort\": \"p1\"}");
        return TraceView(Tracer.Trace(Datapath, frame, port, Environment.TickCount64, tunId, tunSrc));
    }

    /// <summary>
    /// Traces the next <paramref name="count"/> real packets that match <paramref name="filter"/> (VPP's
    /// <c>trace add</c>), waiting at most <paramref name="timeoutSeconds"/>.
    /// </summary>
    public async Task<LiveTraceView> LiveTraceAsync(string? filter, int? count, double? timeoutSeconds)
    {
        int n = count ?? 10;
        if (n is < 1 or > 1000) throw new InvalidRequestException($"count {n} must be 1..1000");
        double timeout = timeoutSeconds ?? 10;
        if (timeout is <= 0 or > 300) throw new InvalidRequestException($"timeoutSeconds {timeout} must be in (0, 300]");
        FlowMatch match;
        try { match = RuleParser.ParseMatch(filter ?? "", PortId).Match; }
        catch (RuleSyntaxException e) { throw Syntax("bad filter", e); }
        var live = new LiveTrace(match, n);
        Datapath.ArmLiveTrace(live);
        await Task.WhenAny(live.Completion, Task.Delay(TimeSpan.FromSeconds(timeout)));
        Datapath.DisarmLiveTrace(live);
        var results = live.Results;
        return new LiveTraceView(n, results.Count, results.Count >= n, results.Select(TraceView).ToArray());
    }

    private static string Shorten(string s) => s.Length > 40 ? s[..40] + "..." : s;

    private static TraceView TraceView(PacketTrace t) => new(t.Flow, t.Steps.Select(s => new TraceStepView(s.Stage, s.Detail)).ToArray(),
        t.Actions, t.DropReason, t.CacheHit, t.Time.ToString("O"));

    // ---- the router ----

    public RouteView[] ListRoutes()
    {
        var topo = Datapath.Topology;
        return Datapath.Routes.Routes().Select(r => new RouteView(FormatPrefix(r.Prefix, r.Length),
            r.Paths.Select(p => new RoutePathView(p.Kind.ToString().ToLowerInvariant(), topo.Network(p.Network)?.Name ?? $"#{p.Network}",
                p.Kind == RouteKind.Via ? AddressFormat.IPv4(p.Gateway) : null)).ToArray())).Concat(ListRoutes6()).ToArray();
    }

    /// <summary>The route to a prefix, written any way (10.9.1.0/16 is 10.9.0.0/16), or <see cref="NotFoundException"/>.</summary>
    public RouteView GetRoute(string prefix)
    {
        string normal;
        if (IsIPv6Text(prefix))
        {
            var (a6, l6) = ParsePrefix6(prefix);
            normal = FormatPrefix6(a6 & RouteTable.Mask6(l6), l6);
        }
        else
        {
            var (a, l) = ParsePrefix(prefix);
            normal = FormatPrefix(a & RouteTable.Mask(l), l);
        }
        return ListRoutes().FirstOrDefault(r => r.Prefix == normal) ?? throw new NotFoundException($"no route {prefix}");
    }

    /// <summary>The ARP cache, of one network (which must exist) or of all.</summary>
    public NeighborView[] ListNeighbors(string? network)
    {
        if (network is not null) RequireNetwork(network);
        var topo = Datapath.Topology;
        long now = Environment.TickCount64;
        return Datapath.Neighbors.Entries()
            .Select(e => new NeighborView(topo.Network(e.Network)?.Name ?? $"#{e.Network}", AddressFormat.IPv4(e.Address),
                e.State == NeighborState.Incomplete || e.State == NeighborState.Failed ? "" : MacAddress.Format(e.Mac),
                e.State.ToString().ToLowerInvariant(), e.State == NeighborState.Permanent ? 0 : Math.Round((now - e.UpdatedMs) / 1000.0, 1)))
            .Concat(Neighbors6(now))
            .Where(n => network is null || n.Network == network)
            .OrderBy(n => n.Network).ThenBy(n => n.Ip).ToArray();
    }

    /// <summary>One network's entry for an address, or <see cref="NotFoundException"/>.</summary>
    public NeighborView GetNeighbor(string network, string ip)
    {
        string address = IsIPv6Text(ip) ? AddressFormat.IPv6(ParseIPv6(ip, "ip")) : AddressFormat.IPv4(ParseIPv4(ip, "ip"));
        return ListNeighbors(network).FirstOrDefault(n => n.Ip == address) ?? throw new NotFoundException($"no neighbour {ip} in network '{network}'");
    }

    /// <summary>Forgets the dynamic ARP entries of one network (which must exist) or of all; permanent ones stay.</summary>
    public int FlushNeighbors(string? network)
    {
        ushort? id = network is null ? null : RequireNetwork(network).Id;
        return Datapath.Neighbors.Flush(id) + Datapath.Neighbors6.Flush(id);
    }

    // ---- the overlay ----

    public OverlayView GetOverlay()
    {
        var nets = Datapath.Topology.Networks.Where(n => n.Vni is not null).Select(OverlayNetworkView).ToArray();
        var vteps = Tunnel?.Vteps().OrderBy(kv => kv.Key)
            .Select(kv => new VtepView(VtepRemote.Format(kv.Key), kv.Value.RxPackets, kv.Value.RxBytes, kv.Value.TxPackets, kv.Value.TxBytes)).ToArray() ?? [];
        return new OverlayView(Overlay?.Local, Overlay?.Port ?? 0, Tunnel?.Name, nets, vteps) { Udp6ZeroChecksumRx = Overlay?.Udp6ZeroChecksumRx ?? false };
    }

    /// <summary>A VXLAN network's overlay view; an unknown network is <see cref="NotFoundException"/>, one without a vni <see cref="InvalidRequestException"/>.</summary>
    public OverlayNetworkView GetOverlayNetwork(string network)
    {
        var n = RequireNetwork(network);
        return n.Vni is null ? throw new InvalidRequestException($"network '{network}' has no vni: it is not a VXLAN network") : OverlayNetworkView(n);
    }

    private static OverlayNetworkView OverlayNetworkView(Network n) =>
        new(n.Name, n.Vni!.Value, n.Vteps.Select(VtepRemote.Format).ToArray(), n.AcceptUnknownVteps, n.Mtu);
}
