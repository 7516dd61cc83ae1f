using System.Globalization;
using System.Net;
using VSwitch.Api;
using VSwitch.Core.Flow;
using VSwitch.Core.Tables.Conntrack;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;
using VSwitchd.Config;
using VSwitchd.NorthSouth;
using VSwitch.Core.Ports.Linux;

namespace VSwitchd.Runtime;

/// <summary>
/// North-south: host ports (the host's own interface on a network, a TAP left in the daemon's
/// namespace), masquerade of connections leaving through the host, and published ports. The datapath
/// gets one <see cref="VSwitch.Core.Topology.NorthSouth"/> snapshot and the conntrack part "nat"; the
/// host kernel gets what <see cref="HostNat"/> sets up. See README, "North-south".
/// </summary>
public sealed partial class SwitchRuntime
{
    /// <summary>A network's host port as running.</summary>
    private sealed class HostPortState
    {
        public required string Network { get; init; }
        public required string Device { get; init; }
        public required uint Address { get; init; }
        public required int PrefixLength { get; init; }
        public bool Masquerade { get; set; }
        public required HostNat Nat { get; init; }
    }

    /// <summary>A published port as running: its picker (the one backend) and its counters.</summary>
    private sealed class Publish
    {
        public required string Id { get; init; }
        public required PublishRequest Request { get; init; }
        public required string Network { get; init; }
        public required byte Proto { get; init; }
        public required ushort HostPort { get; init; }
        public uint HostIp { get; init; }
        public required PublishPicker Picker { get; init; }
        public string ProtoName => Proto == IpProtocols.Tcp ? "tcp" : "udp";
    }

    /// <summary>A published port's backend: always the one container; counts the connections it gave.</summary>
    private sealed class PublishPicker(uint address, ushort port, int label, string note) : IBackendPicker
    {
        public long Connections;
        public int Label { get; } = label;
        public uint Address { get; } = address;
        public ushort Port { get; } = port;

        public bool TryPick(in ConnTuple orig, out UInt128 address, out ushort port, out int label, out string? traceNote)
        {
            Interlocked.Increment(ref Connections);
            address = Address;
            port = Port;
            label = Label;
            traceNote = note;
            return true;
        }
    }

    private readonly Dictionary<string, HostPortState> _hostPorts = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Publish> _publishes = new(StringComparer.Ordinal);
    private HostRoutes _hostRoutes = HostRoutes.Empty;
    private int _nextPublishLabel = 0x5000_0000;

    /// <summary>The host port's device name for a network: vsh- and the name, cut to an interface name's 15 characters.</summary>
    public static string HostPortDevice(string network) => ("vsh-" + network)[..Math.Min(15, 4 + network.Length)];

    /// <summary>The host's address on a network: as configured, else the subnet's last host address.</summary>
    private static (uint Address, int Prefix) HostAddressOf(NetworkConfig n)
    {
        var subnet = IPNetwork.Parse(n.Subnet!);
        uint baseAddr = HostRoutes.ToUInt(subnet.BaseAddress);
        int len = subnet.PrefixLength;
        if (n.HostAddress is not null) return (HostRoutes.ToUInt(IPAddress.Parse(n.HostAddress)), len);
        uint broadcast = baseAddr | (len == 0 ? uint.MaxValue : ~(uint.MaxValue << (32 - len)));
        return (broadcast - 1, len);
    }

