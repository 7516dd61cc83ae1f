using System.Net;
using VSwitch.Core.Wire;
using VSwitchd.Config;
using VSwitchd.Host;

namespace VSwitchd.Runtime;

// Attachments whose interface a container runtime moves and configures itself (Docker's remote network driver):
// vswitchd makes the TAP in its own namespace, the runtime moves it into its sandbox, renames it ethN and gives it
// the MAC and address the switch recorded. The switch follows where the device is: in its own namespace until
// the runtime joins it and after the runtime leaves, in the sandbox meanwhile (found there by its MAC: the runtime
// chooses the name). A restart after a crash opens the persistent TAP again wherever it is, so a running container
// keeps its interface, and releases what a runtime deleted while the switch was down: a sandbox that is gone, or a
// device that is nowhere.
public sealed partial class Attachments
{
    /// <summary>The owner recorded for an address that Docker's IPAM asked for before its endpoint exists.</summary>
    public const string ReservationPrefix = "ipam-";

    /// <summary>Docker's own namespace of vswitchd: a TAP that is in no sandbox is here.</summary>
    private const string OwnNetns = "/proc/self/ns/net";

    /// <summary>How long a runtime's endpoint may stay out of any sandbox (created and not joined, or left and not deleted).</summary>
    public static readonly TimeSpan UnjoinedGrace = TimeSpan.FromMinutes(2);

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTime> _unjoinedSince = new();

    internal static bool IsReservation(string owner) => owner.StartsWith(ReservationPrefix, StringComparison.Ordinal);

    /// <summary>A runtime's attachment by its endpoint id (<see cref="Attachment.ContainerId"/>), or null.</summary>
    public Attachment? ByEndpoint(string runtime, string endpointId)
    {
        lock (_gate) return _byId.Values.FirstOrDefault(a => a.Runtime == runtime && a.ContainerId == endpointId);
    }

    /// <summary>
    /// A TAP for a runtime's endpoint, in vswitchd's namespace, named "vsa" + the attachment id: the runtime moves it.
    /// <paramref name="address"/> (with or without the prefix) is the one the runtime's IPAM chose; when vswitch's own
    /// IPAM reserved it (<see cref="Reserve"/>), the reservation becomes the attachment's. Null: the lowest free address.
    /// </summary>
    public Attachment CreateForRuntime(string runtime, string network, string endpointId, string? address, string? mac, string? name)
    {
        if (_rt.Datapath.Topology.NetworkByName(network) is null) throw new NotFoundException($"no network named '{network}'");
        ulong m;
        if (mac is not null)
        {
            if (!MacAddress.TryParse(mac, out m) || MacAddress.IsMulticast(m) || m == 0)
                throw new InvalidRequestException($"mac: '{mac}' is not a unicast MAC address");
        }
        else m = RandomMac();
        var cfg = _rt.NetworkConfig(network) ?? new NetworkConfig { Name = network };
        Ipv4Pool? pool;
        try { pool = Ipv4Pool.Of(cfg.Subnet, cfg.Gateway); }
        catch (ArgumentException e) { throw new InvalidRequestException($"network '{network}': {e.Message}"); }
        int mtu = _rt.NetworkMtu(cfg);
        Attachment created;
        lock (_gate)
        {
            if (_stopping) throw new UnavailableException("vswitchd is stopping");
            if (ByEndpoint(runtime, endpointId) is { } dup)
                throw new ConflictException($"endpoint '{endpointId}' already exists (attachment {dup.Id} on network {dup.Network})");
            string id = NewId();
            string? cidr = null;
            if (pool is { } p)
            {
                uint a;
                if (address is not null)
                {
                    try { a = p.ParseRequested(address.Trim()); }
                    catch (ArgumentException e) { throw new InvalidRequestException(e.Message); }
                    if (p.WhyNot(a) is { } why) throw new InvalidRequestException($"address: {why}");
                    cidr = p.Cidr(a);
                    string? reservation = _rt.Store?.Allocations().FirstOrDefault(x => x.Network == network && x.Address == cidr && IsReservation(x.Attachment)).Attachment;
                    if (reservation is not null) _rt.Store!.Release(network, cidr);
                    else if (Holders(network, p).TryGetValue(a, out var holder))
                        throw new ConflictException($"address {Ipv4Pool.ToAddress(a)} is already in use on network '{network}' by {holder}"
                            + " (Docker's IPAM and vswitch's differ: create the network with --ipam-driver vswitch)");
                }
                else
                {
                    a = p.NextFree(Holders(network, p).Keys.ToHashSet()) ?? throw new ConflictException($"network '{network}': no free address left in {p.Subnet}");
                    cidr = p.Cidr(a);
                }
                if (_rt.Store is { } st && !st.TryAllocate(network, cidr, id))
                    throw new ConflictException($"address {Ipv4Pool.ToAddress(a)} is already in use on network '{network}'");
            }
            else if (address is not null && !address.StartsWith("0.0.0.0", StringComparison.Ordinal))
                throw new InvalidRequestException($"address: network '{network}' has no subnet, so it takes no address ({address})");
            var att = new Attachment
            {
                Id = id, Network = network, Netns = "", ContainerId = endpointId, Ifname = "", Port = "vsa" + id,
                Name = DisplayName(name, endpointId, endpointId), Mac = MacAddress.Format(m), Mtu = mtu, Address = cidr,
                Gateway = pool?.GatewayAddress, Source = runtime, Runtime = runtime, CreatedAt = DateTime.UtcNow,
            };
            try
            {
                AddRuntimePort(att, OwnNetns, att.Port, create: true);
                _rt.Store?.SaveAttachment(att);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                if (cidr is not null) _rt.Store?.Release(network, cidr);
                if (_rt.Datapath.Topology.PortByName(att.Port) is not null)
                    try { _rt.RemovePort(att.Port, persist: false); } catch (Exception e2) when (e2 is not OutOfMemoryException) { }
                throw new InvalidRequestException($"endpoint {endpointId} on {network}: {e.Message}");
            }
            _byId[id] = att;
            _log.LogInformation("{Runtime} endpoint {Endpoint} on {Network}: port {Port}, {Address}, mac {Mac}",
                runtime, Short(endpointId), network, att.Port, cidr ?? "no address", att.Mac);
            created = att;
        }
        RaiseChanged();
        return created;
    }

