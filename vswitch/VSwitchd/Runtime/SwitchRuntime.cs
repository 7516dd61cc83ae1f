using System.Text.Json;
using VSwitch.Api;
using VSwitch.Core;
using VSwitch.Core.Ports;
using VSwitch.Core.Ports.Linux;
using VSwitch.Core.Tables;
using VSwitch.Core.Tables.Rules;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;
using VSwitchd.Config;
using VSwitchd.Host;

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
    // Whether the datapath threads were started (and not paused for a hand-over); no longer what
    // WaitQuiescent looks at: it asks each thread whether it passed its quiescent point or exited.
    private bool _running;
    private bool _disposed;

    public SwitchRuntime(DatapathOptions options, ILogger<SwitchRuntime> log, StateStore? store = null, LimitsConfig? limits = null)
    {
        Options = options;
        _log = log;
        Store = store;
        Limits = limits ?? new LimitsConfig();
        Datapath = new Datapath(new MacTable(Limits.MacTable, Limits.MacPerPort), flowCacheCapacity: options.FlowCacheSize, flowIdleMs: options.FlowIdleMs)
        {
            ConntrackCapacity = Limits.Conntrack,
        };
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
    public string Apply(VSwitchConfig cfg, string? configPath = null, bool configWins = false)
    {
        try
        {
            bool fromFile = Store is not { IsSeeded: true } || configWins && configPath is not null;
            if (fromFile && configPath is not null && cfg.Validate() is { Count: > 0 } missing)
                throw new ConfigException($"{configPath}: " + string.Join("; ", missing));
            if (Store is { IsSeeded: true } && configPath is not null && configWins)
            {
                // --config-wins: what a config file can set (networks, ports, the overlay) comes from the
                // file; what the API added on top (rules, routes, neighbours, attachments) is kept and
                // re-applied where it still fits.
                Store.ReplaceConfiguration(cfg.Networks, cfg.Ports, cfg.Overlay is null ? null : JsonSerializer.Serialize(cfg.Overlay, OverlayJson));
                _log.LogWarning("--config-wins: the networks, ports and overlay stored in {State} were replaced by {Config}", Store.Path, configPath);
            }
            else if (Store is { IsSeeded: true } && configPath is not null)
            {
                var diff = ConfigDiff.Between(cfg, Store.Networks(), Store.Ports(), StoredOverlay());
                if (diff.Count == 0)
                    _log.LogInformation("state database {State} holds the configuration; {Config} says the same", Store.Path, configPath);
                else
                {
                    _log.LogWarning("state database {State} holds a configuration, and it is what runs; {Config} differs and was NOT applied ({Count} difference(s)). "
                        + "Restart with --config-wins to apply the file.", Store.Path, configPath, diff.Count);
                    foreach (var d in diff) _log.LogWarning("  {Difference}", d);
                }
            }
            if (Store is { IsSeeded: true })
            {
                var storedOverlay = StoredOverlay();
                _underlayIPv6 = OverlayConfig.IsIPv6(storedOverlay);
                foreach (var n in Store.Networks()) AddNetwork(n, persist: false);
                if (storedOverlay is { } overlay) StartOverlay(overlay, persist: false);
                foreach (var p in Store.Ports())
                {
                    // One port whose namespace or interface is missing (a reboot drops named namespaces)
                    // never keeps the switch down: it is kept down and comes back with its device.
                    try { AddPort(p, persist: false); }
                    catch (Exception e) when (e is SwitchRuntimeException or PortException or IOException or ArgumentException)
                    {
                        KeepDown(p, e.Message);
                    }
                }
                foreach (var (prefix, via, dev) in Store.Routes())
                {
                    try { AddRoute(prefix, via, dev, persist: false); }
                    catch (SwitchRuntimeException e) { _log.LogWarning("stored route {Prefix} no longer applies: {Error}", prefix, e.Message); }
                }
                foreach (var (a, b) in Store.Connections())
                {
                    try { ConnectNetworks(a, b, persist: false); }
                    catch (SwitchRuntimeException e) { _log.LogWarning("stored connection {A} <-> {B} no longer applies: {Error}", a, b, e.Message); }
                }
                foreach (var (network, ip, mac) in Store.StaticNeighbors())
                {
                    try { AddStaticNeighbor(network, ip, mac, persist: false); }
                    catch (SwitchRuntimeException e) { _log.LogWarning("stored neighbour {Ip} no longer applies: {Error}", ip, e.Message); }
                }
                foreach (var (network, mac, vtep) in Store.RemoteMacs())
                {
                    try { AddRemoteMac(network, mac, vtep, persist: false); }
                    catch (SwitchRuntimeException e)
                    { _log.LogWarning("stored remote MAC {Mac} no longer applies: {Error}", mac, e.Message); }
                }
                foreach (var r in Store.Rules())
                {
                    try { InstallRule(r, persist: false); }
                    catch (RuleSyntaxException e) { _log.LogWarning("stored rule '{Rule}' no longer applies: {Error}", r, e.Message); }
                }
                RestorePublishes();
                RestoreMirrors();
                RestoreIpfix();
                return configWins && configPath is not null ? $"from {configPath} (--config-wins), saved to {Store.Path}" : $"restored from {Store.Path}";
            }
            _underlayIPv6 = OverlayConfig.IsIPv6(cfg.Overlay);
            foreach (var n in cfg.Networks) AddNetwork(n);
            if (cfg.Overlay is not null) StartOverlay(cfg.Overlay);
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

    /// <summary>The MTU a network's ports get: as configured, else 1500, or 1450 on a VXLAN network (50 bytes of encapsulation on a 1500 underlay).</summary>
    public int NetworkMtu(NetworkConfig n) => NetworkMtu(n, _underlayIPv6);

    /// <summary>As <see cref="NetworkMtu(NetworkConfig)"/> for a given underlay: 1450 over IPv4, 1430 over IPv6 (70 bytes of encapsulation).</summary>
    public static int NetworkMtu(NetworkConfig n, bool ipv6Underlay) =>
        n.Mtu ?? (n.Vni is null ? 1500 : 1500 - VSwitch.Overlay.Wire.VxlanHeader.Overhead(ipv6Underlay));

    // The overlay's family, known before the networks are added (they take their default MTU from it) and
    // kept when the endpoint moves (a network's MTU is given to its TAPs once: give --mtu to change it).
    private bool _underlayIPv6;

    public Network AddNetwork(NetworkConfig n, bool persist = true)
    {
        lock (_gate)
        {
            if (persist) EnsureNetworkRoom();
            uint gateway = 0;
            int prefix = 0;
            if (n.Subnet is not null)
            {
                var subnet = System.Net.IPNetwork.Parse(n.Subnet);
                prefix = subnet.PrefixLength;
                // A network with a subnet is routed, as a Docker network is: the gateway is the
                // router's address there, by default the subnet's first host address.
                var gw = n.Gateway is not null ? System.Net.IPAddress.Parse(n.Gateway) : FirstHost(subnet);
                gateway = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(gw.GetAddressBytes());
            }
            var (gateway6, prefix6) = Gateway6(n);
            if (gateway != 0 && n.RouterMac is null)
            {
                var b = System.Security.Cryptography.RandomNumberGenerator.GetBytes(6);
                b[0] = (byte)((b[0] & 0xFC) | 0x02); // unicast, locally administered
                n.RouterMac = MacAddress.Format(MacAddress.Read(b));
            }
            var net = Datapath.AddNetwork(n.Name, (ushort)n.Vlan, n.Vni is null ? null : (uint)n.Vni, n.MacAgingSeconds * 1000L,
                gateway, prefix, NetworkMtu(n), n.RouterMac is null ? 0 : MacAddress.Parse(n.RouterMac), gateway6, prefix6, n.Slaac);
            _networkConfigs[n.Name] = n;
            ApplyVteps(n);
            if (n.HostPort)
            {
                try { StartHostPort(n); }
                catch
                {
                    Datapath.RemoveNetwork(n.Name);
                    _networkConfigs.Remove(n.Name);
                    throw;
                }
                PublishNorthSouth();
            }
            if (persist) Store?.SaveNetwork(n);
            return net;
        }
    }

    private static bool OnLink(RouterInterface r, string cidr)
    {
        string ip = cidr.Split('/')[0];
        return System.Net.IPAddress.TryParse(ip, out var a) && a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork
            && r.OnLink(System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(a.GetAddressBytes()));
    }

    private static bool OnLink6(RouterInterface r, string cidr)
    {
        string ip = cidr.Split('/')[0];
        return System.Net.IPAddress.TryParse(ip, out var a) && a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
            && r.OnLink6(System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(a.GetAddressBytes()));
    }

    private static System.Net.IPAddress FirstHost(System.Net.IPNetwork subnet)
    {
        var b = subnet.BaseAddress.GetAddressBytes();
        b[^1]++;
        return new System.Net.IPAddress(b);
    }

    /// <summary>
    /// A network asked for through the API: checked as the configuration file's networks are (the running
    /// VXLAN endpoint counts as its overlay section), refused when the name is taken, then added and stored.
    /// </summary>
    public NetworkView CreateNetwork(NetworkConfig n)
    {
        lock (_gate)
        {
            var cfg = new VSwitchConfig { Networks = [n], Overlay = Overlay };
            var errors = cfg.Validate().Select(e => e.Replace("networks[0].", "")).ToList();
            if (errors.Count > 0) throw new InvalidRequestException(string.Join("; ", errors));
            if (Datapath.Topology.NetworkByName(n.Name) is not null) throw new ConflictException($"network '{n.Name}' already exists");
            AddNetwork(n);
            return GetNetwork(n.Name);
        }
    }

    /// <summary>Removes a network that has no ports left, with its stored remote MACs.</summary>
    public void RemoveNetwork(string name)
    {
        lock (_gate)
        {
            var net = Datapath.Topology.NetworkByName(name) ?? throw NoNetwork(name);
            if (Datapath.Topology.Ports.Any(p => ReferenceEquals(p.Network, net) && !IsHostPort(p.Name))) throw new ConflictException($"network '{name}' still has ports");
            if (_publishes.Values.Any(p => p.Network == name)) throw new ConflictException($"network '{name}' has published ports: remove them first (vsctl publish ls)");
            StopHostPort(name); // the host port goes with its network
            Datapath.RemoveNetwork(name);
            _networkConfigs.Remove(name);
            LearnUnknownVteps();
            Store?.DeleteNetwork(name);
            Store?.DeleteRemoteMacs(name);
            Store?.DeleteConnections(name); // the datapath dropped them with the network
        }
    }

    /// <summary>
    /// A port asked for through the API: checked as the configuration file's ports are (against the
    /// networks that exist), refused when the name is taken, then created and stored. A device that
    /// cannot be made or attached is the request's fault (a name taken by another link, a missing interface).
    /// </summary>
    public PortView CreatePort(PortConfig p)
    {
        // Before the runtime's lock: the attachments' lock is always taken first (an attach holds it
        // while it adds its port), so taking it inside ours could deadlock.
        if (p.Network is not null && Attachments is { } att)
            foreach (var addr in p.Addresses)
                if (att.HolderOf(p.Network, addr) is { } who)
                    throw new ConflictException($"port '{p.Name}': address {addr} is already in use on network '{p.Network}' by {who}");
        lock (_gate)
        {
            var cfg = new VSwitchConfig
            {
                Networks = Datapath.Topology.Networks.Select(n => new NetworkConfig { Name = n.Name }).ToList(),
                Ports = [p],
            };
            var errors = cfg.Validate().Where(e => e.StartsWith("ports")).Select(e => e.Replace("ports[0].", "").Replace("ports[0]: ", "")).ToList();
            if (errors.Count > 0) throw new InvalidRequestException(string.Join("; ", errors));
            if (Datapath.Topology.PortByName(p.Name) is not null || _down.ContainsKey(p.Name)) throw new ConflictException($"port '{p.Name}' already exists");
            try { AddPort(p); }
            catch (Exception e) when (e is SwitchRuntimeException or ArgumentException or PortException or IOException)
            {
                throw new InvalidRequestException($"port '{p.Name}': {e.Message}", e);
            }
            return GetPort(p.Name);
        }
    }

    /// <summary>Creates the port's device (TAP) or attaches its interface (AF_PACKET) and joins it to its network.</summary>
    /// <param name="device">The TAP's name in its namespace when it is not the port's (an attachment's eth0).</param>
    public SwitchPort AddPort(PortConfig p, bool persist = true, string? device = null)
    {
        lock (_gate)
        {
            if (Datapath.Topology.PortByName(p.Name) is not null) throw new ConflictException($"port '{p.Name}' already exists");
            if (persist) EnsurePortRoom();
            var net = Datapath.Topology.NetworkByName(p.Network ?? "") ?? throw NoNetwork(p.Network);
            // A hitless restart's successor takes the predecessor's open descriptor instead of making a device.
            IPort io = TryAdopt(p) ?? p.Type switch
            {
                "tap" => TryReattach(p, device ?? p.Name) ?? TapPort.Create(new TapOptions
                {
                    Name = p.Name,
                    Mac = p.Mac is null ? null : MacAddress.Parse(p.Mac),
                    // Unless the port says otherwise, it takes its network's MTU and, when the network is
                    // routed and the port has an address, a default route via the network's gateway.
                    Mtu = p.Mtu ?? (net.Mtu != 1500 ? net.Mtu : null),
                    Netns = p.Netns,
                    Setup = NetConfig.TapSetup(p.Netns, p.Addresses,
                        p.Gateway ?? (net.Router is { } r && p.Netns is not null && p.Addresses.Any(a => OnLink(r, a))
                            ? VSwitch.Core.Wire.AddressFormat.IPv4(r.Address) : null),
                        gateway6: net.Router is { HasIPv6: true } r6 && p.Netns is not null && p.Addresses.Any(a => OnLink6(r6, a))
                            ? VSwitch.Core.Wire.AddressFormat.IPv6(r6.Address6) : null),
                    Persistent = p.Persistent,
                    Offloads = p.Offloads,
                    IoUring = p.IoUring,
                    Queues = RxQueuesFor(p.RxQueues),
                }),
                "afpacket" => OpenAfPacket(p),
                "afxdp" => OpenAfXdp(p),
                _ => throw new InvalidRequestException($"'{p.Type}' is not a port type (tap, afpacket or afxdp)"),
            };
            try
            {
                var mode = p.VlanMode == "trunk" ? VlanMode.Trunk : VlanMode.Access;
                var trunks = p.Trunks.Select(t => (ushort)t).ToArray();
                var (security, mac) = SecurityOf(p);
                var port = Datapath.AddPort(id => new SwitchPort(id, io, net, mode, p.Vlan is null ? null : (ushort)p.Vlan, trunks, (ushort)p.NativeVlan)
                    { Security = security, Mac = mac, PinMac = p.PinMac });
                // A new port with a reused id starts its MAC-move count again (its drop counters are per thread and kept, like its traffic counters).
                Datapath.MacTable.Moves.Reset(port.Id);
                _portConfigs[p.Name] = p;
                if (persist) Store?.SavePort(p);
                _log.LogInformation("port {Port} ({Type}, {Queues} receive queue(s)) joined network {Network} as port {Id}", p.Name, p.Type, io.RxQueueCount, net.Name, port.Id);
                RestorePins(p.Name);
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
            if (persist && IsHostPort(name))
                throw new ConflictException($"port '{name}' is a network's host port: vsctl network host-port NETWORK off removes it");
            if (persist) _deviceLosses.Remove(name); // a port deleted for good starts its count afresh
            if (_down.Remove(name))
            {
                _portConfigs.Remove(name);
                if (persist) Store?.DeletePort(name);
                _log.LogInformation("port {Port} (down) removed", name);
                return;
            }
            if (Datapath.Topology.PortByName(name) is null) throw NoPort(name);
            var port = Datapath.RemovePort(name);
            _portConfigs.Remove(name, out var cfg);
            if (persist) Store?.DeletePort(name);
            WaitQuiescent(Datapath.Topology.Version);
            ForgetRxQueues(port.Id);
            ReleaseDevice(port.Io, cfg);
            port.Io.Dispose();
            _log.LogInformation("port {Port} removed", name);
        }
    }

    public int? PortId(string name) => Datapath.Topology.PortByName(name)?.Id;
    public string? PortName(int id) => Datapath.Topology.Port(id)?.Name;

    /// <summary>Adds (or replaces) a rule given in ovs-ofctl syntax; a bad one is an <see cref="InvalidSyntaxException"/> naming the bad token.</summary>
    public RuleView AddRule(string text)
    {
        lock (_gate)
        {
            Rule rule;
            try { rule = InstallRule(text, persist: true); }
            catch (RuleSyntaxException e) { throw Syntax("bad rule", e); }
            return RuleView(rule);
        }
    }

    /// <summary>Adds (or replaces) a rule; throws <see cref="RuleSyntaxException"/> naming the bad token.</summary>
    private Rule InstallRule(string text, bool persist)
    {
        lock (_gate)
        {
            var rule = RuleParser.ParseRule(text, PortId);
            // At the limit a rule may still replace one with the same priority and match (it adds nothing).
            if (persist && Datapath.Rules.Rules.Count >= Limits.Rules
                && !Datapath.Rules.Rules.Any(r => r.Priority == rule.Priority && r.Match.SameAs(rule.Match))) EnsureRuleRoom();
            Datapath.Rules.Add(rule, Environment.TickCount64);
            if (persist) Store?.SaveRule(rule.Priority, rule.Match.Format(PortName), rule.Format(PortName));
            return rule;
        }
    }

    /// <summary>Deletes the rules a match selects (strict: exactly that match and priority); says how many and which.</summary>
    public DeleteResult DeleteRules(string matchText, bool strict)
    {
        lock (_gate)
        {
            ParsedRule parsed;
            try { parsed = RuleParser.ParseMatch(matchText, PortId); }
            catch (RuleSyntaxException e) { throw Syntax("bad match", e); }
            // Strict, as ovs-ofctl --strict: the priority is part of the rule's identity, 32768 when not
            // given, so an empty strict match never takes the default rule (priority 0) with it.
            int? priority = parsed.HasPriority ? parsed.Priority : strict ? RuleParser.DefaultPriority : null;
            var removed = Datapath.Rules.Delete(parsed.Match, priority, strict);
            foreach (var r in removed) Store?.DeleteRule(r.Priority, r.Match.Format(PortName));
            return new DeleteResult(removed.Count, removed.Select(r => r.Format(PortName)).ToArray());
        }
    }

    /// <summary>A rule, match, packet description or filter that does not parse, as the API says it: "bad rule: ..." and the token.</summary>
    private static InvalidSyntaxException Syntax(string what, RuleSyntaxException e) => new($"{what}: {e.Message}", e.Token, e.Position);

    /// <summary>
    /// Adds a static route: <c>prefix via GATEWAY</c> (the gateway must be on a routed network) or
    /// <c>prefix dev NETWORK</c>. A second path to the same prefix makes an ECMP group.
    /// A bad value is an <see cref="InvalidRequestException"/> naming it; the same path twice a <see cref="ConflictException"/>.
    /// </summary>
    public void AddRoute(string prefix, string? via, string? dev, bool persist = true)
    {
        lock (_gate)
        {
            if (IsIPv6Text(prefix)) { AddRoute6(prefix, via, dev, persist); return; }
            var (addr, len) = ParsePrefix(prefix);
            // At the limit a second path (ECMP) to a prefix that has one still fits: it adds no prefix.
            if (persist && !Datapath.Routes.Routes().Any(r => r.Prefix == addr && r.Length == len)) EnsureRouteRoom();
            NextHop hop;
            var topo = Datapath.Topology;
            if (via is not null && dev is null)
            {
                uint gw = ParseIPv4(via, "via");
                var net = topo.Networks.FirstOrDefault(n => n.Router is { } r && r.OnLink(gw))
                    ?? throw new InvalidRequestException($"via {via} is not on any routed network (no network's subnet contains it)");
                if (topo.IsRouterAddress(gw)) throw new InvalidRequestException($"via {via} is the router's own address");
                hop = new NextHop(RouteKind.Via, net.Id, gw);
            }
            else if (via is not null && dev is not null)
            {
                // On-link, as `ip route add P via GW dev D onlink`: the gateway is reached on that network whether or not
                // its subnet holds it. Flannel's vxlan backend routes each host's subnet so, via its subnet.0.
                uint gw = ParseIPv4(via, "via");
                var net = topo.NetworkByName(dev) ?? throw new InvalidRequestException($"dev {dev}: no network named '{dev}'");
                if (net.Router is null) throw new InvalidRequestException($"dev {dev}: network '{dev}' has no gateway, so the router has no interface there");
                if (topo.IsRouterAddress(gw)) throw new InvalidRequestException($"via {via} is the router's own address");
                hop = new NextHop(RouteKind.Via, net.Id, gw);
            }
            else if (dev is not null && via is null)
            {
                var net = topo.NetworkByName(dev) ?? throw new InvalidRequestException($"dev {dev}: no network named '{dev}'");
                if (net.Router is null) throw new InvalidRequestException($"dev {dev}: network '{dev}' has no gateway, so the router has no interface there");
                hop = new NextHop(RouteKind.Dev, net.Id, 0);
            }
            else throw new InvalidRequestException("give via (a gateway address), dev (a network), or both (the gateway on-link on that network)");
            if (!Datapath.Routes.Add(addr, len, hop)) throw new ConflictException($"route {prefix}{(via is not null ? " via " + via : "")}{(dev is not null ? " dev " + dev : "")} already exists");
            if (persist) Store?.SaveRoute(FormatPrefix(addr, len), via, dev);
        }
    }

    /// <summary>
    /// Deletes a static route, or one path of it (via or dev). No such route or path is a
    /// <see cref="NotFoundException"/>; a connected route (it goes with its network's gateway) a <see cref="ConflictException"/>.
    /// </summary>
    public void DeleteRoute(string prefix, string? via, string? dev)
    {
        if (!TryDeleteRoute(prefix, via, dev))
            throw new NotFoundException($"no route {prefix}{(via is not null ? " via " + via : "")}{(dev is not null ? " dev " + dev : "")}");
    }

    private bool TryDeleteRoute(string prefix, string? via, string? dev)
    {
        lock (_gate)
        {
            if (IsIPv6Text(prefix)) return TryDeleteRoute6(prefix, via, dev);
            var (addr, len) = ParsePrefix(prefix);
            var route = Datapath.Routes.Routes().FirstOrDefault(r => r.Prefix == addr && r.Length == len);
            if (route is null) return false;
            NextHop? path = null;
            if (via is not null) path = route.Paths.FirstOrDefault(p => p.Kind == RouteKind.Via && p.Gateway == ParseIPv4(via, "via"));
            else if (dev is not null) path = route.Paths.FirstOrDefault(p => p.Kind == RouteKind.Dev && Datapath.Topology.Network(p.Network)?.Name == dev);
            if ((via is not null || dev is not null) && path is null) return false;
            if (route.Paths.Any(p => p.Kind == RouteKind.Connected))
                throw new ConflictException($"{prefix} is a connected route: it goes with its network's gateway");
            if (!Datapath.Routes.Remove(addr, len, path)) return false;
            Store?.DeleteRoute(FormatPrefix(addr, len), via, dev);
            return true;
        }
    }

    public void AddStaticNeighbor(string network, string ip, string mac, bool persist = true)
    {
        lock (_gate)
        {
            var net = Datapath.Topology.NetworkByName(network) ?? throw new NotFoundException($"no network named '{network}'");
            if (!MacAddress.TryParse(mac, out ulong m) || MacAddress.IsMulticast(m)) throw new InvalidRequestException($"mac: '{mac}' is not a unicast MAC address");
            if (IsIPv6Text(ip)) { AddStaticNeighbor6(net, ip, m, persist); return; }
            uint addr = ParseIPv4(ip, "ip");
            Datapath.Neighbors.AddStatic(net.Id, addr, m);
            if (persist) Store?.SaveNeighbor(network, ip, MacAddress.Format(m));
        }
    }

    public static (uint Address, int Length) ParsePrefix(string prefix)
    {
        if (!System.Net.IPNetwork.TryParse(prefix, out var net) || net.BaseAddress.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            throw new InvalidRequestException($"prefix: '{prefix}' is not an IPv4 prefix (e.g. 10.2.0.0/24)");
        return (System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(net.BaseAddress.GetAddressBytes()), net.PrefixLength);
    }

    public static uint ParseIPv4(string ip, string field)
    {
        if (!System.Net.IPAddress.TryParse(ip, out var a) || a.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            throw new InvalidRequestException($"{field}: '{ip}' is not an IPv4 address");
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(a.GetAddressBytes());
    }

    public static string FormatPrefix(uint addr, int len) => VSwitch.Core.Wire.AddressFormat.IPv4(addr) + "/" + len;

    /// <summary>
    /// Returns once every datapath thread has passed its quiescent point after topology
    /// <paramref name="version"/> (or has exited): only then may a removed port's memory be freed.
    /// No timeout: a thread that does not come back is logged every 5 s, by name and time waited,
    /// and waited for (Core/Quiescence says why). A stopped thread counts as quiescent.
    /// </summary>
    private void WaitQuiescent(long version) =>
        Quiescence.Wait(_threads, version, (t, waited) =>
            _log.LogWarning("datapath thread vswitch-dp{Thread} has not passed a quiescent point for {Seconds:F0} s (seen topology version {Seen}, want {Version}): still waiting before freeing a removed port's memory",
                t.Index, waited.TotalSeconds, t.SeenVersion, version));

    public void Start()
    {
        PrepareDatapath();
        _running = true;
        foreach (var t in _threads) t.Start();
        foreach (var t in _threads)
            if (t.WaitStarted(TimeSpan.FromSeconds(5)) && t.SchedulingError is { } why)
                _log.LogWarning("datapath thread {Thread}: {Why}; it runs with the kernel's default scheduling", t.Index, why);
        // Aging, rule timeouts and neighbour timers run on the control side; the datapath only compares times.
        StartTimer();
        _log.LogInformation("datapath started: {Threads} thread(s), {Mode}", Options.Threads, Options.BusyPoll ? "busy polling"
            : $"epoll (spin {Options.SpinMicroseconds} us after a batch, slice {(Options.SliceMicroseconds > 0 ? Options.SliceMicroseconds + " us" : "default")}"
              + (Options.RealtimePriority > 0 ? $", SCHED_FIFO {Options.RealtimePriority})" : ")"));
    }

    private int _ticks;
    private readonly Dictionary<int, (long Faults, bool StoppedOnFault)> _loggedFaults = new();

    private void Tick()
    {
        long now = Environment.TickCount64;
        Datapath.Neighbors.Tick(now, (e, _) => Datapath.ArpRequests.Enqueue((e.Network, e.Address)));
        TickIPv6(now);
        if (++_ticks % 4 != 0) return;
        TendDownPorts();
        LogMacMoves();
        Datapath.MacTable.Expire(now);
        if (_ticks % 20 == 0) RefreshHostRoutes(); // the host's routes and addresses, every 5 s, for masquerade
        foreach (var r in Datapath.Rules.Expired(now))
        {
            lock (_gate)
            {
                if (Datapath.Rules.Remove(r)) Store?.DeleteRule(r.Priority, r.Match.Format(PortName));
            }
        }
        for (int i = 0; i < _threads.Count; i++)
        {
            var t = _threads[i];
            var state = (t.Faults, t.StoppedOnFault);
            if (t.Failure is not { } e || _loggedFaults.TryGetValue(i, out var logged) && logged == state) continue;
            _loggedFaults[i] = state;
            long faults = state.Faults;
            if (state.StoppedOnFault) _log.LogError(e, "datapath thread {Thread} stopped on a fault: its ports are not forwarded", i);
            else _log.LogError(e, "datapath thread {Thread}: {Faults} batch(es) dropped on a fault so far; the last one", i, faults);
        }
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
        _stopping = true;
        _timer?.Dispose();
        StopIpfix(); // before the threads stop: the flows' last counts go out
        foreach (var t in _threads) t.Stop();
        _running = false;
        // Handed over: the successor holds the devices; closing our copies removes nothing.
        if (SuccessorPid is not null) CloseHandedOverPorts();
        // Stopping is not an operator's removal: the stored configuration keeps the ports.
        else
        {
            StopNorthSouth(); // the host's rules, routes and sysctls as they were
            RemoveAllPorts(persist: false);
        }
        foreach (var t in _threads) t.Dispose();
        _threads.Clear();
    }
}
