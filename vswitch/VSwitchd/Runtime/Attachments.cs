using System.Net;
using System.Security.Cryptography;
using VSwitch.Api;
using VSwitch.Core.Ports.Linux;
using VSwitch.Core.Wire;
using VSwitchd.Config;
using VSwitchd.Host;

namespace VSwitchd.Runtime;

/// <summary>
/// A container's interface on a network: a TAP the daemon created, moved into the container's
/// namespace and renamed there (eth0), with an address from the network's subnet. Keyed by
/// (container id, interface name) like a CNI attachment. Stored, so a restarted daemon recreates it.
/// </summary>
public sealed record Attachment
{
    public string Id { get; init; } = "";
    public string Network { get; init; } = "";
    /// <summary>As given: a name under /run/netns or a path (/proc/PID/ns/net, /run/netns/X).</summary>
    public string Netns { get; init; } = "";
    public string ContainerId { get; init; } = "";
    /// <summary>What people call the container (see AttachRequest.Name); null in attachments stored before it existed.</summary>
    public string? Name { get; init; }
    public string Ifname { get; init; } = "eth0";
    /// <summary>The switch port (the TAP's name before it was moved and renamed).</summary>
    public string Port { get; init; } = "";
    public string Mac { get; init; } = "";
    public int Mtu { get; init; }
    /// <summary>Address with prefix (10.1.0.2/24), or null on a network without a subnet.</summary>
    public string? Address { get; init; }
    public string? Gateway { get; init; }
    /// <summary>On a dual-stack network: the IPv6 address with prefix (fd00:1::2/64) from its subnet6, and the IPv6 gateway.</summary>
    public string? Address6 { get; init; }
    public string? Gateway6 { get; init; }
    /// <summary>Who asked (vsctl, cni:NAME): CNI's GC only removes its own.</summary>
    public string? Source { get; init; }
    /// <summary>Identity of the namespace (device and inode of its nsfs file): a new namespace under the same name is another.</summary>
    public ulong NetnsDev { get; init; }
    public ulong NetnsInode { get; init; }
    public DateTime CreatedAt { get; init; }
    /// <summary>Port security on its port (default on: the switch assigned the MAC and address, so it knows what the container may send as).</summary>
    public bool PortSecurity { get; init; } = true;
    /// <summary>Its MAC may not move to another port (default on).</summary>
    public bool PinMac { get; init; } = true;
    /// <summary>
    /// The container runtime that moves and configures the interface itself ("docker"), or null when vswitchd does
    /// (vsctl attach, CNI). A runtime's TAP is made in vswitchd's own namespace and named <see cref="Port"/>; the
    /// runtime moves it into its sandbox (<see cref="Netns"/>, empty until it joins) and renames it (<see cref="Ifname"/>,
    /// empty until seen there).
    /// </summary>
    public string? Runtime { get; init; }
    /// <summary>The runtime's own id of the container (Docker's container id; <see cref="ContainerId"/> is then its endpoint id).</summary>
    public string? RuntimeContainerId { get; init; }
    /// <summary>Labels (app=web): the container's identity for services and policy; null in attachments stored before they existed.</summary>
    public Dictionary<string, string>? Labels { get; init; }
}

/// <summary>
/// Attaches namespaces to networks and detaches them: IPAM (lowest free address of the subnet,
/// persisted before the device exists), the TAP's life, and a watch every 2 s that detaches
/// attachments whose namespace vanished (a container killed without DEL) or whose port was removed.
/// </summary>
public sealed partial class Attachments : IHostedService, IDisposable
{
    public static readonly TimeSpan WatchInterval = TimeSpan.FromSeconds(2);

    private readonly object _gate = new();
    private readonly Dictionary<string, Attachment> _byId = [];
    private readonly SwitchRuntime _rt;
    private readonly ILogger _log;
    private Timer? _timer;
    private volatile bool _stopping;

    public Attachments(SwitchRuntime rt, ILogger<Attachments> log)
    {
        _rt = rt;
        _log = log;
        rt.Attachments = this;
    }

    public Attachment[] List()
    {
        lock (_gate) return _byId.Values.OrderBy(a => a.CreatedAt).ThenBy(a => a.Id).ToArray();
    }

