using System.Net;
using VSwitch.Api;
using VSwitch.Core.Tables.Conntrack;
using VSwitch.Core.Tables.Services;
using VSwitch.Core.Wire;
using VSwitchd.Runtime;

namespace VSwitchd.Services;

/// <summary>
/// Services: load-balanced virtual IPs. Keeps the services (stored), resolves each one's backends
/// (added by address, or attachments its selector matches, followed as they come and go), leaves out
/// the draining and the unhealthy, and publishes one immutable <see cref="MaglevPicker"/> per service
/// port as a conntrack frontend. The conntrack stage does the rest on the datapath: the picker chooses
/// a new connection's backend once, the connection's entry keeps it there (and reverse-NATs replies),
/// so a change here moves new connections only.
/// </summary>
public sealed class LoadBalancer : IHostedService, IDisposable
{
    /// <summary>Conntrack labels of service backends start here (other owners of frontends use small numbers).</summary>
    public const int LabelBase = 0x5E000000;
    public const int LabelSpan = 0x01000000;

    private readonly object _gate = new();
    private readonly List<ServiceConfig> _services = [];
    private readonly SwitchRuntime _rt;
    private readonly Attachments _attachments;
    private readonly ILogger _log;
    private readonly Dictionary<(string Service, string Key), int> _labels = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, BackendCounters> _counters = new();
    private Dictionary<string, ServiceState> _published = [];
    private int _nextLabel = LabelBase + 1;
    /// <summary>Per service with client-IP affinity: each client's backend, kept across the pickers rebuilt around it.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ClientAffinityTable> _sticky = new();

    private Timer? _timer;

    public LoadBalancer(SwitchRuntime rt, Attachments attachments, ILogger<LoadBalancer> log, ILoggerFactory logs)
    {
        _rt = rt;
        _attachments = attachments;
        _log = log;
        Health = new HealthChecker(this, logs.CreateLogger<HealthChecker>());
        Namespace = new ServiceNamespace(rt, attachments, logs.CreateLogger<ServiceNamespace>());
        Dns = new DnsServer(DnsNames, logs.CreateLogger<DnsServer>());
    }

    public DnsServer Dns { get; }

    /// <summary>The conntrack label of DNS connections to the gateway (not a backend's).</summary>
    public const int DnsLabel = LabelBase;

    public HealthChecker Health { get; }
    public ServiceNamespace Namespace { get; }

    /// <summary>What a service's Maglev tables were built from at its last publication, for views and metrics.</summary>
    public sealed record ServiceState(ServiceConfig Config, ResolvedBackend[] Backends, int[] Slots, int TableSize);

