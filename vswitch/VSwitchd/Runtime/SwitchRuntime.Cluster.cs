using VSwitch.Cluster;
using VSwitch.Core.Wire;
using VSwitchd.Config;

namespace VSwitchd.Runtime;

/// <summary>
/// Cluster mode's side of the switch, programmed the way Flannel's vxlan backend programs a Linux host:
/// <list type="bullet">
/// <item>the VXLAN endpoint on the public address, on the cluster's port (8472);</item>
/// <item>a transit network NAME-vxlan with the cluster's VNI, whose router interface is this host's VTEP (flannel.1): its MAC is
/// the VtepMAC of the lease, its address the leased subnet's first (subnet.0), its subnet the whole cluster network;</item>
/// <item>a routed network NAME on the leased subnet (cni0), gateway subnet.1, where containers attach;</item>
/// <item>per remote host: its public IP as a VTEP, its VtepMAC as a static remote MAC behind that VTEP (the fdb entry), a static
/// neighbour subnet.0 → VtepMAC (the ARP entry), and a route to its subnet via subnet.0 on-link on the transit network.</item>
/// </list>
/// The two networks are stored like any other (containers attached to NAME survive a restart); what is programmed per remote
/// host is not: it is the store's, programmed again from a listing at every start.
/// </summary>
public sealed partial class SwitchRuntime
{
    public static string TransitNetworkName(string network) => network + "-vxlan";

    /// <summary>The cluster's agent when cluster mode is on (the API's view of it).</summary>
    public ClusterAgent? Cluster { get; set; }
    public ClusterConfig? ClusterSettings { get; set; }

    internal void SetUpCluster(ClusterConfig settings, SubnetLease own, FlannelConfig config)
    {
        lock (_gate)
        {
            var overlay = new OverlayConfig { Local = own.PublicIP, Port = config.Port, UdpGso = Overlay?.UdpGso ?? true };
            if (Overlay is null) StartOverlay(overlay);
            else if (Overlay.Local != overlay.Local || Overlay.Port != overlay.Port) SetOverlay(overlay);

            int mtu = settings.EffectiveMtu;
            EnsureNetwork(new NetworkConfig
            {
                Name = TransitNetworkName(settings.Network), Vni = config.Vni, Subnet = config.Network.ToString(),
                Gateway = Ipv4Prefix.FormatAddress(own.VtepAddress), RouterMac = own.VtepMac, Mtu = mtu,
            });
            EnsureNetwork(new NetworkConfig { Name = settings.Network, Subnet = own.Subnet.ToString(), Mtu = mtu });
            Store?.SetMeta("cluster.subnet", own.Subnet.ToString());
        }
    }

    /// <summary>Adds the network, or keeps it when it is already so; one that differs is made again if it has no ports.</summary>
    private void EnsureNetwork(NetworkConfig want)
    {
        if (_networkConfigs.TryGetValue(want.Name, out var have))
        {
            if (have.Subnet == want.Subnet && have.Vni == want.Vni && (want.Gateway is null || have.Gateway == want.Gateway)
                && (want.RouterMac is null || string.Equals(have.RouterMac, want.RouterMac, StringComparison.OrdinalIgnoreCase)) && have.Mtu == want.Mtu)
                return;
            if (Datapath.Topology.Ports.Any(p => p.Network.Name == want.Name)) // attachments are ports too
                throw new ClusterConfigException($"network '{want.Name}' is {have.Subnet} and has ports, but this host's lease says {want.Subnet}: detach them, or remove the network");
            _log.LogWarning("cluster: network {Network} was {Old}, is now {New}: made again", want.Name, have.Subnet, want.Subnet);
            RemoveNetwork(want.Name);
        }
        if (want.Vni is { } vni && _networkConfigs.Values.FirstOrDefault(n => n.Vni == vni && n.Name != want.Name) is { } clash)
            throw new ClusterConfigException($"the cluster's VNI {vni} is already network '{clash.Name}'s");
        AddNetwork(want);
    }