    /// <summary>An attachment by id, or <see cref="NotFoundException"/>.</summary>
    public Attachment Get(string id)
    {
        lock (_gate) return _byId.GetValueOrDefault(id) ?? throw new NotFoundException($"no attachment '{id}'");
    }

    /// <summary>The attachments that match every filter given (null: any).</summary>
    public Attachment[] Find(string? network, string? containerId, string? netns, string? ifname) =>
        List().Where(a => (network is null || a.Network == network) && (containerId is null || a.ContainerId == containerId)
            && (netns is null || a.Netns == netns) && (ifname is null || a.Ifname == ifname)).ToArray();

    /// <summary>Addresses in use on a network: (address with prefix, attachment).</summary>
    public (string Address, Attachment Owner)[] Allocations(string network)
    {
        lock (_gate)
            return _byId.Values.Where(a => a.Network == network && a.Address is not null)
                .Select(a => (a.Address!, a))
                .OrderBy(x => Ipv4Pool.ToUInt(IPAddress.Parse(x.Item1.Split('/')[0]))).ToArray();
    }

    public Attachment Attach(AttachRequest req)
    {
        string network = req.Network?.Trim() is { Length: > 0 } n ? n : throw new InvalidRequestException("network: must be given");
        string netns = req.Netns?.Trim() is { Length: > 0 } s ? s : throw new InvalidRequestException("netns: must be given (a name under /run/netns or a path like /proc/PID/ns/net)");
        string ifname = string.IsNullOrWhiteSpace(req.Ifname) ? "eth0" : req.Ifname.Trim();
        if (ifname.Length > 15 || ifname is "." or ".." || ifname.Any(c => c is '/' or ':' or '\0' || char.IsWhiteSpace(c)))
            throw new InvalidRequestException($"ifname: '{ifname}' is not an interface name (at most 15 characters, no '/', ':' or spaces)");
        string containerId = string.IsNullOrWhiteSpace(req.ContainerId) ? netns : req.ContainerId.Trim();
        ulong mac;
        if (req.Mac is not null)
        {
            if (!MacAddress.TryParse(req.Mac, out mac) || MacAddress.IsMulticast(mac) || mac == 0)
                throw new InvalidRequestException($"mac: '{req.Mac}' is not a unicast MAC address");
        }
        else mac = RandomMac();

        if (_rt.Datapath.Topology.NetworkByName(network) is null) throw new NotFoundException($"no network named '{network}'");
        var cfg = _rt.NetworkConfig(network) ?? new NetworkConfig { Name = network };
        Ipv4Pool? pool;
        try { pool = Ipv4Pool.Of(cfg.Subnet, cfg.Gateway); }
        catch (ArgumentException e) { throw new InvalidRequestException($"network '{network}': {e.Message}"); }
        Ipv6Pool? pool6;
        try { pool6 = Ipv6Pool.Of(cfg.Subnet6, cfg.Gateway6); }
        catch (ArgumentException e) { throw new InvalidRequestException($"network '{network}': {e.Message}"); }
        if (req.Ip is not null && pool is null)
            throw new InvalidRequestException($"ip: network '{network}' has no subnet, so it hands out no addresses (create it with a subnet)");
        string path;
        try { path = NetConfig.NetnsPath(netns)!; }
        catch (ArgumentException e) { throw new InvalidRequestException($"netns: {e.Message}"); }
        if (NetnsIdentity(path) is not var (dev, ino))
            throw new InvalidRequestException($"netns: network namespace '{netns}' does not exist ({path} not found)");
        if (req.Mtu is < 68 or > 9000) throw new InvalidRequestException($"mtu: {req.Mtu} must be 68..9000");
        if (VSwitch.Api.Labels.WhyNot(req.Labels) is { } badLabel) throw new InvalidRequestException("labels: " + badLabel);
        int mtu = req.Mtu ?? _rt.NetworkMtu(cfg);

        Attachment attached;
        lock (_gate)
        {
            if (_stopping) throw new UnavailableException("vswitchd is stopping");
            if (_byId.Values.FirstOrDefault(a => a.ContainerId == containerId && a.Ifname == ifname) is { } dup)
                throw new ConflictException($"container '{containerId}' already has {ifname} attached (attachment {dup.Id} on network {dup.Network})");
            if (_byId.Values.FirstOrDefault(a => a.NetnsDev == dev && a.NetnsInode == ino && a.Ifname == ifname) is { } dup2)
                throw new ConflictException($"namespace '{netns}' already has {ifname} attached (attachment {dup2.Id})");
            string id = NewId();
            string? address = null;
            if (pool is { } p)
            {
                uint a;
                if (req.Ip is not null)
                {
                    try { a = p.ParseRequested(req.Ip.Trim()); }
                    catch (ArgumentException e) { throw new InvalidRequestException(e.Message); }
                    if (p.WhyNot(a) is { } why) throw new InvalidRequestException($"ip: {why}");
                    if (Holders(network, p).TryGetValue(a, out var holder))
                        throw new ConflictException($"ip: {Ipv4Pool.ToAddress(a)} is already in use on network '{network}' by {holder}");
                }
                else
                {
                    a = p.NextFree(Holders(network, p).Keys.ToHashSet()) ?? throw new ConflictException($"network '{network}': no free address left in {p.Subnet}");
                }
                address = p.Cidr(a);
                // Persisted before the device exists: a crash after this leaves an address that start-up releases, never one given twice.
                if (_rt.Store is { } st && !st.TryAllocate(network, address, id))
                    throw new ConflictException($"ip: {Ipv4Pool.ToAddress(a)} is already in use on network '{network}'");
            }
            string? address6 = null;
            if (pool6 is { } p6)
            {
                var taken = Holders6(network, p6);
                var a6 = p6.NextFree(taken);
                if (a6 is null)
                {
                    if (address is not null) _rt.Store?.Release(network, address);
                    throw new ConflictException($"network '{network}': no free address left in {p6.Subnet}");
                }
                address6 = p6.Cidr(a6.Value);
                if (_rt.Store is { } st6 && !st6.TryAllocate(network, address6, id))
                {
                    if (address is not null) _rt.Store?.Release(network, address);
                    throw new ConflictException($"{address6} is already in use on network '{network}'");
                }
            }
            var att = new Attachment
            {
                Id = id, Network = network, Netns = netns, ContainerId = containerId, Ifname = ifname, Port = "vsa" + id,
                Name = DisplayName(req.Name, containerId, netns),
                Mac = MacAddress.Format(mac), Mtu = mtu, Address = address, Gateway = pool?.GatewayAddress,
                Address6 = address6, Gateway6 = address6 is null ? null : pool6?.GatewayAddress,
                Source = req.Source, NetnsDev = dev, NetnsInode = ino, CreatedAt = DateTime.UtcNow,
                PortSecurity = req.PortSecurity ?? true, PinMac = req.PinMac ?? true,
                Labels = req.Labels is { Count: > 0 } l ? new Dictionary<string, string>(l, StringComparer.Ordinal) : null,
            };
            try
            {
                CreatePort(att);
                _rt.Store?.SaveAttachment(att);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Whatever refused the device (a name taken by another link, the namespace gone) refuses the attach.
                if (address is not null) _rt.Store?.Release(network, address);
                if (address6 is not null) _rt.Store?.Release(network, address6);
                throw new InvalidRequestException($"attaching {netns} to {network}: {e.Message}");
            }
            _byId[id] = att;
            _log.LogInformation("attached {Netns} ({Container}) {Ifname} to {Network}: port {Port}, {Address}, mac {Mac}",
                netns, containerId, ifname, network, att.Port, address ?? "no address", att.Mac);
            attached = att;
        }
        RaiseChanged();
        return attached;
    }

