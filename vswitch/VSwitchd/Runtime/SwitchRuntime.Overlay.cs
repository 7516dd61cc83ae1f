using VSwitch.Api;
using System.Text.Json;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;
using VSwitch.Overlay;
using VSwitchd.Config;

namespace VSwitchd.Runtime;

/// <summary>The overlay: this host's VXLAN endpoint, the remote VTEPs of each VXLAN network, static remote MACs.</summary>
public sealed partial class SwitchRuntime
{
    public const string TunnelPortName = "vxlan0";
    private static readonly JsonSerializerOptions OverlayJson = new(JsonSerializerDefaults.Web);

    public VxlanPort? Tunnel { get; private set; }
    public OverlayConfig? Overlay { get; private set; }

    /// <summary>Opens the VXLAN endpoint on the local VTEP address and attaches it as the tunnel port.</summary>
    public void StartOverlay(OverlayConfig o, bool persist = true)
    {
        lock (_gate)
        {
            if (Tunnel is not null) throw new InvalidOperationException("the VXLAN endpoint is already open");
            if (OverlayConfig.LocalVtepError(o.Local) is { } why) throw new InvalidRequestException("overlay.local: " + why);
            var local = System.Net.IPAddress.Parse(o.Local!);
            var io = TryAdoptTunnel(o, local) ?? VxlanPort.Open(TunnelPortName, local, (ushort)o.Port, RxQueuesFor(o.RxQueues));
            io.UdpGso = o.UdpGso;
            try { io.AcceptZeroChecksum = o.Udp6ZeroChecksumRx; }
            catch (VSwitch.Core.Ports.Linux.PortException) { io.Dispose(); throw; }
            try
            {
                Datapath.AddPort(id => new SwitchPort(id, io, Network.Underlay));
            }
            catch
            {
                io.Dispose();
                throw;
            }
            Tunnel = io;
            Overlay = o;
            _underlayIPv6 = io.IsIPv6;
            LearnUnknownVteps();
            RestorePins(TunnelPortName);
            if (persist) Store?.SetMeta("overlay", JsonSerializer.Serialize(o, OverlayJson));
            _log.LogInformation("VXLAN endpoint {Local}:{Port} open as port {Port}", o.Local, o.Port, TunnelPortName);
        }
    }

    /// <summary>
    /// Opens this host's VXLAN endpoint at run time, or moves it to another address or port (the VXLAN
    /// networks keep their VNIs, VTEPs and remote MACs). Stored before it answers. If the new endpoint
    /// cannot be opened (an address this host does not have), the old one is opened again.
    /// </summary>
    public OverlayView SetOverlay(OverlayConfig o)
    {
        var errors = new VSwitchConfig { Overlay = o }.Validate().Where(e => e.StartsWith("overlay", StringComparison.Ordinal)).ToList();
        if (errors.Count > 0) throw new InvalidRequestException(string.Join("; ", errors));
        lock (_gate)
        {
            var old = Overlay;
            if (old is not null && old.Local == o.Local && old.Port == o.Port && old.UdpGso == o.UdpGso && old.Udp6ZeroChecksumRx == o.Udp6ZeroChecksumRx) return GetOverlay();
            // The VTEPs and remote MACs stay with the networks: they must be of the new endpoint's family.
            foreach (var n in _networkConfigs.Values)
                foreach (var v in n.Vteps)
                    if (OverlayConfig.VtepError(v, o.Local) is { } why)
                        throw new InvalidRequestException($"overlay.local: network '{n.Name}' has VTEP {v}: {why} (remove it first: vsctl vtep del {n.Name} {v})");
            if (Tunnel is not null) CloseOverlay(persist: false);
            try { StartOverlay(o); }
            catch (Exception e) when (e is VSwitch.Core.Ports.Linux.PortException or InvalidOperationException)
            {
                if (old is not null) StartOverlay(old, persist: false);
                throw new InvalidRequestException($"overlay: cannot open the VXLAN endpoint {o.Local}:{o.Port}: {e.Message}");
            }
            return GetOverlay();
        }
    }

    /// <summary>Closes the VXLAN endpoint; refused while a VXLAN network needs it.</summary>
    public void RemoveOverlay()
    {
        lock (_gate)
        {
            if (Tunnel is null) throw new NotFoundException("there is no VXLAN endpoint to remove");
            var vxlan = _networkConfigs.Values.Where(n => n.Vni is not null).Select(n => $"'{n.Name}'").ToList();
            if (vxlan.Count > 0)
                throw new ConflictException($"the VXLAN endpoint carries network(s) {string.Join(", ", vxlan)}: delete them first (or move the endpoint with 'vsctl overlay set')");
            CloseOverlay(persist: true);
        }
    }

    private void CloseOverlay(bool persist)
    {
        var port = Datapath.RemovePort(TunnelPortName);
        WaitQuiescent(Datapath.Topology.Version);
        ForgetRxQueues(port.Id);
        port.Io.Dispose();
        _log.LogInformation("VXLAN endpoint {Local}:{Port} closed", Overlay?.Local, Overlay?.Port);
        Tunnel = null;
        Overlay = null;
        if (persist) Store?.DeleteMeta("overlay");
    }

    private OverlayConfig? StoredOverlay() =>
        Store?.GetMeta("overlay") is { } json ? JsonSerializer.Deserialize<OverlayConfig>(json, OverlayJson) : null;