    /// <summary>Creates the network's host port and its host-side set-up (called under the gate, after the network exists).</summary>
    private void StartHostPort(NetworkConfig n)
    {
        string dev = HostPortDevice(n.Name);
        var (addr, len) = HostAddressOf(n);
        var net = Datapath.Topology.NetworkByName(n.Name)!;
        if (net.Router is { } r && r.Address == addr) throw new InvalidRequestException($"hostAddress: {AddressFormat.IPv4(addr)} is the gateway's address");
        if (_portConfigs.ContainsKey(dev) || Datapath.Topology.PortByName(dev) is not null)
            throw new ConflictException($"host port '{dev}' of network '{n.Name}': a port of that name exists");
        // A hitless restart's successor is handed the device itself (it exists, and is ours).
        if (Adopting is null && VSwitch.Core.Ports.Linux.LinkIoctl.LinkExists(dev))
            throw new ConflictException($"host port '{dev}' of network '{n.Name}': the host already has an interface of that name");
        AddPort(new PortConfig { Name = dev, Type = "tap", Network = n.Name, Addresses = [$"{AddressFormat.IPv4(addr)}/{len}"] }, persist: false);
        var state = new HostPortState
        {
            Network = n.Name, Device = dev, Address = addr, PrefixLength = len, Masquerade = n.Masquerade ?? true,
            Nat = new HostNat(dev, net.Router!.Address, _log),
        };
        try { state.Nat.Setup(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            RemovePort(dev, persist: false);
            throw new InvalidRequestException($"host port '{dev}': setting up the host failed: {e.Message}", e);
        }
        _hostPorts[n.Name] = state;
        _log.LogInformation("host port {Device} on network {Network}: the host is {Address}/{Len} there, masquerade {Masquerade}",
            dev, n.Name, AddressFormat.IPv4(addr), len, state.Masquerade ? "on" : "off");
        RefreshHostRoutes(force: true);
    }

    private void StopHostPort(string network)
    {
        if (!_hostPorts.Remove(network, out var state)) return;
        try { state.Nat.Teardown(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { _log.LogWarning("host port {Device}: undoing the host set-up: {Error}", state.Device, e.Message); }
        if (Datapath.Topology.PortByName(state.Device) is not null) RemovePort(state.Device, persist: false);
        PublishNorthSouth();
    }

    /// <summary>Whether a port is a network's host port (made and removed with the network's setting, not by port del).</summary>
    private bool IsHostPort(string port) => _hostPorts.Values.Any(h => h.Device == port);

    /// <summary>PATCH /v1/networks/{name}: turns the host port on or off, changes its address or masquerade.</summary>
    public NetworkView SetNetworkSettings(string name, NetworkSettingsRequest body)
    {
        lock (_gate)
        {
            if (Datapath.Topology.NetworkByName(name) is null || !_networkConfigs.TryGetValue(name, out var cfg)) throw NoNetwork(name);
            var next = new NetworkConfig
            {
                Name = cfg.Name, Vlan = cfg.Vlan, Vni = cfg.Vni, MacAgingSeconds = cfg.MacAgingSeconds, Subnet = cfg.Subnet, Gateway = cfg.Gateway,
                Subnet6 = cfg.Subnet6, Gateway6 = cfg.Gateway6, RouterMac = cfg.RouterMac, Vteps = cfg.Vteps, AcceptUnknownVteps = cfg.AcceptUnknownVteps,
                Mtu = cfg.Mtu, HostPort = body.HostPort ?? cfg.HostPort, HostAddress = body.HostAddress ?? cfg.HostAddress,
                Masquerade = body.Masquerade ?? cfg.Masquerade,
            };
            if (!next.HostPort) { next.HostAddress = null; next.Masquerade = body.Masquerade == true ? true : null; }
            if (VSwitchConfig.NorthSouthError(next) is { } why) throw new InvalidRequestException(why);
            if (!next.HostPort && _publishes.Values.Any(p => p.Network == name))
                throw new ConflictException($"network '{name}' has published ports: remove them first (vsctl publish ls)");
            bool had = _hostPorts.ContainsKey(name);
            bool moved = had && (next.HostAddress ?? "") != (cfg.HostAddress ?? "");
            if (had && (!next.HostPort || moved)) StopHostPort(name);
            _networkConfigs[name] = next;
            try
            {
                if (next.HostPort && !_hostPorts.ContainsKey(name)) StartHostPort(next);
                else if (_hostPorts.TryGetValue(name, out var hp)) hp.Masquerade = next.Masquerade ?? true;
            }
            catch
            {
                _networkConfigs[name] = cfg;
                throw;
            }
            PublishNorthSouth();
            Store?.SaveNetwork(next);
            return GetNetwork(name);
        }
    }

    /// <summary>
    /// Publishes the datapath's north-south snapshot and conntrack part from the host ports and published
    /// ports, and brings the host's rules and routes in line with them. Called under the gate.
    /// </summary>
    private void PublishNorthSouth()
    {
        var topo = Datapath.Topology;
        var egress = new Dictionary<ushort, HostEgress>();
        foreach (var h in _hostPorts.Values)
            if (topo.NetworkByName(h.Network) is { } net && topo.PortByName(h.Device) is { } port)
                egress[net.Id] = new HostEgress(port.Id, h.Address, h.Masquerade);
        var frontends = new List<NatFrontend>();
        foreach (var p in _publishes.Values)
            foreach (uint a in p.HostIp != 0 ? [p.HostIp] : _hostRoutes.Addresses)
                frontends.Add(new NatFrontend { Name = p.Id, Kind = "publish", Proto = p.Proto, Address = a, Port = p.HostPort, Picker = p.Picker });
        bool masquerade = _hostPorts.Values.Any(h => h.Masquerade);
        // Tracking first: a masquerading flow decided before it would have no ct_state to commit from.
        Datapath.SetConntrackPart("nat", masquerade || frontends.Count > 0 ? new ConntrackPart(true, frontends) : ConntrackPart.None);
        Datapath.SetNorthSouth(egress.Count == 0 ? VSwitch.Core.Topology.NorthSouth.None : new VSwitch.Core.Topology.NorthSouth(egress, _hostRoutes));
        foreach (var h in _hostPorts.Values)
        {
            var rules = new List<string>();
            if (h.Masquerade)
            {
                rules.Add(HostNat.MasqueradeSelector("tcp", VSwitch.Core.Topology.NorthSouth.DefaultPortLow, VSwitch.Core.Topology.NorthSouth.DefaultPortHigh));
                rules.Add(HostNat.MasqueradeSelector("udp", VSwitch.Core.Topology.NorthSouth.DefaultPortLow, VSwitch.Core.Topology.NorthSouth.DefaultPortHigh));
            }
            foreach (var p in _publishes.Values.Where(p => p.Network == h.Network))
                rules.Add(HostNat.PublishSelector(p.ProtoName, p.HostPort, p.HostIp == 0 ? null : AddressFormat.IPv4(p.HostIp)));
            try
            {
                h.Nat.SyncRoutes(_hostRoutes.Addresses);
                h.Nat.SyncRules(rules);
            }
            catch (IOException e) { _log.LogWarning("host port {Device}: host rules and routes: {Error}", h.Device, e.Message); }
        }
    }

    /// <summary>Reads the host's routes again (every few seconds while a host port exists); publishes when they changed.</summary>
    private void RefreshHostRoutes(bool force = false)
    {
        lock (_gate)
        {
            if (_hostPorts.Count == 0) return;
            HostRoutes fresh;
            try { fresh = HostRoutes.Read(_hostPorts.Values.Select(h => h.Device).ToHashSet()); }
            catch (Exception e) when (e is IOException or System.Text.Json.JsonException or PortException)
            {
                _log.LogWarning("reading the host's routes: {Error}", e.Message);
                return;
            }
            if (!force && fresh.Equals(_hostRoutes)) return;
            _hostRoutes = fresh;
            PublishNorthSouth();
        }
    }

    /// <summary>POST /v1/publish: connections to the host's address and port reach a container's IP:PORT.</summary>
    public PublishView AddPublish(PublishRequest req, bool persist = true)
    {
        lock (_gate)
        {
            string network = req.Network ?? throw new InvalidRequestException("network: missing");
            if (Datapath.Topology.NetworkByName(network) is not { } net) throw NoNetwork(network);
            if (!_hostPorts.ContainsKey(network))
                throw new InvalidRequestException($"network '{network}' has no host port: vsctl network host-port {network} on");
            string protoName = (req.Proto ?? "tcp").ToLowerInvariant();
            byte proto = protoName switch
            {
                "tcp" => IpProtocols.Tcp,
                "udp" => IpProtocols.Udp,
                _ => throw new InvalidRequestException($"proto: '{req.Proto}' is not tcp or udp"),
            };
            if (req.HostPort is not { } hostPort || hostPort is < 1 or > 65535) throw new InvalidRequestException($"hostPort: '{req.HostPort}' is not a port (1..65535)");
            if (hostPort is >= VSwitch.Core.Topology.NorthSouth.DefaultPortLow and <= VSwitch.Core.Topology.NorthSouth.DefaultPortHigh)
                throw new InvalidRequestException($"hostPort: {hostPort} is in the masquerade's port range ({VSwitch.Core.Topology.NorthSouth.DefaultPortLow}-{VSwitch.Core.Topology.NorthSouth.DefaultPortHigh})");
            var (toAddr, toPort) = ParseEndpoint(req.To);
            if (net.Router is not { } r || !r.OnLink(toAddr))
                throw new InvalidRequestException($"to: {req.To} is not in network '{network}'s subnet");
            uint hostIp = req.HostIp is null ? 0 : ParseIPv4(req.HostIp, "hostIp");
            string id = $"{(req.HostIp ?? "*")}:{hostPort}/{protoName}";
            foreach (var p in _publishes.Values)
                if (p.Proto == proto && p.HostPort == hostPort && (p.HostIp == 0 || hostIp == 0 || p.HostIp == hostIp))
                    throw new ConflictException($"{protoName} port {hostPort} is already published ({p.Id} to {p.Request.To})");
            int label = Interlocked.Increment(ref _nextPublishLabel);
            var pub = new Publish
            {
                Id = id, Request = req with { Proto = protoName }, Network = network, Proto = proto, HostPort = (ushort)hostPort, HostIp = hostIp,
                Picker = new PublishPicker(toAddr, toPort, label, $"published port {id} to {req.To}"),
            };
            _publishes[id] = pub;
            PublishNorthSouth();
            if (persist) Store?.SavePublish(id, pub.Request);
            _log.LogInformation("published {Id} to {To} on network {Network}", id, req.To, network);
            return PublishView(pub, ActiveByLabel());
        }
    }

    public void RemovePublish(string id)
    {
        lock (_gate)
        {
            if (!_publishes.Remove(id)) throw new NotFoundException($"no published port '{id}' (vsctl publish ls)");
            PublishNorthSouth();
            Store?.DeletePublish(id);
        }
    }

    public PublishView[] ListPublishes()
    {
        lock (_gate)
        {
            var active = ActiveByLabel();
            return _publishes.Values.OrderBy(p => p.HostPort).ThenBy(p => p.Id, StringComparer.Ordinal).Select(p => PublishView(p, active)).ToArray();
        }
    }

    private PublishView PublishView(Publish p, Dictionary<int, long> active) =>
        new(p.Id, p.Network, p.ProtoName, p.HostPort, p.Request.HostIp, p.Request.To ?? "",
            (p.HostIp != 0 ? [p.HostIp] : _hostRoutes.Addresses).Select(AddressFormat.IPv4).ToArray(),
            Interlocked.Read(ref p.Picker.Connections), active.GetValueOrDefault(p.Picker.Label));

    /// <summary>Open connections per label (published ports' entries), from one read of the conntrack table.</summary>
    private Dictionary<int, long> ActiveByLabel()
    {
        var d = new Dictionary<int, long>();
        if (_publishes.Count == 0) return d;
        foreach (var e in Datapath.Conntrack.Snapshot(Environment.TickCount64, e => (e.Flags & ConnFlags.DstNat) != 0))
            d[e.Label] = d.GetValueOrDefault(e.Label) + 1;
        return d;
    }

    private static (uint Address, ushort Port) ParseEndpoint(string? s)
    {
        int colon = s?.LastIndexOf(':') ?? -1;
        if (s is null || colon < 0 || !IPAddress.TryParse(s.AsSpan(0, colon), out var a) || a.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork
            || !ushort.TryParse(s.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out ushort port) || port == 0)
            throw new InvalidRequestException($"to: '{s}' is not IPv4-ADDRESS:PORT (like 10.1.0.5:80)");
        return (HostRoutes.ToUInt(a), port);
    }

    /// <summary>The host ports as the API shows them.</summary>
    public HostPortView[] HostPortViews()
    {
        lock (_gate) return _hostPorts.Values.OrderBy(h => h.Network, StringComparer.Ordinal).Select(HostPortViewOf).ToArray();
    }

    private HostPortView? HostPortViewOf(string network)
    {
        lock (_gate) return _hostPorts.TryGetValue(network, out var h) ? HostPortViewOf(h) : null;
    }

    private HostPortView HostPortViewOf(HostPortState h)
    {
        var port = Datapath.Topology.PortByName(h.Device);
        return new HostPortView(h.Device, $"{AddressFormat.IPv4(h.Address)}/{h.PrefixLength}", h.Masquerade, port?.Id,
            port is null ? "down" : "up");
    }

    /// <summary>Masquerade and published ports' counters for /v1/stats and /metrics; null without host ports.</summary>
    public NorthSouthStatsView? NorthSouthStats()
    {
        lock (_gate)
        {
            if (_hostPorts.Count == 0 && _publishes.Count == 0) return null;
            var table = Datapath.Conntrack;
            long active = table.Snapshot(Environment.TickCount64, e => (e.Flags & (ConnFlags.SrcNat | ConnFlags.DstNat)) == ConnFlags.SrcNat).Count;
            long exhausted = Datapath.ReadDropCounters()[(int)DropReason.NatPortsExhausted];
            return new NorthSouthStatsView(Interlocked.Read(ref table.Masqueraded), active, exhausted, ListPublishes(), HostPortViews());
        }
    }

    /// <summary>At start (from the state store): the published ports, once networks and their host ports exist.</summary>
    private void RestorePublishes()
    {
        if (Store is null) return;
        foreach (var p in Store.Publishes())
        {
            try { AddPublish(p, persist: false); }
            catch (SwitchRuntimeException e) { _log.LogWarning("stored published port {Port}/{Proto} no longer applies: {Error}", p.HostPort, p.Proto, e.Message); }
        }
    }

    /// <summary>On stop: every host port's host-side set-up undone (the TAPs go with the ports).</summary>
    private void StopNorthSouth()
    {
        lock (_gate)
        {
            foreach (var h in _hostPorts.Values)
            {
                try { h.Nat.Teardown(); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { _log.LogWarning("host port {Device}: undoing the host set-up: {Error}", h.Device, e.Message); }
            }
            _hostPorts.Clear();
        }
    }
}