    /// <summary>This host's VTEP MAC: the transit network's router MAC once it exists, else one chosen now and kept.</summary>
    internal string ClusterVtepMac(ClusterConfig settings)
    {
        lock (_gate)
        {
            if (_networkConfigs.TryGetValue(TransitNetworkName(settings.Network), out var n) && n.RouterMac is not null) return n.RouterMac;
            if (Store?.GetMeta("cluster.vtepMac") is { } kept) return kept;
            var b = System.Security.Cryptography.RandomNumberGenerator.GetBytes(6);
            b[0] = (byte)((b[0] & 0xFC) | 0x02); // unicast, locally administered
            string mac = MacAddress.Format(MacAddress.Read(b));
            Store?.SetMeta("cluster.vtepMac", mac);
            return mac;
        }
    }

    /// <summary>Programs one remote host, all or nothing: on any failure the steps done are undone and the error thrown.</summary>
    internal void ProgramClusterHost(ClusterConfig settings, SubnetLease remote)
    {
        string transit = TransitNetworkName(settings.Network);
        string vtep = remote.PublicIP, gw = Ipv4Prefix.FormatAddress(remote.VtepAddress), prefix = remote.Subnet.ToString();
        lock (_gate)
        {
            var n = _networkConfigs.GetValueOrDefault(transit) ?? throw new ClusterConfigException($"the transit network '{transit}' does not exist yet");
            var net = Datapath.Topology.NetworkByName(transit)!;
            var undo = new Stack<Action>();
            try
            {
                if (!n.Vteps.Contains(vtep))
                {
                    n.Vteps.Add(vtep);
                    ApplyClusterVteps(n);
                    undo.Push(() => { n.Vteps.Remove(vtep); ApplyClusterVteps(n); });
                }
                AddRemoteMac(transit, remote.VtepMac!, vtep, persist: false);
                ulong mac = MacAddress.Parse(remote.VtepMac!);
                undo.Push(() => Datapath.MacTable.Remove(net.Id, mac));
                AddStaticNeighbor(transit, gw, remote.VtepMac!, persist: false);
                uint gwAddr = remote.VtepAddress;
                undo.Push(() => Datapath.Neighbors.Remove(net.Id, gwAddr));
                var (addr, len) = ParsePrefix(prefix);
                var existing = Datapath.Routes.Get(addr, len);
                if (existing is not null && existing.Paths.Any(p => p.Kind == VSwitch.Core.Tables.RouteKind.Connected))
                    throw new ClusterConfigException($"{prefix} is a connected route here: the host's subnet overlaps a local network");
                // A route left from before (a lease that changed) is replaced: the store is the truth for cluster subnets.
                if (existing is not null) Datapath.Routes.Remove(addr, len);
                AddRoute(prefix, gw, transit, persist: false);
            }
            catch
            {
                while (undo.Count > 0)
                {
                    try { undo.Pop()(); }
                    catch (Exception e) { _log.LogWarning("cluster: undoing host {Subnet}: {Error}", prefix, e.Message); }
                }
                throw;
            }
        }
    }

    internal void RemoveClusterHost(ClusterConfig settings, SubnetLease remote)
    {
        string transit = TransitNetworkName(settings.Network);
        lock (_gate)
        {
            var (addr, len) = ParsePrefix(remote.Subnet.ToString());
            var route = Datapath.Routes.Get(addr, len);
            if (route is not null && !route.Paths.Any(p => p.Kind == VSwitch.Core.Tables.RouteKind.Connected)) Datapath.Routes.Remove(addr, len);
            if (Datapath.Topology.NetworkByName(transit) is not { } net || !_networkConfigs.TryGetValue(transit, out var n)) return;
            Datapath.Neighbors.Remove(net.Id, remote.VtepAddress);
            if (remote.VtepMac is not null && MacAddress.TryParse(remote.VtepMac, out ulong mac)) Datapath.MacTable.Remove(net.Id, mac);
            // The VTEP goes unless another lease still uses the same public address (a host that changed subnet).
            if (n.Vteps.Remove(remote.PublicIP)) ApplyClusterVteps(n);
        }
    }

    private bool _clusterBatch;

    /// <summary>The transit network's VTEP list to the datapath, at once or, within <see cref="ClusterBatch"/>, once at its end.</summary>
    private void ApplyClusterVteps(NetworkConfig n)
    {
        if (!_clusterBatch) ApplyVteps(n);
    }

