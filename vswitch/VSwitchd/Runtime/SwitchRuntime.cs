using VSwitch.Core;
using VSwitch.Core.Ports;
using VSwitch.Core.Tables.Rules;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;
using VSwitchd.Config;

namespace VSwitchd.Runtime;

/// <summary>
/// The running switch: the datapath, its polling threads, and the I/O objects behind its ports.
/// Every change the operator makes goes through here: it is applied to the datapath, then
/// written to the state store, and only then acknowledged. On stop it removes every TAP it
/// created (unless persistent).
/// </summary>
public sealed partial class SwitchRuntime : IDisposable
{
    private readonly object _gate = new();
    private readonly List<DatapathThread> _threads = [];
    private readonly Dictionary<string, PortConfig> _portConfigs = [];
    private readonly Dictionary<string, NetworkConfig> _networkConfigs = [];
    private readonly ILogger _log;
    private Timer? _timer;
    private bool _running;
    private bool _disposed;

    public SwitchRuntime(DatapathOptions options, ILogger<SwitchRuntime> log, StateStore? store = null)
    {
        Options = options;
        _log = log;
        Store = store;
        Datapath = new Datapath(flowCacheCapacity: options.FlowCacheSize, flowIdleMs: options.FlowIdleMs);
    }

    public Datapath Datapath { get; }
    public DatapathOptions Options { get; }
    public StateStore? Store { get; }
    public DateTime StartedAt { get; } = DateTime.UtcNow;

    public IReadOnlyDictionary<string, PortConfig> PortConfigs
    {
        get { lock (_gate) return new Dictionary<string, PortConfig>(_portConfigs); }
    }

    /// <summary>
    /// Builds the switch at start: from the state store when it holds a configuration, otherwise
    /// from the config file (which then seeds the store). On any failure undoes everything and throws.
    /// </summary>
    public string Apply(VSwitchConfig cfg)
    {
        try
        {
            if (Store is { IsSeeded: true })
            {
                foreach (var n in Store.Networks()) AddNetwork(n, persist: false);
                foreach (var p in Store.Ports()) AddPort(p, persist: false);
                foreach (var r in Store.Rules())
                {
                    try { AddRule(r, persist: false); }
                    catch (RuleSyntaxException e) { _log.LogWarning("stored rule '{Rule}' no longer applies: {Error}", r, e.Message); }
                }
                return $"restored from {Store.Path}";
            }
            foreach (var n in cfg.Networks) AddNetwork(n);
            foreach (var p in cfg.Ports) AddPort(p);
            Store?.MarkSeeded();
            return Store is null ? "from configuration" : $"from configuration, saved to {Store.Path}";
        }
        catch
        {
            RemoveAllPorts(persist: false);
            throw;
        }
    }

    public Network AddNetwork(NetworkConfig n, bool persist = true)
    {
        lock (_gate)
        {
            var net = Datapath.AddNetwork(n.Name, (ushort)n.Vlan, n.Vni is null ? null : (uint)n.Vni, n.MacAgingSeconds * 1000L);
            _networkConfigs[n.Name] = n;
            if (persist) Store?.SaveNetwork(n);
            return net;
        }
    }

    public void RemoveNetwork(string name)
    {
        lock (_gate)
        {
            Datapath.RemoveNetwork(name);
            _networkConfigs.Remove(name);
            Store?.DeleteNetwork(name);
        }
    }

    /// <summary>Creates the port's device (TAP) or attaches its interface (AF_PACKET) and joins it to its network.</summary>
    public SwitchPort AddPort(PortConfig p, bool persist = true)
    {
        lock (_gate)
        {
            if (Datapath.Topology.PortByName(p.Name) is not null) throw new ArgumentException($"port '{p.Name}' already exists");
            var net = Datapath.Topology.NetworkByName(p.Network ?? "") ?? throw new KeyNotFoundException($"no network named '{p.Network}'");
            IPort io = p.Type switch
            {
                "tap" => TapPort.Create(new TapOptions
                {
                    Name = p.Name,
                    Mac = p.Mac is null ? null : MacAddress.Parse(p.Mac),
                    Mtu = p.Mtu,
                    Netns = p.Netns,
                    Addresses = p.Addresses,
                    Gateway = p.Gateway,
                    Persistent = p.Persistent,
                }),
                "afpacket" => AfPacketPort.Open(new AfPacketOptions { Interface = p.Device ?? p.Name }),
                _ => throw new ArgumentException($"'{p.Type}' is not a port type (tap or afpacket)"),
            };
            try
            {
                var mode = p.VlanMode == "trunk" ? VlanMode.Trunk : VlanMode.Access;
                var trunks = p.Trunks.Select(t => (ushort)t).ToArray();
                var port = Datapath.AddPort(id => new SwitchPort(id, io, net, mode, p.Vlan is null ? null : (ushort)p.Vlan, trunks, (ushort)p.NativeVlan));
                _portConfigs[p.Name] = p;
                if (persist) Store?.SavePort(p);
                _log.LogInformation("port {Port} ({Type}) joined network {Network} as port {Id}", p.Name, p.Type, net.Name, port.Id);
                return port;
            }
            catch
            {
                io.Dispose();
                throw;
            }
        }
    }

