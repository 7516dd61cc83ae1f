using VSwitch.Core;
using VSwitch.Core.Ports;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;
using VSwitchd.Config;

namespace VSwitchd.Runtime;

/// <summary>
/// The running switch: the datapath, its polling threads, and the I/O objects behind its ports.
/// Creates ports from configuration, adds and removes them at run time, ages the MAC table, and
/// on stop removes every TAP it created (unless persistent).
/// </summary>
public sealed class SwitchRuntime : IDisposable
{
    private readonly object _gate = new();
    private readonly List<DatapathThread> _threads = [];
    private readonly Dictionary<string, PortConfig> _portConfigs = [];
    private readonly ILogger _log;
    private Timer? _aging;

    public SwitchRuntime(DatapathOptions options, ILogger<SwitchRuntime> log)
    {
        Options = options;
        _log = log;
        Datapath = new Datapath();
    }

    public Datapath Datapath { get; }
    public DatapathOptions Options { get; }
    public DateTime StartedAt { get; } = DateTime.UtcNow;

    public IReadOnlyDictionary<string, PortConfig> PortConfigs
    {
        get { lock (_gate) return new Dictionary<string, PortConfig>(_portConfigs); }
    }

    /// <summary>Builds networks and ports from a validated configuration; on any failure undoes everything and throws.</summary>
    public void Apply(VSwitchConfig cfg)
    {
        try
        {
            foreach (var n in cfg.Networks) AddNetwork(n);
            foreach (var p in cfg.Ports) AddPort(p);
        }
        catch
        {
            RemoveAllPorts();
            throw;
        }
    }

    public Network AddNetwork(NetworkConfig n) =>
        Datapath.AddNetwork(n.Name, (ushort)n.Vlan, n.Vni is null ? null : (uint)n.Vni, n.MacAgingSeconds * 1000L);

    /// <summary>Creates the port's device (TAP) or attaches its interface (AF_PACKET) and joins it to its network.</summary>
    public SwitchPort AddPort(PortConfig p)
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
    public void RemovePort(string name)
    {
        lock (_gate)
        {
            var port = Datapath.RemovePort(name);
            _portConfigs.Remove(name);
            WaitQuiescent(Datapath.Topology.Version);
            port.Io.Dispose();
            _log.LogInformation("port {Port} removed", name);
        }
    }

    private bool _running;

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
        // Aging runs on the control side once a second: the datapath only compares expiry times.
        _aging = new Timer(_ => Datapath.MacTable.Expire(Environment.TickCount64), null, 1000, 1000);
        _log.LogInformation("datapath started: {Threads} thread(s), {Mode}", Options.Threads, Options.BusyPoll ? "busy polling" : "epoll");
    }

    public IReadOnlyList<DatapathThread> Threads => _threads;

    private void RemoveAllPorts()
    {
        foreach (var p in Datapath.Topology.Ports.ToArray())
        {
            try { RemovePort(p.Name); }
            catch (Exception e) { _log.LogWarning("removing port {Port}: {Error}", p.Name, e.Message); }
        }
    }

    public void Dispose()
    {
        _aging?.Dispose();
        foreach (var t in _threads) t.Stop();
        _running = false;
        RemoveAllPorts();
        foreach (var t in _threads) t.Dispose();
        _threads.Clear();
    }
}