    /// <summary>
    /// Raised after an attachment comes, goes or changes its labels (outside the lock): services'
    /// selectors and network policy recompute their address sets from <see cref="List"/>.
    /// </summary>
    public event Action? Changed;

    private void RaiseChanged()
    {
        try { Changed?.Invoke(); }
        catch (Exception e) when (e is not OutOfMemoryException) { _log.LogError(e, "a listener of attachment changes failed"); }
    }

    /// <summary>Replaces an attachment's labels (PATCH /v1/attachments/{id}); stored at once.</summary>
    public Attachment SetLabels(string id, Dictionary<string, string>? labels)
    {
        if (VSwitch.Api.Labels.WhyNot(labels) is { } why) throw new InvalidRequestException("labels: " + why);
        Attachment updated;
        lock (_gate)
        {
            if (!_byId.TryGetValue(id, out var a)) throw new NotFoundException($"no attachment '{id}'");
            updated = a with { Labels = labels is { Count: > 0 } ? new Dictionary<string, string>(labels, StringComparer.Ordinal) : null };
            _rt.Store?.SaveAttachment(updated);
            _byId[id] = updated;
            _log.LogInformation("attachment {Id} ({Port}): labels {Labels}", id, a.Port, VSwitch.Api.Labels.Format(updated.Labels));
        }
        RaiseChanged();
        return updated;
    }