    /// <summary>The runtime is about to move the endpoint's TAP into its sandbox <paramref name="sandbox"/> (a path).</summary>
    public Attachment Join(string runtime, string endpointId, string sandbox)
    {
        lock (_gate)
        {
            var a = ByEndpoint(runtime, endpointId) ?? throw new NotFoundException($"no endpoint '{endpointId}'");
            // The sandbox's identity is taken once the device shows there (Follow): at Join, Docker may not have made it yet.
            var joined = a with { Netns = sandbox, NetnsDev = 0, NetnsInode = 0, Ifname = "" };
            _byId[a.Id] = joined;
            _rt.Store?.SaveAttachment(joined);
            _log.LogInformation("{Runtime} endpoint {Endpoint} joins sandbox {Sandbox}: port {Port} goes there", runtime, Short(endpointId), sandbox, a.Port);
            return joined;
        }
    }

    /// <summary>The runtime took the TAP out of its sandbox (back into vswitchd's namespace, named as the port).</summary>
    public void Leave(string runtime, string endpointId)
    {
        lock (_gate)
        {
            var a = ByEndpoint(runtime, endpointId) ?? throw new NotFoundException($"no endpoint '{endpointId}'");
            var left = a with { Netns = "", NetnsDev = 0, NetnsInode = 0, Ifname = "" };
            _byId[a.Id] = left;
            _rt.Store?.SaveAttachment(left);
            Follow(left, null, a.Port);
            _log.LogInformation("{Runtime} endpoint {Endpoint} left sandbox {Sandbox}", runtime, Short(endpointId), a.Netns);
        }
    }