    /// <summary>Detaches a port, waits until no datapath thread touches it, then closes it (a TAP disappears).</summary>
    public void RemovePort(string name, bool persist = true)
    {
        lock (_gate)
        {
            var port = Datapath.RemovePort(name);
            _portConfigs.Remove(name);
            if (persist) Store?.DeletePort(name);
            WaitQuiescent(Datapath.Topology.Version);
            port.Io.Dispose();
            _log.LogInformation("port {Port} removed", name);
        }
    }

    public int? PortId(string name) => Datapath.Topology.PortByName(name)?.Id;
    public string? PortName(int id) => Datapath.Topology.Port(id)?.Name;

    /// <summary>Adds (or replaces) a rule given in ovs-ofctl syntax; throws <see cref="RuleSyntaxException"/> naming the bad token.</summary>
    public Rule AddRule(string text, bool persist = true)
    {
        lock (_gate)
        {
            var rule = RuleParser.ParseRule(text, PortId);
            Datapath.Rules.Add(rule, Environment.TickCount64);
            if (persist) Store?.SaveRule(rule.Priority, rule.Match.Format(PortName), rule.Format(PortName));
            return rule;
        }
    }

    /// <summary>Deletes the rules a match selects (strict: exactly that match); returns them.</summary>
    public List<Rule> DeleteRules(string matchText, bool strict)
    {
        lock (_gate)
        {
            var parsed = RuleParser.ParseMatch(matchText, PortId);
            var removed = Datapath.Rules.Delete(parsed.Match, parsed.HasPriority ? parsed.Priority : null, strict);
            foreach (var r in removed) Store?.DeleteRule(r.Priority, r.Match.Format(PortName));
            return removed;
        }
    }

    private void WaitQuiescent(long version)
    {
        if (!_running) return;
        var deadline = DateTime.UtcNow.AddSeconds(2);
        foreach (var t in _threads)
            while (t.SeenVersion < version && DateTime.UtcNow < deadline) Thread.Sleep(1);
    }

    public void Start()
    {
        _running = true;
        for (int i = 0; i < Options.Threads; i++)
        {
            var t = new DatapathThread(Datapath, Options, i);
            _threads.Add(t);
            t.Start();
        }
        // Aging and rule timeouts run on the control side once a second; the datapath only compares times.
        _timer = new Timer(_ => Tick(), null, 1000, 1000);
        _log.LogInformation("datapath started: {Threads} thread(s), {Mode}", Options.Threads, Options.BusyPoll ? "busy polling" : "epoll");
    }

    private void Tick()
    {
        long now = Environment.TickCount64;
        Datapath.MacTable.Expire(now);
        foreach (var r in Datapath.Rules.Expired(now))
        {
            lock (_gate)
            {
                if (Datapath.Rules.Remove(r)) Store?.DeleteRule(r.Priority, r.Match.Format(PortName));
            }
        }
        foreach (var t in _threads)
            if (t.Failure is { } e) _log.LogError(e, "datapath thread failed");
    }

    public IReadOnlyList<DatapathThread> Threads => _threads;

    private void RemoveAllPorts(bool persist)
    {
        foreach (var p in Datapath.Topology.Ports.ToArray())
        {
            try { RemovePort(p.Name, persist); }
            catch (Exception e) { _log.LogWarning("removing port {Port}: {Error}", p.Name, e.Message); }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
        }
        _timer?.Dispose();
        foreach (var t in _threads) t.Stop();
        _running = false;
        // Stopping is not an operator's removal: the stored configuration keeps the ports.
        RemoveAllPorts(persist: false);
        foreach (var t in _threads) t.Dispose();
        _threads.Clear();
    }
}