    /// <summary>Detaches one attachment by id, or <see cref="NotFoundException"/>.</summary>
    public void Remove(string id)
    {
        if (!Detach(id)) throw new NotFoundException($"no attachment '{id}'");
    }

    /// <summary>
    /// Detaches what a container (CNI's DEL: containerId and ifname) or a namespace (vsctl's detach: netns
    /// and ifname) has attached; nothing attached is a <see cref="NotFoundException"/>.
    /// </summary>
    public void Remove(string? containerId, string? netns, string ifname)
    {
        var found = Find(null, containerId, netns, ifname);
        if (found.Length == 0)
            throw new NotFoundException($"no attachment of {(containerId is not null ? $"container '{containerId}'" : $"namespace '{netns}'")} with interface {ifname}");
        foreach (var a in found) Detach(a.Id);
    }

    /// <summary>Removes the port (which flushes its MACs) and releases the address; false when there is no such attachment.</summary>
    public bool Detach(string id, string reason = "detached")
    {
        lock (_gate)
        {
            if (!_byId.Remove(id, out var a)) return false;
            if (_rt.Datapath.Topology.PortByName(a.Port) is not null)
            {
                try { _rt.RemovePort(a.Port, persist: false); }
                catch (NotFoundException) { } // removed in between: the watch's job is done
            }
            _rt.Store?.DeleteAttachment(a.Id);
            _log.LogInformation("{Reason}: {Netns} ({Container}) {Ifname} from {Network}, port {Port} removed, {Address} released",
                reason, a.Netns, a.ContainerId, a.Ifname, a.Network, a.Port, a.Address ?? "no address");
        }
        RaiseChanged();
        return true;
    }

    /// <summary>What is wrong with an attachment as the namespace sees it (CNI CHECK); empty when all is well.</summary>
    public List<string> Check(Attachment a)
    {
        var problems = new List<string>();
        if (a.Runtime is not null) return CheckRuntimeAttachment(a);
        string path = NetConfig.NetnsPath(a.Netns)!;
        if (NetnsIdentity(path) is not var (dev, ino)) { problems.Add($"namespace {a.Netns} no longer exists"); return problems; }
        if (dev != a.NetnsDev || ino != a.NetnsInode) { problems.Add($"{a.Netns} is another namespace than the one attached"); return problems; }
        if (_rt.Datapath.Topology.PortByName(a.Port) is null) problems.Add($"port {a.Port} is not on the switch");
        var r = NetConfig.Run(a.Netns, "ip", "-o", "addr", "show", "dev", a.Ifname);
        if (r.ExitCode != 0) { problems.Add($"interface {a.Ifname} is missing in {a.Netns}"); return problems; }
        if (a.Address is not null && !r.Output.Contains(" " + a.Address + " ", StringComparison.Ordinal))
            problems.Add($"{a.Ifname} in {a.Netns} does not have {a.Address}");
        if (a.Address6 is not null && !r.Output.Contains(" " + a.Address6 + " ", StringComparison.Ordinal))
            problems.Add($"{a.Ifname} in {a.Netns} does not have {a.Address6}");
        var link = NetConfig.Run(a.Netns, "ip", "-o", "link", "show", "dev", a.Ifname).Output;
        if (!link.Contains(a.Mac, StringComparison.OrdinalIgnoreCase)) problems.Add($"{a.Ifname} in {a.Netns} does not have MAC {a.Mac}");
        return problems;
    }

    /// <summary>
    /// The name shown for an attachment: the one given (a container's or pod's name), else the
    /// container id cut to 12 characters like docker ps, else the namespace's own name.
    /// </summary>
    internal static string DisplayName(string? given, string containerId, string netns)
    {
        if (!string.IsNullOrWhiteSpace(given)) return given.Trim().Length > 64 ? given.Trim()[..64] : given.Trim();
        if (containerId != netns) return containerId.Length > 12 ? containerId[..12] : containerId;
        return Path.GetFileName(netns.TrimEnd('/')) is { Length: > 0 } last && !netns.StartsWith("/proc/", StringComparison.Ordinal) ? last : netns;
    }