    /// <summary>Publishes a VXLAN network's VTEP list to the datapath.</summary>
    private void ApplyVteps(NetworkConfig n)
    {
        if (n.Vni is null) return;
        Datapath.SetVteps(n.Name, n.Vteps.Select(v => ParseVtep(v, "vtep")), n.AcceptUnknownVteps);
        LearnUnknownVteps();
    }

    /// <summary>The endpoint gives IPv6 sources it does not know a handle only while some VXLAN network accepts unknown VTEPs.</summary>
    private void LearnUnknownVteps()
    {
        if (Tunnel is { } t) t.LearnsUnknownVteps = _networkConfigs.Values.Any(n => n.Vni is not null && n.AcceptUnknownVteps);
    }

    /// <summary>
    /// A remote VTEP address as the datapath names it (<see cref="VSwitch.Core.Flow.VtepRemote"/>: an IPv4 address, or an
    /// IPv6 one's handle); a bad address, or one of another family than the endpoint's, is an <see cref="InvalidRequestException"/> naming it.
    /// </summary>
    private uint ParseVtep(string vtep, string field)
    {
        if (OverlayConfig.VtepError(vtep, Overlay?.Local) is { } why) throw new InvalidRequestException($"{field}: {why}");
        try { return VSwitch.Core.Flow.VtepRemote.FromAddress(System.Net.IPAddress.Parse(vtep)); }
        catch (ArgumentException e) { throw new InvalidRequestException($"{field}: {e.Message}"); }
    }

    public void AddVtep(string network, string vtep)
    {
        lock (_gate)
        {
            var n = _networkConfigs.GetValueOrDefault(network) ?? throw NoNetwork(network);
            if (n.Vni is null) throw new InvalidRequestException($"network '{network}' has no vni: it is not a VXLAN network");
            uint ip = ParseVtep(vtep, "vtep");
            if (Overlay is { Local: { } l } && System.Net.IPAddress.Parse(l).Equals(System.Net.IPAddress.Parse(vtep))) throw new InvalidRequestException($"vtep {vtep} is this host's own VTEP address");
            string canonical = VSwitch.Core.Flow.VtepRemote.Format(ip);
            if (n.Vteps.Contains(canonical)) throw new ConflictException($"vtep {canonical} is already in network '{network}'");
            n.Vteps.Add(canonical);
            ApplyVteps(n);
            Store?.SaveNetwork(n);
        }
    }

    /// <summary>Removes a remote VTEP from a VXLAN network; one that is not in its list is a <see cref="NotFoundException"/>.</summary>
    public void RemoveVtep(string network, string vtep)
    {
        lock (_gate)
        {
            var n = _networkConfigs.GetValueOrDefault(network) ?? throw NoNetwork(network);
            string canonical = VSwitch.Core.Flow.VtepRemote.Format(ParseVtep(vtep, "vtep"));
            if (!n.Vteps.Remove(canonical)) throw new NotFoundException($"vtep {vtep} is not in network '{network}'");
            ApplyVteps(n);
            Store?.SaveNetwork(n);
        }
    }

    public IReadOnlyDictionary<string, NetworkConfig> NetworkConfigs
    {
        get { lock (_gate) return new Dictionary<string, NetworkConfig>(_networkConfigs); }
    }

    /// <summary>
    /// A static remote MAC: <paramref name="mac"/> lives behind <paramref name="vtep"/> on a VXLAN network.
    /// Kept in the state store once acknowledged, restored at start, and removed only by <see cref="RemoveMac"/>
    /// or with its network (a flush forgets learned entries only).
    /// </summary>
    public void AddRemoteMac(string network, string mac, string vtep, bool persist = true)
    {
        lock (_gate)
        {
            var net = Datapath.Topology.NetworkByName(network) ?? throw NoNetwork(network);
            if (net.Vni is null) throw new InvalidRequestException($"network '{network}' has no vni");
            var tunnel = Datapath.Topology.TunnelPort ?? throw new InvalidRequestException("no VXLAN endpoint is open (configure overlay.local)");
            if (!MacAddress.TryParse(mac, out ulong m) || MacAddress.IsMulticast(m)) throw new InvalidRequestException($"mac: '{mac}' is not a unicast MAC address");
            uint remote = ParseVtep(vtep, "vtep");
            Datapath.MacTable.AddStatic(net.Id, net.Vlan, m, tunnel.Id, remote);
            if (persist) Store?.SaveRemoteMac(network, MacAddress.Format(m), VSwitch.Core.Flow.VtepRemote.Format(remote));
        }
    }

    /// <summary>
    /// Removes one MAC entry of a network, learned or static (a stored remote MAC too, even when the table
    /// no longer had it); no entry is a <see cref="NotFoundException"/>.
    /// </summary>
    public void RemoveMac(string network, string mac)
    {
        lock (_gate)
        {
            var net = Datapath.Topology.NetworkByName(network) ?? throw NoNetwork(network);
            if (!MacAddress.TryParse(mac, out ulong m)) throw new InvalidRequestException($"mac: '{mac}' is not a MAC address");
            bool removed = Datapath.MacTable.Remove(net.Id, m);
            Store?.DeleteRemoteMac(network, MacAddress.Format(m));
            if (!removed) throw new NotFoundException($"no entry for {mac} in network '{network}'");
        }
    }
}