    /// <summary>
    /// Who the container is, as the runtime calls it (learned after the join): its name (what the switch's DNS will
    /// answer for), its id and its labels. Labels that are not valid attachment labels (Kubernetes' rules: a value
    /// with spaces or a URL) are left out, each named in the log.
    /// </summary>
    public void SetRuntimeIdentity(string runtime, string endpointId, string name, string containerId, IReadOnlyDictionary<string, string>? labels)
    {
        Dictionary<string, string>? kept = null;
        if (labels is { Count: > 0 })
        {
            kept = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (k, v) in labels)
            {
                if ((VSwitch.Api.Labels.WhyNotKey(k) ?? VSwitch.Api.Labels.WhyNotValue(k, v)) is { } why)
                    _log.LogWarning("{Runtime} container {Name}: label left out: {Why}", runtime, name, why);
                else if (kept.Count < VSwitch.Api.Labels.MaxLabels) kept[k] = v;
            }
            if (kept.Count == 0) kept = null;
        }
        lock (_gate)
        {
            if (ByEndpoint(runtime, endpointId) is not { } a) return;
            string shown = DisplayName(name.TrimStart('/'), endpointId, endpointId);
            bool sameLabels = VSwitch.Api.Labels.Format(a.Labels) == VSwitch.Api.Labels.Format(kept);
            if (a.Name == shown && a.RuntimeContainerId == containerId && sameLabels) return;
            var named = a with { Name = shown, RuntimeContainerId = containerId, Labels = kept };
            _byId[a.Id] = named;
            _rt.Store?.SaveAttachment(named);
            _log.LogInformation("{Runtime} endpoint {Endpoint} is container {Name} ({Container}), labels {Labels}", runtime, Short(endpointId), shown,
                Short(containerId), kept is null ? "none" : VSwitch.Api.Labels.Format(kept));
        }
        RaiseChanged();
    }

    /// <summary>
    /// An address for Docker's IPAM before its endpoint exists: the lowest free one (or <paramref name="wanted"/>),
    /// recorded under a reservation id so that nothing else takes it; the endpoint then takes it over.
    /// </summary>
    public string Reserve(string network, string? wanted)
    {
        var cfg = _rt.NetworkConfig(network) ?? throw new NotFoundException($"no network named '{network}'");
        var pool = Ipv4Pool.Of(cfg.Subnet, cfg.Gateway) ?? throw new InvalidRequestException($"network '{network}' has no subnet");
        lock (_gate)
        {
            uint a;
            var held = Holders(network, pool);
            if (wanted is not null)
            {
                try { a = pool.ParseRequested(wanted.Trim()); }
                catch (ArgumentException e) { throw new InvalidRequestException(e.Message); }
                if (pool.WhyNot(a) is { } why) throw new InvalidRequestException($"address: {why}");
                if (held.TryGetValue(a, out var holder))
                    throw new ConflictException($"address {Ipv4Pool.ToAddress(a)} is already in use on network '{network}' by {holder}");
            }
            else a = pool.NextFree(held.Keys.ToHashSet()) ?? throw new ConflictException($"network '{network}': no free address left in {pool.Subnet}");
            string cidr = pool.Cidr(a);
            string owner = ReservationPrefix + NewId();
            if (_rt.Store is not { } st || !st.TryAllocate(network, cidr, owner))
                throw new ConflictException($"address {Ipv4Pool.ToAddress(a)} is already in use on network '{network}'");
            return cidr;
        }
    }

    /// <summary>Gives a reserved address back (Docker's ReleaseAddress); an address an endpoint holds goes with the endpoint.</summary>
    public void Unreserve(string network, string address)
    {
        if (_rt.Store is not { } st) return;
        string ip = address.Split('/')[0];
        foreach (var (n, addr, owner) in st.Allocations())
            if (n == network && addr.Split('/')[0] == ip && IsReservation(owner)) st.Release(n, addr);
    }

    /// <summary>
    /// The TAP as a switch port where it is now (<paramref name="netns"/>, named <paramref name="device"/>): made there
    /// when <paramref name="create"/> (vswitchd's namespace), else opened again (a persistent TAP after a crash) or
    /// taken from a predecessor (a hitless restart). Persistent while vswitchd runs, so a crash leaves it to the container.
    /// </summary>
    private void AddRuntimePort(Attachment a, string? netns, string device, bool create)
    {
        var pc = RuntimePortConfig(a, create ? null : netns);
        pc.Persistent = true;
        // Not on the new device in vswitchd's namespace: the host would route the subnet to it until Docker moves it.
        if (create) (pc.Addresses, pc.Gateway) = ([], null);
        _rt.AddPort(pc, persist: false, device: device);
        // The port's recorded place follows the device (the port view reads its state there); its address is what
        // the runtime configures, and port security knows it from the first frame.
        _rt.ReplacePortConfig(RuntimePortConfig(a, netns == OwnNetns ? null : netns));
        _rt.ApplyPortSecurity(a.Port);
    }

    private static PortConfig RuntimePortConfig(Attachment a, string? netns) => new()
    {
        Name = a.Port, Type = "tap", Network = a.Network, Netns = netns, Mac = a.Mac, Mtu = a.Mtu, Gateway = a.Gateway,
        PortSecurity = a.PortSecurity, PinMac = a.PinMac, Addresses = a.Address is null ? [] : [a.Address],
    };

    /// <summary>
    /// Records where the runtime put the device, so that the port view and a restart look there; the sandbox's identity
    /// is taken when the device is first seen in it (Docker makes the sandbox's namespace after Join: its prestart hook).
    /// </summary>
    private void Follow(Attachment a, string? netns, string device)
    {
        _rt.ReplacePortConfig(RuntimePortConfig(a, netns));
        var moved = netns is null ? a with { Ifname = "" } : a with { Ifname = device };
        if (netns is not null && a.NetnsDev == 0 && NetnsIdentity(netns) is var (dev, ino)) moved = moved with { NetnsDev = dev, NetnsInode = ino };
        if (moved != a)
        {
            _byId[a.Id] = moved;
            _rt.Store?.SaveAttachment(moved);
        }
    }

    /// <summary>Where the endpoint's TAP is: (namespace, name) in its sandbox (found by its MAC), else in vswitchd's namespace by its port name; null when nowhere.</summary>
    private static (string? Netns, string Device)? Locate(Attachment a)
    {
        if (a.Netns.Length > 0 && NetnsIdentity(a.Netns) is var (dev, ino) && (a.NetnsDev == 0 || dev == a.NetnsDev && ino == a.NetnsInode)
            && DeviceByMac(a.Netns, a.Mac) is { } name)
            return (a.Netns, name);
        if (NetConfig.LinkExists(a.Port)) return (null, a.Port);
        return null;
    }

    /// <summary>The interface with this MAC in a namespace, or null.</summary>
    private static string? DeviceByMac(string netns, string mac)
    {
        NetConfig.CommandResult r;
        try { r = NetConfig.Run(netns, "ip", "-o", "link", "show"); }
        catch (VSwitch.Core.Ports.Linux.PortException) { return null; }
        if (r.ExitCode != 0) return null;
        foreach (var line in r.Output.Split('\n'))
        {
            // "12: eth0@if13: <BROADCAST,...> mtu 1500 ... link/ether 02:..:.. brd ff:..."
            if (!line.Contains("link/ether " + mac, StringComparison.OrdinalIgnoreCase)) continue;
            var parts = line.Split(':', 3);
            if (parts.Length < 3) continue;
            string name = parts[1].Trim();
            int at = name.IndexOf('@');
            return at > 0 ? name[..at] : name;
        }
        return null;
    }

    /// <summary>At start: the TAP opened again where the runtime left it, or the attachment released when it is nowhere.</summary>
    private void RestoreRuntimeAttachment(StateStore st, Attachment a)
    {
        string? why = null;
        if (_rt.Datapath.Topology.NetworkByName(a.Network) is null) why = $"network {a.Network} no longer exists";
        else if (_rt.Adopting?.Has(a.Port) == true)
        {
            // A hitless restart: the predecessor's descriptor, wherever the device is.
            try
            {
                AddRuntimePort(a, a.Netns.Length > 0 ? a.Netns : OwnNetns, a.Ifname.Length > 0 ? a.Ifname : a.Port, create: false);
                _byId[a.Id] = a;
                return;
            }
            catch (Exception e) when (e is not OutOfMemoryException) { why = e.Message; }
        }
        else if (Locate(a) is not var (netns, device))
            why = a.Netns.Length > 0 ? $"its TAP is neither in sandbox {a.Netns} nor in vswitchd's namespace (deleted while vswitchd was down)" : "its TAP is gone";
        else if (netns is null)
            // Docker joins an endpoint as soon as it creates it and deletes it as soon as it leaves: one that is in no
            // sandbox across a restart was left and deleted while vswitchd was down (its DeleteEndpoint found nobody).
            why = "it is in no container's sandbox (Docker left and deleted it while vswitchd was down)";
        else
        {
            try
            {
                AddRuntimePort(a, netns ?? OwnNetns, device, create: false);
                var now = netns is null ? a with { Netns = "", NetnsDev = 0, NetnsInode = 0, Ifname = "" } : a with { Ifname = device };
                if (netns is not null && now.NetnsDev == 0 && NetnsIdentity(netns) is var (dev, ino)) now = now with { NetnsDev = dev, NetnsInode = ino };
                _byId[a.Id] = now;
                if (now != a) st.SaveAttachment(now);
                _log.LogInformation("restored {Runtime} endpoint {Endpoint}: {Device} in {Where} on {Network}, {Address}",
                    a.Runtime, Short(a.ContainerId), device, netns ?? "vswitchd's namespace", a.Network, a.Address ?? "no address");
                return;
            }
            catch (Exception e) when (e is not OutOfMemoryException) { why = e.Message; }
        }
        st.DeleteAttachment(a.Id);
        if (_rt.Datapath.Topology.PortByName(a.Port) is not null)
            try { _rt.RemovePort(a.Port, persist: false); } catch (NotFoundException) { }
        DeleteStrayDevice(a);
        _log.LogInformation("released {Runtime} endpoint {Endpoint} ({Address}): {Why}", a.Runtime, Short(a.ContainerId), a.Address ?? "no address", why);
    }

    /// <summary>
    /// Every 2 s: a joined endpoint's device is looked for in its sandbox (to learn the name the runtime gave it), and
    /// an endpoint whose sandbox vanished (the container removed while nobody told the switch) is detached.
    /// </summary>
    private void WatchRuntimeAttachment(Attachment a)
    {
        string? why = null;
        if (a.Netns.Length > 0) _unjoinedSince.TryRemove(a.Id, out _);
        if (_rt.Datapath.Topology.PortByName(a.Port) is null) why = $"port {a.Port} was removed";
        else if (a.Netns.Length == 0 && DateTime.UtcNow - _unjoinedSince.GetOrAdd(a.Id, DateTime.UtcNow) > UnjoinedGrace)
            // A DeleteEndpoint that failed (vswitchd was busy restarting) is never sent again.
            why = $"in no container's sandbox for {UnjoinedGrace.TotalSeconds:F0} s (Docker deleted it without telling the switch)";
        else if (a.Netns.Length > 0)
        {
            // Until the device was seen in the sandbox (NetnsDev 0) the sandbox may not exist yet: Docker makes it after Join.
            var identity = NetnsIdentity(a.Netns);
            if (a.NetnsDev != 0 && identity is null) why = $"sandbox {a.Netns} is gone";
            else if (a.NetnsDev != 0 && identity != (a.NetnsDev, a.NetnsInode)) why = $"sandbox {a.Netns} was replaced";
            else if ((a.Ifname.Length == 0 || a.NetnsDev == 0) && identity is not null && DeviceByMac(a.Netns, a.Mac) is { } name)
                lock (_gate)
                    if (_byId.TryGetValue(a.Id, out var now) && now.Netns == a.Netns) Follow(now, a.Netns, name);
        }
        if (why is null) return;
        try { Detach(a.Id, $"detached ({why})"); }
        catch (Exception e) when (e is not OutOfMemoryException) { _log.LogWarning("detaching {Id}: {Error}", a.Id, e.Message); }
    }

    private List<string> CheckRuntimeAttachment(Attachment a)
    {
        var problems = new List<string>();
        if (_rt.Datapath.Topology.PortByName(a.Port) is null) problems.Add($"port {a.Port} is not on the switch");
        if (Locate(a) is not var (netns, device)) problems.Add($"its TAP {a.Port} is nowhere");
        else if (a.Netns.Length > 0 && netns is null) problems.Add($"its TAP is in vswitchd's namespace, not in sandbox {a.Netns}");
        else if (netns is not null && a.Address is not null
            && !NetConfig.Run(netns, "ip", "-o", "addr", "show", "dev", device).Output.Contains(" " + a.Address + " ", StringComparison.Ordinal))
            problems.Add($"{device} in {netns} does not have {a.Address}");
        return problems;
    }

    /// <summary>A persistent TAP of a released endpoint left in vswitchd's namespace (the runtime took it out while vswitchd was down).</summary>
    private void DeleteStrayDevice(Attachment a)
    {
        if (!NetConfig.LinkExists(a.Port) || !File.Exists($"/sys/class/net/{a.Port}/tun_flags")) return;
        var r = NetConfig.Run(null, "ip", "link", "del", a.Port);
        if (r.ExitCode != 0) _log.LogWarning("removing stray TAP {Port}: {Error}", a.Port, r.Output.Trim());
    }

    private static string Short(string id) => id.Length > 12 ? id[..12] : id;
}