    /// <summary>The name an attachment's port has inside its namespace (eth0...), or null when the port is no attachment's.</summary>
    public string? IfnameOf(string port)
    {
        // A runtime's TAP keeps its port name until the runtime renames it in its sandbox.
        lock (_gate) return _byId.Values.FirstOrDefault(a => a.Port == port) is { } a ? (a.Ifname is { Length: > 0 } i ? i : a.Port) : null;
    }

    /// <summary>Who holds an address on a network (see <see cref="Holders"/>), or null when it is free or outside the subnet.</summary>
    public string? HolderOf(string network, string cidr)
    {
        var cfg = _rt.NetworkConfig(network);
        Ipv4Pool? pool;
        try { pool = Ipv4Pool.Of(cfg?.Subnet, cfg?.Gateway); }
        catch (ArgumentException) { return null; }
        if (pool is not { } p || !IPAddress.TryParse(cidr.Split('/')[0], out var ip) || ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork) return null;
        lock (_gate) return Holders(network, p).GetValueOrDefault(Ipv4Pool.ToUInt(ip));
    }

    /// <summary>
    /// Every address in use on a network and who holds it: attachments (and the allocations stored
    /// for them), ports given addresses in the config file or by `port add --ip`, static neighbours,
    /// and the gateway. IPAM hands out none of them, and a request for one names its holder.
    /// </summary>
    internal Dictionary<uint, string> Holders(string network, Ipv4Pool pool)
    {
        var held = new Dictionary<uint, string>();
        void Hold(string? cidr, string who)
        {
            if (cidr is null || !IPAddress.TryParse(cidr.Split('/')[0], out var ip) || ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork) return;
            uint a = Ipv4Pool.ToUInt(ip);
            if (pool.Contains(a)) held.TryAdd(a, who);
        }
        var attachmentPorts = new HashSet<string>();
        foreach (var a in _byId.Values)
        {
            attachmentPorts.Add(a.Port);
            if (a.Network == network) Hold(a.Address, $"attachment {a.Id} ({a.Netns} {a.Ifname})");
        }
        if (_rt.Store is { } st)
            foreach (var (n, addr, id) in st.Allocations())
                if (n == network) Hold(addr, $"attachment {id}");
        foreach (var (name, pc) in _rt.PortConfigs)
            if (pc.Network == network && !attachmentPorts.Contains(name))
                foreach (var addr in pc.Addresses) Hold(addr, $"port {name}");
        if (_rt.Datapath.Topology.NetworkByName(network) is { } net)
            foreach (var e in _rt.Datapath.Neighbors.Entries())
                if (e.Network == net.Id && e.State == VSwitch.Core.Tables.NeighborState.Permanent)
                    Hold(Ipv4Pool.ToAddress(e.Address).ToString(), "a static neighbour");
        held.TryAdd(pool.Gateway, "the gateway");
        return held;
    }

