using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using VSwitch.Api;
using VSwitch.Core;
using VSwitch.Core.Wire;

namespace VSwitchd.Config;

/// <summary>The daemon's JSON configuration: networks, ports and datapath settings.</summary>
public sealed class VSwitchConfig
{
    public List<NetworkConfig> Networks { get; set; } = [];
    public List<PortConfig> Ports { get; set; } = [];
    public DatapathConfig Datapath { get; set; } = new();
    /// <summary>Bounds of the tables and queues (see <see cref="LimitsConfig"/>).</summary>
    public LimitsConfig Limits { get; set; } = new();
    /// <summary>The local VXLAN tunnel endpoint, needed when any network has a VNI.</summary>
    public OverlayConfig? Overlay { get; set; }
    /// <summary>Cluster mode (many hosts, one network): the store of leases and this host's public address.</summary>
    public ClusterConfig? Cluster { get; set; }

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNameCaseInsensitive = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        // "networks": null and the like are refused as invalid JSON, not met later as a null (found by fuzzing).
        RespectNullableAnnotations = true,
    };

    /// <summary>Reads a file; throws <see cref="ConfigException"/> naming the file, the field and the value on any error.</summary>
    public static VSwitchConfig Load(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"cannot read config file '{path}': {e.Message}");
        }
        return Parse(text, path);
    }

    public static VSwitchConfig Parse(string text, string source = "config")
    {
        VSwitchConfig? cfg;
        try { cfg = JsonSerializer.Deserialize<VSwitchConfig>(text, Json); }
        catch (JsonException e)
        {
            // System.Text.Json names the path ($.ports[0].mtu) and the line; keep both.
            string where = e.Path is null ? "" : $" at {e.Path.TrimStart('$', '.')}";
            string line = e.LineNumber is null ? "" : $" (line {e.LineNumber + 1})";
            string msg = e.Message.Split(" Path:")[0];
            throw new ConfigException($"{source}: invalid JSON{where}{line}: {msg}");
        }
        if (cfg is null) throw new ConfigException($"{source}: empty configuration");
        // The nullable annotations do not reach list elements: "ports": [null] is checked here.
        if (NullEntry(cfg) is { } field) throw new ConfigException($"{source}: {field}: null is not allowed here");
        // Whether the namespaces and interfaces exist is checked when the file is applied (an empty
        // database, or --config-wins), not here: a file whose namespaces a reboot removed must not keep
        // a daemon with a stored configuration from starting.
        var errors = cfg.Validate(netnsExists: _ => true, deviceExists: _ => true);
        if (errors.Count > 0) throw new ConfigException($"{source}: " + string.Join("; ", errors));
        return cfg;
    }

    private static string? NullEntry(VSwitchConfig cfg)
    {
        for (int i = 0; i < cfg.Networks.Count; i++)
        {
            if (cfg.Networks[i] is null) return $"networks[{i}]";
            if (cfg.Networks[i].Vteps.IndexOf(null!) is int v and >= 0) return $"networks[{i}].vteps[{v}]";
        }
        for (int i = 0; i < cfg.Ports.Count; i++)
        {
            if (cfg.Ports[i] is null) return $"ports[{i}]";
            if (cfg.Ports[i].Addresses.IndexOf(null!) is int a and >= 0) return $"ports[{i}].addresses[{a}]";
        }
        return null;
    }

    /// <summary>What is wrong with a network's host port settings (a field and why), or null.</summary>
    public static string? NorthSouthError(NetworkConfig n)
    {
        if (!n.HostPort)
        {
            if (n.HostAddress is not null) return $"hostAddress: '{n.HostAddress}' is given but hostPort is off";
            if (n.Masquerade == true) return "masquerade: it needs a host port (hostPort), the way out through the host";
            return null;
        }
        if (n.Subnet is null || !System.Net.IPNetwork.TryParse(n.Subnet, out var subnet) || subnet.BaseAddress.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            return "hostPort: a host port needs a routed network (an IPv4 subnet)";
        if (n.HostAddress is null) return null;
        if (!IPAddress.TryParse(n.HostAddress, out var a) || a.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            return $"hostAddress: '{n.HostAddress}' is not an IPv4 address";
        if (!subnet.Contains(a)) return $"hostAddress: {n.HostAddress} is not in the subnet {n.Subnet}";
        if (n.Gateway is not null && IPAddress.TryParse(n.Gateway, out var gw) && gw.Equals(a)) return $"hostAddress: {n.HostAddress} is the gateway's address";
        return null;
    }

    /// <summary>Every problem, each naming the field and the bad value.</summary>
    public List<string> Validate(Func<string, bool>? netnsExists = null, Func<string, bool>? deviceExists = null)
    {
        netnsExists ??= NetnsExists;
        deviceExists ??= name => Directory.Exists($"/sys/class/net/{name}");
        var errors = new List<string>();
        var netNames = new HashSet<string>();
        for (int i = 0; i < Networks.Count; i++)
        {
            var n = Networks[i];
            string f = $"networks[{i}]";
            if (Names.Check(n.Name, Names.MaxNetworkName) is { } why) errors.Add($"{f}.name: {why}");
            else if (!netNames.Add(n.Name!)) errors.Add($"{f}.name: '{n.Name}' is defined twice");
            if (n.Vlan is < 0 or > 4094) errors.Add($"{f}.vlan: {n.Vlan} is not a VLAN id (0..4094)");
            if (n.Vni is < 1 or > 0xFFFFFF) errors.Add($"{f}.vni: {n.Vni} is not a VNI (1..16777215)");
            if (n.MacAgingSeconds is <= 0 or > 1_000_000) errors.Add($"{f}.macAgingSeconds: {n.MacAgingSeconds} must be 1..1000000");
            if (n.Mtu is < 68 or > 9000) errors.Add($"{f}.mtu: {n.Mtu} must be 68..9000");
            if (n.RouterMac is not null && (!MacAddress.TryParse(n.RouterMac, out ulong rm) || MacAddress.IsMulticast(rm) || rm == 0))
                errors.Add($"{f}.routerMac: '{n.RouterMac}' is not a unicast MAC address");
            ValidateSubnet(errors, f, "subnet", "gateway", n.Subnet, n.Gateway, System.Net.Sockets.AddressFamily.InterNetwork);
            ValidateSubnet(errors, f, "subnet6", "gateway6", n.Subnet6, n.Gateway6, System.Net.Sockets.AddressFamily.InterNetworkV6);
            if (NorthSouthError(n) is { } ns) errors.Add($"{f}.{ns}");
            if (n.Subnet6 is not null && n.Subnet is null)
                errors.Add($"{f}.subnet6: '{n.Subnet6}' needs an IPv4 subnet too (networks are IPv4 or dual-stack; the router's IPv6 interface shares the IPv4 one's MAC)");
            if (n.Subnet6 is not null && IPNetwork.TryParse(n.Subnet6, out var s6) && s6.BaseAddress.IsIPv6LinkLocal)
                errors.Add($"{f}.subnet6: '{n.Subnet6}' is link-local (fe80::/10): give a global or unique local prefix (e.g. fd00:1::/64)");
        }
        bool anyVni = false;
        for (int i = 0; i < Networks.Count; i++)
        {
            var n = Networks[i];
            anyVni |= n.Vni is not null;
            for (int v = 0; v < n.Vteps.Count; v++)
                if (OverlayConfig.VtepError(n.Vteps[v], Overlay?.Local) is { } why) errors.Add($"networks[{i}].vteps[{v}]: {why}");
            if (n.Vni is null && (n.Vteps.Count > 0 || n.AcceptUnknownVteps))
                errors.Add($"networks[{i}].vteps: a network without a vni has no VTEPs");
        }
        var vnis = Networks.Where(n => n.Vni is not null).GroupBy(n => n.Vni).FirstOrDefault(g => g.Count() > 1);
        if (vnis is not null) errors.Add($"networks: vni {vnis.Key} is used by {string.Join(" and ", vnis.Select(n => "'" + n.Name + "'"))}");
        if (Overlay is not null)
        {
            if (OverlayConfig.LocalVtepError(Overlay.Local) is { } why) errors.Add($"overlay.local: {why}");
            if (Overlay.Port is < 1 or > 65535) errors.Add($"overlay.port: {Overlay.Port} is not a UDP port");
        }
        else if (anyVni) errors.Add("overlay.local: a network with a vni needs this host's VXLAN endpoint, and none is configured (\"overlay\": {\"local\": \"IP\"} in the config file)");

        if (Cluster is not null) errors.AddRange(Cluster.Validate());

        var portNames = new HashSet<string>();
        for (int i = 0; i < Ports.Count; i++)
        {
            var p = Ports[i];
            string f = $"ports[{i}]";
            if (Names.Check(p.Name, Names.MaxPortName) is { } why) errors.Add($"{f}.name: {why}");
            else if (!portNames.Add(p.Name!)) errors.Add($"{f}.name: '{p.Name}' is defined twice");
            if (!netNames.Contains(p.Network ?? "")) errors.Add($"{f}.network: '{p.Network}' is not a defined network");
            switch (p.Type)
            {
                case "tap":
                    if (p.Device is not null) errors.Add($"{f}.device: only afpacket and afxdp ports attach a device (type is 'tap')");
                    if (p.Afxdp is not null) errors.Add($"{f}.afxdp: AF_XDP options are for afxdp ports (type is 'tap')");
                    if (p.Afpacket is not null) errors.Add($"{f}.afpacket: AF_PACKET ring options are for afpacket ports (type is 'tap')");
                    if (p.Netns is not null && !netnsExists(p.Netns)) errors.Add($"{f}.netns: '{p.Netns}' does not exist (a name under /run/netns or a path like /proc/PID/ns/net)");
                    break;
                case "afpacket":
                case "afxdp":
                    if (p.Type == "afpacket" && p.Afxdp is not null) errors.Add($"{f}.afxdp: AF_XDP options are for afxdp ports (type is 'afpacket')");
                    if (p.Type == "afxdp" && (p.Afxdp ?? new AfxdpConfig()).Validate() is { } badXdp) errors.Add($"{f}.afxdp.{badXdp}");
                    if (p.Type == "afxdp" && p.Afpacket is not null) errors.Add($"{f}.afpacket: AF_PACKET ring options are for afpacket ports (type is 'afxdp'; it has afxdp.ringSize)");
                    if (p.Afpacket?.Validate() is { } badRing) errors.Add($"{f}.afpacket.{badRing}");
                    string dev = p.Device ?? p.Name ?? "";
                    if (p.Device is not null && Names.Check(p.Device, Names.MaxPortName) is { } badDev) errors.Add($"{f}.device: {badDev}");
                    else if (dev == "lo" || File.Exists($"/sys/class/net/{dev}/type") && File.ReadAllText($"/sys/class/net/{dev}/type").Trim() == "772")
                        errors.Add($"{f}.device: '{dev}' is a loopback interface: it carries no Ethernet frames to switch");
                    else if (!deviceExists(dev)) errors.Add($"{f}.device: interface '{dev}' does not exist");
                    if (p.Netns is not null || p.Addresses.Count > 0 || p.Mac is not null)
                        errors.Add($"{f}: netns, addresses and mac are for tap ports; an {p.Type} port attaches an existing interface as it is");
                    break;
                default:
                    errors.Add($"{f}.type: '{p.Type}' is not a port type (tap, afpacket or afxdp)");
                    break;
            }
            if (p.Mac is not null && (!MacAddress.TryParse(p.Mac, out ulong mac) || MacAddress.IsMulticast(mac) || mac == 0))
                errors.Add($"{f}.mac: '{p.Mac}' is not a unicast MAC address");
            if (p.Mtu is < 68 or > 9000) errors.Add($"{f}.mtu: {p.Mtu} must be 68..9000");
            for (int a = 0; a < p.Addresses.Count; a++)
                if (!IPNetwork.TryParse(p.Addresses[a], out _) || !p.Addresses[a].Contains('/'))
                    errors.Add($"{f}.addresses[{a}]: '{p.Addresses[a]}' is not an address with a prefix (e.g. 10.0.0.2/24)");
            if (p.Gateway is not null && !IPAddress.TryParse(p.Gateway, out _)) errors.Add($"{f}.gateway: '{p.Gateway}' is not an IP address");
            if (p.VlanMode is not ("access" or "trunk")) errors.Add($"{f}.vlanMode: '{p.VlanMode}' must be access or trunk");
            if (p.Vlan is < 0 or > 4094) errors.Add($"{f}.vlan: {p.Vlan} is not a VLAN id (0..4094)");
            foreach (var t in p.Trunks)
                if (t is < 1 or > 4094) errors.Add($"{f}.trunks: {t} is not a VLAN id (1..4094)");
            if (p.NativeVlan is < 0 or > 4094) errors.Add($"{f}.nativeVlan: {p.NativeVlan} is not a VLAN id (0..4094)");
            if (p.VlanMode == "access" && (p.Trunks.Count > 0 || p.NativeVlan != 0))
                errors.Add($"{f}.trunks: trunks and nativeVlan are for a trunk; give \"vlanMode\": \"trunk\" too (a port is an access port unless it asks)");
            if (p.RxQueues is < 1 or > 64) errors.Add($"{f}.rxQueues: {p.RxQueues} must be 1..64 (receive queues; default datapath.threads)");
            if ((p.PortSecurity || p.PinMac) && p.AttachesDevice)
                errors.Add($"{f}.portSecurity: an {p.Type} port attaches an interface with no MAC or addresses of the switch's to enforce (use a tap port with mac and addresses)");
        }
        var d = Datapath;
        if (d.Threads is < 1 or > 64) errors.Add($"datapath.threads: {d.Threads} must be 1..64");
        if (d.BatchSize is < 1 or > 64) errors.Add($"datapath.batchSize: {d.BatchSize} must be 1..64");
        if (d.PoolSize is < 256 or > 1_048_576) errors.Add($"datapath.poolSize: {d.PoolSize} must be 256..1048576");
        if (d.LargePoolSize is < 0 or > 65_536) errors.Add($"datapath.largePoolSize: {d.LargePoolSize} must be 0..65536 (0: segment TCP super-frames on receive)");
        if (d.FlowIdleSeconds is < 0.1 or > 3600) errors.Add($"datapath.flowIdleSeconds: {d.FlowIdleSeconds} must be 0.1..3600");
        if (d.FlowCacheSize is < 8 or > 4_194_304) errors.Add($"datapath.flowCacheSize: {d.FlowCacheSize} must be 8..4194304");
        if (d.SpinMicroseconds is < 0 or > 1_000_000) errors.Add($"datapath.spinMicroseconds: {d.SpinMicroseconds} must be 0..1000000 (0: sleep in epoll_wait right after each batch)");
        if (d.SliceMicroseconds is < 0 or > 100_000) errors.Add($"datapath.sliceMicroseconds: {d.SliceMicroseconds} must be 0..100000 (0: the kernel's default slice)");
        if (d.RealtimePriority is < 0 or > 99) errors.Add($"datapath.realtimePriority: {d.RealtimePriority} must be 0..99 (0: ordinary scheduling)");
        if (Overlay?.RxQueues is < 1 or > 64) errors.Add($"overlay.rxQueues: {Overlay.RxQueues} must be 1..64 (receive sockets; default datapath.threads)");
        Limits.Validate(errors);
        return errors;
    }

    private static void ValidateSubnet(List<string> errors, string f, string subnetField, string gatewayField, string? subnet, string? gateway,
        System.Net.Sockets.AddressFamily family)
    {
        IPNetwork net = default;
        if (subnet is not null && (!IPNetwork.TryParse(subnet, out net) || net.BaseAddress.AddressFamily != family || !subnet.Contains('/')))
        {
            errors.Add($"{f}.{subnetField}: '{subnet}' is not an {(family == System.Net.Sockets.AddressFamily.InterNetwork ? "IPv4" : "IPv6")} subnet (e.g. {(family == System.Net.Sockets.AddressFamily.InterNetwork ? "10.1.0.0/24" : "fd00:1::/64")})");
            return;
        }
        // A switch network is a link: it needs a gateway and at least one host, and it is not the whole internet.
        int maxLen = family == System.Net.Sockets.AddressFamily.InterNetwork ? 30 : 126;
        if (subnet is not null && (net.PrefixLength < 8 || net.PrefixLength > maxLen))
        {
            errors.Add($"{f}.{subnetField}: '{subnet}' must have a prefix length of 8..{maxLen} (room for a gateway and hosts, and not a default route)");
            return;
        }
        if (gateway is null) return;
        if (!IPAddress.TryParse(gateway, out var gw) || gw.AddressFamily != family)
            errors.Add($"{f}.{gatewayField}: '{gateway}' is not an {(family == System.Net.Sockets.AddressFamily.InterNetwork ? "IPv4" : "IPv6")} address");
        else if (subnet is null)
            errors.Add($"{f}.{gatewayField}: a gateway needs a {subnetField}");
        else if (!net.Contains(gw))
            errors.Add($"{f}.{gatewayField}: {gateway} is not inside {subnetField} {subnet}");
    }

    public static bool NetnsExists(string netns) =>
        netns.StartsWith('/') ? File.Exists(netns) : File.Exists($"/run/netns/{netns}");

    public DatapathOptions ToOptions() => new()
    {
        Threads = Datapath.Threads,
        BusyPoll = Datapath.BusyPoll,
        BatchSize = Datapath.BatchSize,
        PoolSize = Datapath.PoolSize,
        LargePoolSize = Datapath.LargePoolSize,
        FlowIdleMs = (long)(Datapath.FlowIdleSeconds * 1000),
        FlowCacheSize = Datapath.FlowCacheSize,
        SpinMicroseconds = Datapath.SpinMicroseconds,
        SliceMicroseconds = Datapath.SliceMicroseconds,
        RealtimePriority = Datapath.RealtimePriority,
    };
}

public sealed class NetworkConfig
{
    public string Name { get; set; } = "";
    public int Vlan { get; set; }
    public int? Vni { get; set; }
    public int MacAgingSeconds { get; set; } = 300;
    /// <summary>IPv4 subnet of the network (CIDR), from which attachments get addresses.</summary>
    public string? Subnet { get; set; }
    /// <summary>The network's gateway address inside <see cref="Subnet"/>: the router's interface, and the containers' default route (default: the first host address).</summary>
    public string? Gateway { get; set; }
    /// <summary>
    /// IPv6 subnet of a dual-stack network (with <see cref="Subnet"/>): the router routes IPv6 there,
    /// answers neighbour discovery and sends router advertisements; attachments get an address from it.
    /// </summary>
    public string? Subnet6 { get; set; }
    /// <summary>The router's IPv6 address in <see cref="Subnet6"/> (default: the subnet's first address after the prefix, ::1).</summary>
    public string? Gateway6 { get; set; }
    /// <summary>The autonomous flag of the prefix in router advertisements (hosts form addresses by SLAAC); a /64 is needed for it to apply.</summary>
    public bool Slaac { get; set; } = true;
    /// <summary>
    /// The router's MAC on this network. Default: a random locally administered address, chosen
    /// once and stored, so that two hosts' routers on one VXLAN network never share a MAC.
    /// </summary>
    public string? RouterMac { get; set; }
    /// <summary>Remote VTEPs (IPv4) of this VXLAN network: flooding replicates to each, frames from others are refused.</summary>
    public List<string> Vteps { get; set; } = [];
    /// <summary>Accept (and learn from) VTEPs that are not in <see cref="Vteps"/>.</summary>
    public bool AcceptUnknownVteps { get; set; }
    /// <summary>MTU given to the network's TAPs (default 1500, or 1450 for a VXLAN network).</summary>
    public int? Mtu { get; set; }
    /// <summary>Give the host an interface on this routed network (a TAP named vsh-NAME in the daemon's namespace).</summary>
    public bool HostPort { get; set; }
    /// <summary>The host's address on the network (default: the subnet's last host address).</summary>
    public string? HostAddress { get; set; }
    /// <summary>Masquerade connections leaving through the host port (default: on when there is a host port, as Docker does).</summary>
    public bool? Masquerade { get; set; }

    /// <summary>
    /// A network asked for through the API (POST /v1/networks). The API contract carries its own request
    /// record, with the same JSON names, rather than this class: this is the file's format (and what the
    /// state store keeps), that is the wire's, and clients compile against the wire's only. A field the
    /// request leaves out keeps this class's default, so the defaults live here alone.
    /// </summary>
    public static NetworkConfig FromRequest(NetworkRequest r)
    {
        var n = new NetworkConfig { Name = r.Name ?? "", Vni = r.Vni, Subnet = r.Subnet, Gateway = r.Gateway, Subnet6 = r.Subnet6,
            Gateway6 = r.Gateway6, RouterMac = r.RouterMac, Mtu = r.Mtu };
        if (r.Slaac is { } slaac) n.Slaac = slaac;
        if (r.Vlan is { } vlan) n.Vlan = vlan;
        if (r.MacAgingSeconds is { } aging) n.MacAgingSeconds = aging;
        if (r.Vteps is { } vteps) n.Vteps = [.. vteps];
        if (r.AcceptUnknownVteps is { } accept) n.AcceptUnknownVteps = accept;
        if (r.HostPort is { } hp) n.HostPort = hp;
        n.HostAddress = r.HostAddress;
        n.Masquerade = r.Masquerade;
        return n;
    }
}

public sealed class PortConfig
{
    public string Name { get; set; } = "";
    public string Type { get; set; } = "tap";
    public string? Network { get; set; }
    /// <summary>afpacket, afxdp: the interface to attach (default: the port's name).</summary>
    public string? Device { get; set; }
    /// <summary>afxdp: queue, modes, ring sizes (null: the defaults).</summary>
    public AfxdpConfig? Afxdp { get; set; }
    /// <summary>afpacket: the receive ring's geometry (null: 120 slots of 68 KiB).</summary>
    public AfpacketConfig? Afpacket { get; set; }
    /// <summary>An existing interface is attached (afpacket, afxdp), rather than a TAP made.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool AttachesDevice => Type is "afpacket" or "afxdp";
    public string? Netns { get; set; }
    public string? Mac { get; set; }
    public int? Mtu { get; set; }
    public List<string> Addresses { get; set; } = [];
    public string? Gateway { get; set; }
    public bool Persistent { get; set; }
    /// <summary>tap: checksum and TCP segmentation offloads from the namespace (IFF_VNET_HDR); false leaves them to the kernel.</summary>
    public bool Offloads { get; set; } = true;
    /// <summary>TAP only: batch reads and writes through io_uring (one syscall per batch); false: one read/write per frame.</summary>
    public bool IoUring { get; set; } = true;
    /// <summary>
    /// Receive queues (RSS): a multiqueue TAP (IFF_MULTI_QUEUE) or an AF_PACKET fanout group (hash), each queue
    /// polled by one datapath thread. Null: one per datapath thread.
    /// </summary>
    public int? RxQueues { get; set; }
    public string VlanMode { get; set; } = "access";
    /// <summary>Access VLAN; null means the network's.</summary>
    public int? Vlan { get; set; }
    public List<int> Trunks { get; set; } = [];
    public int NativeVlan { get; set; }
    /// <summary>
    /// Port security (OVN's port_security): frames must come from the port's MAC and addresses. Default off
    /// for ports (on for attachments, whose MAC and address the switch assigned).
    /// </summary>
    public bool PortSecurity { get; set; }
    /// <summary>The port's MAC (and static MAC entries on it) may not move to another port: such frames are dropped (mac-move-refused).</summary>
    public bool PinMac { get; set; }

    /// <summary>A copy to change (the runtime replaces a port's configuration whole).</summary>
    public PortConfig Clone()
    {
        var c = (PortConfig)MemberwiseClone();
        c.Addresses = [.. Addresses];
        c.Trunks = [.. Trunks];
        return c;
    }

    /// <summary>A port asked for through the API (POST /v1/ports); see <see cref="NetworkConfig.FromRequest"/> for why a separate record.</summary>
    public static PortConfig FromRequest(PortRequest r)
    {
        var p = new PortConfig { Name = r.Name ?? "", Network = r.Network, Device = r.Device, Netns = r.Netns, Mac = r.Mac, Mtu = r.Mtu,
            Gateway = r.Gateway, Vlan = r.Vlan };
        if (r.Type is { } type) p.Type = type;
        if (r.Addresses is { } addresses) p.Addresses = [.. addresses];
        if (r.Persistent is { } persistent) p.Persistent = persistent;
        if (r.Offloads is { } offloads) p.Offloads = offloads;
        if (r.IoUring is { } ioUring) p.IoUring = ioUring;
        p.RxQueues = r.RxQueues;
        if (r.VlanMode is { } mode) p.VlanMode = mode;
        if (r.Trunks is { } trunks) p.Trunks = [.. trunks];
        if (r.NativeVlan is { } native) p.NativeVlan = native;
        if (r.PortSecurity is { } security) p.PortSecurity = security;
        if (r.PinMac is { } pin) p.PinMac = pin;
        if (r.Afxdp is { } x) p.Afxdp = AfxdpConfig.FromRequest(x);
        if (r.Afpacket is { } ap) p.Afpacket = AfpacketConfig.FromRequest(ap);
        return p;
    }
}

/// <summary>
/// Cluster mode: this host leases a subnet of the cluster network from etcd (Flannel's layout under <see cref="Prefix"/>)
/// or finds it in a static file, and the switch is programmed for every other host. Flags override it
/// (--etcd-endpoints, --etcd-prefix, --public-ip, --lease-ttl, --cluster-file).
/// </summary>
public sealed class ClusterConfig
{
    public const string DefaultPrefix = "/coreos.com/network";
    /// <summary>etcd client URLs (several for a 3- or 5-member cluster): http://127.0.0.1:2379.</summary>
    public List<string> EtcdEndpoints { get; set; } = [];
    public string Prefix { get; set; } = DefaultPrefix;
    /// <summary>This host's underlay address: its VTEP, and the PublicIP of its lease.</summary>
    public string? PublicIp { get; set; }
    /// <summary>The TTL of this host's etcd lease (Flannel's 24 h by default; short in tests).</summary>
    public int LeaseTtlSeconds { get; set; } = 24 * 3600;
    /// <summary>Instead of etcd: a file that lists every host (subnet, public IP, VTEP MAC).</summary>
    public string? StaticFile { get; set; }
    /// <summary>The network containers attach to (its subnet is the leased one); the transit network is NAME-vxlan.</summary>
    public string Network { get; set; } = "cluster";
    /// <summary>The underlay's MTU: the cluster networks get 50 bytes less (1450 on 1500), unless <see cref="Mtu"/> says.</summary>
    public int UnderlayMtu { get; set; } = 1500;
    public int? Mtu { get; set; }

    public int EffectiveMtu => Mtu ?? UnderlayMtu - 50;

    public List<string> Validate()
    {
        var errors = new List<string>();
        if (EtcdEndpoints.Count == 0 && StaticFile is null) errors.Add("cluster: give etcdEndpoints (--etcd-endpoints) or staticFile (--cluster-file)");
        if (EtcdEndpoints.Count > 0 && StaticFile is not null) errors.Add("cluster: etcdEndpoints and staticFile exclude each other");
        foreach (var e in EtcdEndpoints)
        {
            string u = e.Contains("://", StringComparison.Ordinal) ? e : "http://" + e;
            if (!Uri.TryCreate(u, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.IsDefaultPort && !e.Contains(':'))
                errors.Add($"cluster.etcdEndpoints: '{e}' is not HOST:PORT or http://HOST:PORT");
        }
        if (!Prefix.StartsWith('/') || Prefix.Length < 2) errors.Add($"cluster.prefix: '{Prefix}' must start with / (default {DefaultPrefix})");
        if (PublicIp is null || !IPAddress.TryParse(PublicIp, out var ip) || ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            errors.Add($"cluster.publicIp: '{PublicIp}' is not an IPv4 address (this host's underlay address, --public-ip)");
        if (LeaseTtlSeconds is < 2 or > 30 * 24 * 3600) errors.Add($"cluster.leaseTtlSeconds: {LeaseTtlSeconds} must be 2..2592000");
        if (Names.Check(Network, Names.MaxNetworkName - 6) is { } why) errors.Add($"cluster.network: {why}");
        if (UnderlayMtu is < 576 or > 9216) errors.Add($"cluster.underlayMtu: {UnderlayMtu} must be 576..9216");
        if (EffectiveMtu is < 68 or > 9000) errors.Add($"cluster.mtu: {EffectiveMtu} must be 68..9000");
        return errors;
    }
}

public sealed class OverlayConfig
{
    /// <summary>This host's VTEP address (IPv4 or IPv6, an address of this host's underlay interface); the remote VTEPs are of its family.</summary>
    public string? Local { get; set; }
    /// <summary>
    /// Over IPv6, take VXLAN datagrams whose UDP checksum is zero (RFC 6936; the kernel's vxlan calls it
    /// udp6zerocsumrx). Off, as the kernel's default: IPv6 requires the checksum. Ignored over IPv4.
    /// </summary>
    public bool Udp6ZeroChecksumRx { get; set; }

    /// <summary>Why <paramref name="local"/> cannot be this host's VTEP address (null when it can): an IPv4 or a global/unique-local IPv6 unicast address.</summary>
    public static string? LocalVtepError(string? local)
    {
        if (local is null || !IPAddress.TryParse(local, out var ip) || local.Contains('%'))
            return $"'{local}' is not an IPv4 or IPv6 address (this host's VTEP address)";
        if (ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && (ip.IsIPv6LinkLocal || ip.IsIPv6Multicast || ip.Equals(IPAddress.IPv6Any) || ip.IsIPv4MappedToIPv6))
            return $"'{local}' is not a global or unique-local IPv6 unicast address (a link-local VTEP would need a scope; use e.g. fd00:99::1)";
        if (ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && (ip.Equals(IPAddress.Any) || ip.GetAddressBytes()[0] >= 224))
            return $"'{local}' is not an IPv4 unicast address";
        return null;
    }

    /// <summary>
    /// Why <paramref name="vtep"/> cannot be a remote VTEP of an endpoint on <paramref name="local"/> (null when it can): a unicast
    /// address of the endpoint's family. One family per endpoint: its sockets are AF_INET or AF_INET6, as a kernel vxlan device's are.
    /// </summary>
    public static string? VtepError(string? vtep, string? local)
    {
        if (vtep is null || !IPAddress.TryParse(vtep, out var ip) || vtep.Contains('%')) return $"'{vtep}' is not an IPv4 or IPv6 address";
        // 0.0.0.0/8 is where IPv6 VTEPs' handles live (VtepRemote); no IPv4 host has such an address either.
        if (ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && ip.GetAddressBytes()[0] == 0) return $"'{vtep}' is in 0.0.0.0/8 and cannot be a VTEP address";
        if (LocalVtepError(vtep) is not null) return $"'{vtep}' is not a unicast address a VTEP can have";
        if (local is not null && IPAddress.TryParse(local, out var l) && l.AddressFamily != ip.AddressFamily)
            return $"'{vtep}' is {Family(ip)} but this host's VTEP address (overlay.local) '{local}' is {Family(l)}: an endpoint's VTEPs are all of its family";
        return null;
    }

    private static string Family(IPAddress ip) => ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "IPv6" : "IPv4";

    /// <summary>True when <paramref name="o"/>'s local address is IPv6 (false for none, IPv4, or not an address).</summary>
    public static bool IsIPv6(OverlayConfig? o) =>
        o?.Local is { } l && System.Net.IPAddress.TryParse(l, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
    /// <summary>UDP port of VXLAN (IANA 4789; the Linux kernel's historical default is 8472).</summary>
    public int Port { get; set; } = 4789;
    /// <summary>
    /// UDP GSO sends (trains of same-size frames, TCP super-frames' segments). Turn off when a userspace
    /// VTEP on this host reads the underlay without virtio headers (OVS netdev without userspace TSO).
    /// </summary>
    public bool UdpGso { get; set; } = true;
    /// <summary>Receive sockets bound to the VXLAN port with SO_REUSEPORT, each polled by one datapath thread; null: one per thread.</summary>
    public int? RxQueues { get; set; }
}

public sealed class DatapathConfig
{
    public int Threads { get; set; } = 1;
    public bool BusyPoll { get; set; }
    public int BatchSize { get; set; } = VSwitch.Core.Buffers.PacketBatch.DefaultSize;
    public int PoolSize { get; set; } = 8192;
    /// <summary>64 KiB buffers per datapath thread for TCP super-frames passed whole (see DatapathOptions.LargePoolSize).</summary>
    public int LargePoolSize { get; set; } = DatapathOptions.DefaultLargePoolSize;
    /// <summary>Seconds a datapath flow stays cached without packets (OVS's max-idle).</summary>
    public double FlowIdleSeconds { get; set; } = 10;
    public int FlowCacheSize { get; set; } = 65536;
    /// <summary>Microseconds a thread keeps polling after a batch before it sleeps in epoll_wait (DatapathOptions.SpinMicroseconds).</summary>
    public int SpinMicroseconds { get; set; } = DatapathOptions.DefaultSpinMicroseconds;
    /// <summary>Scheduler slice for the datapath threads in µs (DatapathOptions.SliceMicroseconds); 0: the kernel's default.</summary>
    public int SliceMicroseconds { get; set; } = DatapathOptions.DefaultSliceMicroseconds;
    /// <summary>SCHED_FIFO priority of the datapath threads (1..99); 0: ordinary scheduling.</summary>
    public int RealtimePriority { get; set; }
}

public sealed class ConfigException(string message) : Exception(message);