    /// <summary>A backend as resolved now: from a static entry or a selected attachment, with where a probe can reach it.</summary>
    public sealed record ResolvedBackend(string Key, string Ip, int? Port, int Weight, string Source, bool Draining, string? AttachmentId,
        string? Netns, bool InSubnet, int Label)
    {
        public uint Address => Ipv4Pool.ToUInt(IPAddress.Parse(Ip));
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_rt.Store is { } st)
        {
            lock (_gate) _services.AddRange(st.Services());
        }
        _attachments.Changed += OnAttachmentsChanged;
        if (_services.Count > 0) EnsureNamespace();
        Publish();
        // Networks made later get the services namespace too (there is no event for networks).
        // ... and the clients of affinity services not seen for their timeout are forgotten.
        _timer = new Timer(_ =>
        {
            if (List().Length > 0) EnsureNamespace();
            foreach (var t in _sticky.Values) t.Reap();
        }, null, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2));
        if (_services.Count > 0) _log.LogInformation("services: {Count} restored ({Names})", _services.Count, string.Join(", ", _services.Select(s => s.Name)));
        return Task.CompletedTask;
    }

    /// <summary>The services namespace on every routed network, and the DNS server in it; republished when a network joined.</summary>
    private void EnsureNamespace()
    {
        int before = Namespace.Addresses.Count;
        Namespace.Ensure();
        bool dnsStarted = Dns.Start(Namespace.Name);
        if (Namespace.Addresses.Count != before || dnsStarted && !_dnsPublished) Publish();
    }

    private volatile bool _dnsPublished;

    /// <summary>What DNS answers: service names (their VIP) and containers' names (their address).</summary>
    private IReadOnlyDictionary<string, IPAddress> DnsNames()
    {
        var d = new Dictionary<string, IPAddress>(StringComparer.Ordinal);
        foreach (var a in _attachments.List())
            if (a.ContainerId != ServiceNamespace.ContainerId && a.Address is { } addr && a.Name is { Length: > 0 } n)
                d.TryAdd(n.ToLowerInvariant(), IPAddress.Parse(addr.Split('/')[0]));
        lock (_gate)
            foreach (var s in _services) d[s.Name] = IPAddress.Parse(s.Vip); // a service wins over a container of the same name
        return d;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _attachments.Changed -= OnAttachmentsChanged;
        _timer?.Dispose();
        Dns.Dispose();
        Health.StopAll();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _timer?.Dispose();
        Health.StopAll();
    }

    private void OnAttachmentsChanged() => Publish();

    public ServiceConfig[] List()
    {
        lock (_gate) return [.. _services];
    }

    public ServiceConfig Get(string name)
    {
        lock (_gate) return _services.FirstOrDefault(s => s.Name == name) ?? throw new NotFoundException($"no service named '{name}'");
    }

    public ServiceConfig Add(ServiceRequest req)
    {
        var s = ServiceConfig.FromRequest(req);
        uint vip = Ipv4Pool.ToUInt(IPAddress.Parse(s.Vip));
        foreach (var (net, cfg) in _rt.NetworkConfigs)
        {
            Ipv4Pool? pool = null;
            try { pool = Ipv4Pool.Of(cfg.Subnet, cfg.Gateway); } catch (ArgumentException) { }
            if (pool is { } p && p.Contains(vip))
                throw new InvalidRequestException($"vip: {s.Vip} is inside network '{net}' ({p.Subnet}); a VIP must lie outside every network's subnet " +
                    "(e.g. in the service range 10.96.0.0/12), where clients reach it through their gateway");
        }
        lock (_gate)
        {
            if (_services.Any(x => x.Name == s.Name)) throw new ConflictException($"service '{s.Name}' already exists");
            foreach (var other in _services.Where(x => x.Vip == s.Vip))
                foreach (var p in s.Ports.Where(p => other.Ports.Any(q => q.Port == p.Port && q.Protocol == p.Protocol)))
                    throw new ConflictException($"vip: {s.Vip}:{p.Port}/{p.Protocol} is already service '{other.Name}'");
            _rt.Store?.SaveService(s);
            _services.Add(s);
        }
        EnsureNamespace();
        _log.LogInformation("service {Name} added: {Vip} ports {Ports}, affinity {Affinity}{Selector}", s.Name, s.Vip,
            string.Join(' ', s.Ports), s.Affinity, s.Selector.Count > 0 ? ", selector " + Labels.Format(s.Selector) : "");
        Publish();
        return s;
    }

    public void Remove(string name)
    {
        lock (_gate)
        {
            int i = _services.FindIndex(s => s.Name == name);
            if (i < 0) throw new NotFoundException($"no service named '{name}'");
            _rt.Store?.DeleteService(name);
            _services.RemoveAt(i);
        }
        _log.LogInformation("service {Name} removed (its connections in the conntrack table go on until they end)", name);
        Publish();
    }

    public ServiceConfig AddBackend(string service, BackendRequest req)
    {
        var (ip, port) = StaticBackend.ParseAddress(req.Address);
        int weight = req.Weight ?? 1;
        if (weight is < 1 or > 1000) throw new InvalidRequestException($"weight: {weight} must be 1..1000 (drain a backend to stop sending it new connections)");
        var b = new StaticBackend(ip, port, weight);
        ServiceConfig updated;
        lock (_gate)
        {
            var s = Get(service);
            // Adding a backend that exists changes its weight (and ends a drain: it was added again to take connections).
            var backends = s.Backends.Where(x => x.Key != b.Key).Append(b).ToList();
            updated = s with { Backends = backends, Draining = s.Draining.Where(k => k != b.Key).ToList() };
            Replace(updated);
        }
        _log.LogInformation("service {Name}: backend {Backend} weight {Weight}", service, b.Key, weight);
        Publish();
        return updated;
    }

    public ServiceConfig RemoveBackend(string service, string address)
    {
        var (ip, port) = StaticBackend.ParseAddress(address);
        string key = port is null ? ip : $"{ip}:{port}";
        ServiceConfig updated;
        lock (_gate)
        {
            var s = Get(service);
            if (!s.Backends.Any(b => b.Key == key))
                throw new NotFoundException($"service '{service}' has no backend '{key}' added by address" +
                    (s.Selector.Count > 0 ? " (backends its selector chose leave when their labels or attachments do)" : ""));
            updated = s with { Backends = s.Backends.Where(b => b.Key != key).ToList(), Draining = s.Draining.Where(k => k != key).ToList() };
            Replace(updated);
        }
        _log.LogInformation("service {Name}: backend {Backend} removed", service, key);
        Publish();
        return updated;
    }

    /// <summary>Drains a backend (or, with <paramref name="drain"/> false, ends the drain): existing connections go on, new ones go elsewhere.</summary>
    public ServiceConfig Drain(string service, string address, bool drain)
    {
        var (ip, port) = StaticBackend.ParseAddress(address);
        string key = port is null ? ip : $"{ip}:{port}";
        ServiceConfig updated;
        lock (_gate)
        {
            var s = Get(service);
            var current = Resolve(s, _attachments.List());
            if (!current.Any(b => b.Key == key))
                throw new NotFoundException($"service '{service}' has no backend '{key}' (its backends: {(current.Length == 0 ? "none" : string.Join(", ", current.Select(b => b.Key)))})");
            var draining = s.Draining.Where(k => k != key).ToList();
            if (drain) draining.Add(key);
            updated = s with { Draining = draining };
            Replace(updated);
        }
        _log.LogInformation("service {Name}: backend {Backend} {What}", service, key, drain ? "draining (no new connections)" : "takes new connections again");
        Publish();
        return updated;
    }

    private void Replace(ServiceConfig s)
    {
        _rt.Store?.SaveService(s);
        int i = _services.FindIndex(x => x.Name == s.Name);
        _services[i] = s;
    }

    /// <summary>
    /// The backends of a service now: static ones, then attachments its selector matches (a static entry
    /// for the same address wins), each with where a health probe can run (the namespace holding its address).
    /// </summary>
    private ResolvedBackend[] Resolve(ServiceConfig s, Attachment[] attachments)
    {
        var byIp = new Dictionary<string, (string? Id, string Netns)>();
        foreach (var (_, p) in _rt.PortConfigs)
            if (p.Netns is { Length: > 0 } ns)
                foreach (var a in p.Addresses)
                    byIp.TryAdd(a.Split('/')[0], (null, ns));
        foreach (var a in attachments)
            if (a.Address is { } addr) byIp[addr.Split('/')[0]] = (a.Id, a.Netns);
        var pools = new List<Ipv4Pool>();
        foreach (var (_, cfg) in _rt.NetworkConfigs)
        {
            try { if (Ipv4Pool.Of(cfg.Subnet, cfg.Gateway) is { } p) pools.Add(p); } catch (ArgumentException) { }
        }

        var list = new List<ResolvedBackend>();
        var keys = new HashSet<string>();
        void Add(string ip, int? port, int weight, string source)
        {
            string key = port is null ? ip : $"{ip}:{port}";
            if (!keys.Add(key)) return;
            var holder = byIp.GetValueOrDefault(ip);
            uint a = Ipv4Pool.ToUInt(IPAddress.Parse(ip));
            list.Add(new ResolvedBackend(key, ip, port, weight, source, s.Draining.Contains(key), holder.Id, holder.Netns,
                pools.Any(p => p.Contains(a)), LabelOf(s.Name, key)));
        }
        foreach (var b in s.Backends) Add(b.Ip, b.Port, b.Weight, "static");
        if (s.Selector.Count > 0)
            foreach (var a in attachments)
                if (a.Address is { } addr && a.Labels is { } l && s.Selector.All(kv => l.TryGetValue(kv.Key, out var v) && v == kv.Value))
                    Add(addr.Split('/')[0], null, 1, "selector");
        list.Sort((x, y) => string.CompareOrdinal(x.Key, y.Key));
        return [.. list];
    }

    private int LabelOf(string service, string key)
    {
        if (!_labels.TryGetValue((service, key), out int label))
        {
            label = _nextLabel++;
            if (_nextLabel >= LabelBase + LabelSpan) _nextLabel = LabelBase + 1; // 16 M backends later: wraps (old connections are long gone)
            _labels[(service, key)] = label;
            _counters[label] = new BackendCounters();
        }
        return label;
    }

    /// <summary>
    /// Rebuilds every service's Maglev tables and publishes them to the datapath as one conntrack part;
    /// also tells the health checker which backends to probe. Called on every change (API, attachments, health).
    /// </summary>
    public void Publish()
    {
        lock (_gate)
        {
            var attachments = _attachments.List();
            var frontends = new List<NatFrontend>();
            var published = new Dictionary<string, ServiceState>();
            var probes = new List<HealthChecker.ProbeTarget>();
            foreach (var name in _sticky.Keys)
                if (!_services.Any(s => s.Name == name && s.Affinity == "client-ip")) _sticky.TryRemove(name, out _);
            foreach (var s in _services)
            {
                ClientAffinityTable? sticky = null;
                if (s.Affinity == "client-ip")
                {
                    // A service stored before the 1 s minimum was enforced may say 0 ("500ms" rounded down): 1 s then.
                    int timeout = Math.Max(1, s.AffinityTimeoutSeconds);
                    sticky = _sticky.GetOrAdd(s.Name, _ => new ClientAffinityTable(timeout));
                    sticky.TimeoutSeconds = timeout;
                }
                var backends = Resolve(s, attachments);
                var weights = new int[backends.Length];
                var tcp = s.Ports.FirstOrDefault(p => p.Protocol == "tcp");
                for (int i = 0; i < backends.Length; i++)
                {
                    var b = backends[i];
                    bool healthy = Health.IsUp(s.Name, b.Key);
                    weights[i] = b.Draining || !healthy ? 0 : b.Weight;
                    if (s.HealthCheck.Enabled && tcp is not null)
                        probes.Add(new HealthChecker.ProbeTarget(s.Name, b.Key, b.Ip, b.Port ?? tcp.TargetPort, Namespace.Name,
                            b.Netns is null && b.InSubnet ? $"no attachment or port holds {b.Ip} (its container is gone?)" : null, s.HealthCheck));
                }
                if (!s.HealthCheck.Enabled || tcp is null) Health.Forget(s.Name);
                int[] table = Maglev.Build(backends.Select(b => b.Key).ToArray(), weights, Maglev.DefaultSize);
                var slots = new int[backends.Length];
                foreach (int i in table) if (i >= 0) slots[i]++;
                published[s.Name] = new ServiceState(s, backends, slots, table.Length);
                uint vip = Ipv4Pool.ToUInt(IPAddress.Parse(s.Vip));
                foreach (var sp in s.Ports)
                {
                    var pb = new PickerBackend[backends.Length];
                    for (int i = 0; i < backends.Length; i++)
                    {
                        var b = backends[i];
                        int port = b.Port ?? sp.TargetPort;
                        pb[i] = new PickerBackend(b.Address, (ushort)port, b.Label,
                            $"maglev: backend {b.Ip}:{port}, {slots[i]} of {table.Length} slots{(s.Affinity == "client-ip" ? ", client-ip affinity" : "")}",
                            _counters[b.Label]);
                    }
                    frontends.Add(new NatFrontend
                    {
                        Name = s.Name, Kind = "lb", Proto = sp.ProtocolNumber, Address = vip, Port = (ushort)sp.Port,
                        Picker = new MaglevPicker(table, pb, s.Affinity == "client-ip", sticky),
                    });
                }
            }
            _published = published;
            PublishDns(frontends, attachments);
            _rt.Datapath.SetConntrackPart("services", frontends.Count > 0 ? new ConntrackPart(true, frontends) : ConntrackPart.None);
            Health.Sync(probes);
        }
    }

    private readonly HashSet<string> _resolvConfs = [];

    /// <summary>
    /// The gateway's port 53 (UDP and TCP) of every network the services namespace is on goes to the DNS
    /// server there; each plain-named namespace attached gets /etc/netns/NAME/resolv.conf pointing at its gateway
    /// (what `ip netns exec` bind-mounts over /etc/resolv.conf), removed again when it leaves.
    /// </summary>
    private void PublishDns(List<NatFrontend> frontends, Attachment[] attachments)
    {
        var mine = Namespace.Addresses;
        bool on = mine.Count > 0 && Dns.Listening;
        _dnsPublished = on;
        var wanted = new HashSet<string>();
        if (on)
        {
            foreach (var (net, addr) in mine)
            {
                if (_rt.NetworkConfig(net) is not { } cfg) continue;
                Ipv4Pool? pool = null;
                try { pool = Ipv4Pool.Of(cfg.Subnet, cfg.Gateway); } catch (ArgumentException) { }
                if (pool is not { } p) continue;
                uint target = Ipv4Pool.ToUInt(IPAddress.Parse(addr));
                foreach (byte proto in new[] { IpProtocols.Udp, IpProtocols.Tcp })
                    frontends.Add(new NatFrontend
                    {
                        Name = "dns-" + net, Kind = "dns", Proto = proto, Address = p.Gateway, Port = 53,
                        Picker = new FixedPicker(target, 53, DnsLabel, $"the switch's DNS server at {addr}"),
                    });
            }
            foreach (var a in attachments)
                if (a.ContainerId != ServiceNamespace.ContainerId && a.Gateway is { } gw && !a.Netns.Contains('/') && mine.ContainsKey(a.Network))
                {
                    wanted.Add(a.Netns);
                    WriteResolvConf(a.Netns, gw);
                }
        }
        foreach (var ns in _resolvConfs.Where(n => !wanted.Contains(n)).ToList())
        {
            _resolvConfs.Remove(ns);
            try
            {
                string f = $"/etc/netns/{ns}/resolv.conf";
                if (File.Exists(f) && File.ReadAllText(f).StartsWith(ResolvHeader, StringComparison.Ordinal)) File.Delete(f);
                if (Directory.Exists($"/etc/netns/{ns}") && !Directory.EnumerateFileSystemEntries($"/etc/netns/{ns}").Any()) Directory.Delete($"/etc/netns/{ns}");
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>The switch's DNS for an attachment (its gateway), when it serves the attachment's network.</summary>
    public AttachmentDnsView? DnsFor(Attachment a)
    {
        if (a.Gateway is null || !Dns.Listening || a.ContainerId == ServiceNamespace.ContainerId) return null;
        // Attaching to a network the services namespace is not on yet: it joins it within moments (EnsureNamespace).
        return List().Length == 0 ? null : new AttachmentDnsView([a.Gateway], [DnsServer.Domain]);
    }

    private const string ResolvHeader = "# written by vswitchd";

    private void WriteResolvConf(string netns, string gateway)
    {
        string text = $"{ResolvHeader} (the switch's DNS at the gateway: services and containers by name)\nnameserver {gateway}\nsearch {DnsServer.Domain}\n";
        string dir = $"/etc/netns/{netns}", f = dir + "/resolv.conf";
        try
        {
            // A file someone else wrote is theirs.
            if (File.Exists(f) && !File.ReadAllText(f).StartsWith(ResolvHeader, StringComparison.Ordinal)) return;
            Directory.CreateDirectory(dir);
            if (!File.Exists(f) || File.ReadAllText(f) != text) File.WriteAllText(f, text);
            _resolvConfs.Add(netns);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.LogWarning("cannot write {File}: {Error}", f, e.Message);
        }
    }

    /// <summary>Per backend label: connections in the conntrack table now, with their packets and bytes (both directions).</summary>
    public Dictionary<int, (long Connections, long Packets, long Bytes)> ConnectionCounts()
    {
        var counts = new Dictionary<int, (long, long, long)>();
        if (!_rt.Datapath.ConntrackConfig.Track) return counts;
        foreach (var e in _rt.Datapath.Conntrack.Snapshot(Environment.TickCount64, e => e.Label is >= LabelBase and < LabelBase + LabelSpan))
        {
            var (c, p, b) = counts.GetValueOrDefault(e.Label);
            counts[e.Label] = (c + 1, p + e.PacketsOrig + e.PacketsReply, b + e.BytesOrig + e.BytesReply);
        }
        return counts;
    }

    public ServiceView[] Views()
    {
        var counts = ConnectionCounts();
        Dictionary<string, ServiceState> published;
        ServiceConfig[] services;
        lock (_gate)
        {
            published = _published;
            services = [.. _services];
        }
        return services.Select(s => View(s, published.GetValueOrDefault(s.Name), counts)).ToArray();
    }

    public ServiceView View(string name) => Views().FirstOrDefault(v => v.Name == name) ?? throw new NotFoundException($"no service named '{name}'");

    private ServiceView View(ServiceConfig s, ServiceState? st, Dictionary<int, (long, long, long)> counts)
    {
        var backends = new List<BackendView>();
        if (st is not null)
            for (int i = 0; i < st.Backends.Length; i++)
            {
                var b = st.Backends[i];
                var (c, p, by) = counts.GetValueOrDefault(b.Label);
                var (health, detail) = Health.Describe(s.Name, b.Key, s.HealthCheck.Enabled && s.Ports.Any(x => x.Protocol == "tcp"));
                long picks = _counters.TryGetValue(b.Label, out var bc) ? Volatile.Read(ref bc.Picks) : 0;
                backends.Add(new BackendView(b.Key, b.Ip, b.Port, b.Weight, b.Source, b.Draining ? "draining" : "active", health, detail,
                    st.Slots[i] > 0, st.Slots[i], c, p, by, picks, b.AttachmentId));
            }
        var sticky = _sticky.GetValueOrDefault(s.Name);
        return new ServiceView(s.Name, s.Vip, s.Ports.Select(p => new ServicePortView(p.Port, p.Protocol, p.TargetPort)).ToArray(),
            s.Affinity, s.AffinityTimeoutSeconds, s.Selector, s.HealthCheck.View(), st?.TableSize ?? Maglev.DefaultSize, [.. backends])
        {
            AffinityClients = sticky?.Count,
            AffinityHits = sticky is null ? null : Volatile.Read(ref sticky.Hits),
        };
    }

    /// <summary>Service names and VIPs, for DNS.</summary>
    public IReadOnlyDictionary<string, string> Names()
    {
        lock (_gate) return _services.ToDictionary(s => s.Name, s => s.Vip);
    }
}