    /// <summary>
    /// The TAP as a switch port, then inside the namespace: down, renamed to the requested name,
    /// addressed, up, default route via the gateway. On failure the port (and with it the device) goes.
    /// </summary>
    private void CreatePort(Attachment a)
    {
        // A hitless restart hands the TAP over as it is in the container (renamed, addressed, up), and a restart after
        // a crash finds it there: nothing to set up then.
        bool adopted = _rt.Adopting?.Has(a.Port) == true;
        // Security is on from the first frame (the MAC is known now). A new TAP's address joins it once configured
        // below; a handed-over TAP is live and already addressed, so its address is in from the first frame too
        // (else the container's frames in between were dropped as port-security-ip: a ping lost across a restart).
        // Persistent while the daemon runs: a crash leaves the container its interface and addresses (SwitchRuntime.Persistent).
        var pc = new PortConfig { Name = a.Port, Type = "tap", Network = a.Network, Netns = a.Netns, Mac = a.Mac, Mtu = a.Mtu,
            PortSecurity = a.PortSecurity, PinMac = a.PinMac, Persistent = true,
            Addresses = adopted ? AddressesOf(a) : [] };
        var port = _rt.AddPort(pc, persist: false, device: a.Ifname);
        if (!adopted && port.Io is not VSwitch.Core.Ports.TapPort { Reattached: true })
        {
            try
            {
                NetConfig.SetUp(a.Port, a.Netns, up: false);
                NetConfig.Rename(a.Port, a.Ifname, a.Netns);
                if (a.Address is not null) NetConfig.AddAddress(a.Ifname, a.Address, a.Netns);
                if (a.Address6 is not null)
                {
                    // The address is the switch's to give: no SLAAC address besides it, which port security would refuse
                    // (router advertisements still give the container the router and the MTU).
                    NetConfig.Run(a.Netns, "sysctl", "-qw", $"net/ipv6/conf/{a.Ifname}/autoconf=0");
                    NetConfig.AddAddress(a.Ifname, a.Address6, a.Netns);
                }
                NetConfig.SetUp(a.Ifname, a.Netns);
                if (a.Address is not null && a.Gateway is not null)
                {
                    var r = NetConfig.Run(a.Netns, "ip", "-4", "route", "add", "default", "via", a.Gateway, "dev", a.Ifname);
                    // A second interface in a namespace that already has a default route keeps the first one's.
                    if (r.ExitCode != 0 && !r.Output.Contains("File exists", StringComparison.Ordinal))
                        throw new PortException($"{a.Ifname}: default route via {a.Gateway} in {a.Netns}: {r.Output.Trim()}");
                }
                if (a.Address6 is not null && a.Gateway6 is not null)
                {
                    var r = NetConfig.Run(a.Netns, "ip", "-6", "route", "add", "default", "via", a.Gateway6, "dev", a.Ifname);
                    if (r.ExitCode != 0 && !r.Output.Contains("File exists", StringComparison.Ordinal))
                        throw new PortException($"{a.Ifname}: IPv6 default route via {a.Gateway6} in {a.Netns}: {r.Output.Trim()}");
                }
            }
            catch
            {
                try { _rt.RemovePort(a.Port, persist: false); } catch (Exception e) { _log.LogWarning("removing port {Port}: {Error}", a.Port, e.Message); }
                throw;
            }
        }
        _rt.ReplacePortConfig(new PortConfig
        {
            Name = a.Port, Type = "tap", Network = a.Network, Netns = a.Netns, Mac = a.Mac, Mtu = a.Mtu,
            Addresses = AddressesOf(a), Gateway = a.Gateway, PortSecurity = a.PortSecurity, PinMac = a.PinMac,
        });
        _rt.ApplyPortSecurity(a.Port);
    }

    /// <summary>The attachment's addresses as its port lists them (and port security allows): IPv4, then IPv6.</summary>
    private static List<string> AddressesOf(Attachment a)
    {
        var l = new List<string>(2);
        if (a.Address is not null) l.Add(a.Address);
        if (a.Address6 is not null) l.Add(a.Address6);
        return l;
    }