    /// <summary>
    /// Many hosts programmed in one go (a listing of a thousand leases): the VTEP list, which is published whole, is
    /// published once at the end instead of once per host. Frames from the new VTEPs are accepted from then on.
    /// </summary>
    internal void ClusterBatch(ClusterConfig settings, Action work)
    {
        lock (_gate)
        {
            _clusterBatch = true;
            try { work(); }
            finally
            {
                _clusterBatch = false;
                if (_networkConfigs.TryGetValue(TransitNetworkName(settings.Network), out var n)) ApplyVteps(n);
            }
        }
    }
}

/// <summary>The switch as the cluster agent sees it.</summary>
public sealed class ClusterDataplane(SwitchRuntime runtime, ClusterConfig settings) : IClusterDataplane
{
    public string VtepMac => runtime.ClusterVtepMac(settings);
    public void SetLocal(SubnetLease own, FlannelConfig config) => runtime.SetUpCluster(settings, own, config);
    public void Program(SubnetLease remote) => runtime.ProgramClusterHost(settings, remote);
    public void Remove(SubnetLease remote) => runtime.RemoveClusterHost(settings, remote);
    public void Batch(Action work) => runtime.ClusterBatch(settings, work);

    // In the state database as JSON, one meta row: Flannel's value of each lease under its key, as etcd has it.
    public IReadOnlyList<SubnetLease> RememberedHosts()
    {
        if (runtime.Store?.GetMeta("cluster.hosts") is not { } json) return [];
        try
        {
            var map = System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(json) ?? [];
            return map.Select(kv => SubnetLease.TryParse(kv.Key, kv.Value, out _)).OfType<SubnetLease>().ToList();
        }
        catch (System.Text.Json.JsonException) { return []; }
    }

    public void RememberHosts(IReadOnlyList<SubnetLease> hosts) =>
        runtime.Store?.SetMeta("cluster.hosts", System.Text.Json.JsonSerializer.Serialize(hosts.ToDictionary(h => h.Subnet.ToKey(), h => h.ToJson())));
}

public sealed partial class SwitchRuntime
{
    /// <summary>The cluster network (a route via the gateway in a CNI result) for an attachment on the cluster's container network.</summary>
    public string[]? ClusterRoutes(string network) =>
        ClusterSettings is { } s && s.Network == network && Cluster?.Config is { } c ? [c.Network.ToString()] : null;

    private ClusterAgent RequireCluster() => Cluster ?? throw new NotFoundException(
        "cluster mode is off: start vswitchd with --etcd-endpoints URLS --public-ip IP (or --cluster-file FILE), or a \"cluster\" section in its config");

    public VSwitch.Api.ClusterView GetCluster()
    {
        var agent = RequireCluster();
        var s = agent.State();
        var settings = ClusterSettings!;
        var lease = s.Own is { } own ? new VSwitch.Api.ClusterLeaseView(own.Subnet.ToString(), own.PublicIP, own.VtepMac, own.Expires, s.LastRenewed) : null;
        return new VSwitch.Api.ClusterView(s.Store, s.Reachable, s.UnreachableSince, s.LastError, s.PublicIp, s.Config?.Network.ToString(),
            s.Config?.SubnetLen ?? 0, s.Config?.Vni ?? 0, s.Config?.Port ?? 0, settings.EffectiveMtu, lease, (long)s.LeaseTtl.TotalSeconds, s.Revision,
            s.Hosts, s.Programmed, settings.Network, TransitNetworkName(settings.Network));
    }

    public VSwitch.Api.ClusterHostView[] ListClusterHosts()
    {
        var agent = RequireCluster();
        var counters = Tunnel?.Vteps().ToDictionary(kv => VSwitch.Core.Flow.VtepRemote.Format(kv.Key), kv => kv.Value) ?? [];
        return agent.Hosts().Select(h =>
        {
            var l = h.Lease;
            counters.TryGetValue(l.PublicIP, out var c);
            return new VSwitch.Api.ClusterHostView(l.Subnet.ToString(), l.PublicIP, l.VtepMac, l.Vni, l.BackendType, h.Programmed, h.Error, l.Expires,
                c?.TxPackets ?? 0, c?.TxBytes ?? 0, c?.RxPackets ?? 0, c?.RxBytes ?? 0);
        }).ToArray();
    }
}