    /// <summary>IPv6 addresses held on a network: attachments', ports' and the gateway, as 128-bit numbers.</summary>
    internal HashSet<UInt128> Holders6(string network, Ipv6Pool pool)
    {
        var held = new HashSet<UInt128> { pool.Gateway };
        void Hold(string? cidr)
        {
            if (cidr is not null && IPAddress.TryParse(cidr.Split('/')[0], out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6)
                held.Add(System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(ip.GetAddressBytes()));
        }
        foreach (var a in _byId.Values) if (a.Network == network) Hold(a.Address6);
        foreach (var (name, pc) in _rt.PortConfigs)
            if (pc.Network == network) foreach (var addr in pc.Addresses) Hold(addr);
        return held;
    }

    /// <summary>Records new security settings of an attachment's port (PATCH /v1/ports); false when the port is no attachment's.</summary>
    internal bool SetSecurity(string port, bool portSecurity, bool pinMac)
    {
        lock (_gate)
        {
            var a = _byId.Values.FirstOrDefault(x => x.Port == port);
            if (a is null) return false;
            var updated = a with { PortSecurity = portSecurity, PinMac = pinMac };
            _byId[a.Id] = updated;
            _rt.Store?.SaveAttachment(updated);
            return true;
        }
    }

    /// <summary>Start: restore stored attachments whose namespace still exists, release the others; then watch.</summary>
    public Task StartAsync(CancellationToken ct)
    {
        if (_rt.Store is { } st)
        {
            lock (_gate)
            {
                var stored = st.Attachments();
                foreach (var a in stored)
                {
                    if (a.Runtime is not null)
                    {
                        RestoreRuntimeAttachment(st, a);
                        continue;
                    }
                    string? why = null;
                    if (_rt.Datapath.Topology.NetworkByName(a.Network) is null) why = $"network {a.Network} no longer exists";
                    else if (NetnsIdentity(NetConfig.NetnsPath(a.Netns)!) is not var (dev, ino)) why = $"namespace {a.Netns} is gone";
                    else if (dev != a.NetnsDev || ino != a.NetnsInode) why = $"{a.Netns} is another namespace now";
                    if (why is null)
                    {
                        try
                        {
                            CreatePort(a);
                            _byId[a.Id] = a;
                            _log.LogInformation("restored attachment {Id}: {Netns} {Ifname} on {Network}, {Address}", a.Id, a.Netns, a.Ifname, a.Network, a.Address ?? "no address");
                            continue;
                        }
                        catch (Exception e) when (e is not OutOfMemoryException) { why = e.Message; }
                    }
                    st.DeleteAttachment(a.Id);
                    _log.LogInformation("released attachment {Id} ({Netns} {Ifname}, {Address}): {Why}", a.Id, a.Netns, a.Ifname, a.Address ?? "no address", why);
                }
                // Addresses whose attachment row never got written (a crash in between).
                var ids = stored.Select(a => a.Id).ToHashSet();
                foreach (var (n, addr, owner) in st.Allocations())
                    if (!_byId.ContainsKey(owner) && !ids.Contains(owner) && !IsReservation(owner)) st.Release(n, addr);
            }
        }
        _timer = new Timer(_ => Watch(), null, WatchInterval, WatchInterval);
        return Task.CompletedTask;
    }

    /// <summary>Detaches what lost its namespace or its port.</summary>
    private void Watch()
    {
        if (_stopping) return;
        foreach (var a in List())
        {
            if (a.Runtime is not null)
            {
                WatchRuntimeAttachment(a);
                continue;
            }
            string? why = null;
            if (NetnsIdentity(NetConfig.NetnsPath(a.Netns)!) is not var (dev, ino)) why = $"namespace {a.Netns} is gone";
            else if (dev != a.NetnsDev || ino != a.NetnsInode) why = $"namespace {a.Netns} was replaced";
            else if (_rt.Datapath.Topology.PortByName(a.Port) is null) why = $"port {a.Port} was removed";
            if (why is null) continue;
            try { Detach(a.Id, $"detached ({why})"); }
            catch (Exception e) when (e is not OutOfMemoryException) { _log.LogWarning("detaching {Id}: {Error}", a.Id, e.Message); }
        }
    }

    public Task StopAsync(CancellationToken ct)
    {
        _stopping = true;
        _timer?.Dispose();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _stopping = true;
        _timer?.Dispose();
    }

    private string NewId()
    {
        while (true)
        {
            string id = Convert.ToHexString(RandomNumberGenerator.GetBytes(4)).ToLowerInvariant();
            if (!_byId.ContainsKey(id) && _rt.Datapath.Topology.PortByName("vsa" + id) is null && !Directory.Exists("/sys/class/net/vsa" + id))
                return id;
        }
    }

    /// <summary>A random locally administered unicast MAC (02:...).</summary>
    private static ulong RandomMac()
    {
        Span<byte> b = stackalloc byte[6];
        RandomNumberGenerator.Fill(b);
        b[0] = (byte)((b[0] & 0xFC) | 0x02);
        ulong m = 0;
        foreach (byte x in b) m = (m << 8) | x;
        return m;
    }

    /// <summary>(device, inode) of a namespace file, or null when it does not exist.</summary>
    public static unsafe (ulong Dev, ulong Ino)? NetnsIdentity(string path)
    {
        Tmds.Linux.stat st;
        int rc;
        fixed (byte* p = System.Text.Encoding.UTF8.GetBytes(path + "\0"))
            rc = Tmds.Linux.LibC.stat(p, &st);
        if (rc != 0) return null;
        return ((ulong)st.st_dev, (ulong)st.st_ino);
    }
}
