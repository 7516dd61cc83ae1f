using System.Text.Json.Nodes;
using VSwitchd.Config;
using VSwitchd.Runtime;

namespace VSwitchd.Docker;

/// <summary>
/// libnetwork's remote NetworkDriver: a Docker network is a vswitch network, a Docker endpoint a TAP the switch makes
/// in its own namespace and names; Docker moves it into the container and renames it ethN (Join's SrcName/DstPrefix),
/// giving it the MAC and address the endpoint has. Every call is answered with libnetwork's <c>{"Err": "..."}</c> when
/// it fails (<see cref="DockerPlugin"/>).
/// </summary>
public sealed class DockerNetworkDriver
{
    public const string Runtime = "docker";

    /// <summary>The <c>-o key=value</c> options of <c>docker network create -d vswitch</c>.</summary>
    public static readonly string[] Options = ["vlan", "vni", "mtu", "network"];

    private readonly SwitchRuntime _rt;
    private readonly Attachments _atts;
    private readonly DockerNames? _names;
    private readonly ILogger _log;
    private readonly object _gate = new();

    public DockerNetworkDriver(SwitchRuntime rt, Attachments atts, DockerNames? names, ILogger log)
    {
        _rt = rt;
        _atts = atts;
        _names = names;
        _log = log;
    }

    private StateStore Store => _rt.Store ?? throw new UnavailableException("the Docker driver needs vswitchd's state database");

    /// <summary>The vswitch network behind a Docker network id, or a clear error naming the id.</summary>
    public DockerNetwork Network(string? id)
    {
        if (string.IsNullOrEmpty(id)) throw new InvalidRequestException("NetworkID: must be given");
        return Store.DockerNetworks().FirstOrDefault(n => n.Id == id)
            ?? throw new NotFoundException($"Docker network {Short(id)} is not a vswitch network (vswitchd has no record of it)");
    }

    public JsonObject CreateNetwork(JsonNode req)
    {
        string id = Str(req, "NetworkID") ?? throw new InvalidRequestException("NetworkID: must be given");
        var opts = new Dictionary<string, string>();
        if (req["Options"]?["com.docker.network.generic"] is JsonObject generic)
            foreach (var (k, v) in generic) opts[k] = v?.ToString() ?? "";
        int? Int(string key, int min, int max)
        {
            if (!opts.TryGetValue(key, out var text)) return null;
            if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int v) || v < min || v > max)
                throw new InvalidRequestException($"-o {key}={text}: must be a number {min}..{max}");
            return v;
        }
        foreach (var k in opts.Keys)
            if (!Options.Contains(k) && k != "com.docker.network.driver.mtu")
                throw new InvalidRequestException($"-o {k}: not an option of the vswitch driver (it takes {string.Join(", ", Options)})");
        int? vlan = Int("vlan", 0, 4094), vni = Int("vni", 1, 16777215), mtu = Int("mtu", 68, 9000) ?? Int("com.docker.network.driver.mtu", 68, 9000);
        if (req["IPv6Data"] is JsonArray v6 && v6.Count > 0)
            throw new InvalidRequestException("IPv6: vswitch networks do not hand out IPv6 addresses yet (create the network without --ipv6)");
        // Docker's IPAM always gives a pool; the null IPAM's 0.0.0.0/0 means "no addresses": a bridged network without a router.
        string? subnet = null, gateway = null;
        if (req["IPv4Data"] is JsonArray v4 && v4.Count > 0)
        {
            if (v4.Count > 1) throw new InvalidRequestException($"IPv4Data: {v4.Count} subnets given; a vswitch network has one");
            subnet = Str(v4[0]!, "Pool");
            gateway = Str(v4[0]!, "Gateway")?.Split('/')[0];
            if (subnet is "0.0.0.0/0") subnet = gateway = null;
        }
        string name = opts.GetValueOrDefault("network") ?? "docker-" + Short(id);
        lock (_gate)
        {
            if (Store.DockerNetworks().FirstOrDefault(n => n.Id == id) is { } known) return Ok(); // a replay after a restart
            bool created = false;
            if (_rt.Datapath.Topology.NetworkByName(name) is not null)
            {
                // -o network=NAME joins Docker to a network vswitch already has (containers attached by vsctl or CNI meet Docker's).
                if (!opts.ContainsKey("network")) throw new ConflictException($"a vswitch network named '{name}' already exists");
                if (vlan is not null || vni is not null || mtu is not null)
                    throw new InvalidRequestException($"-o network={name} uses an existing network as it is: leave out vlan, vni and mtu");
                var existing = _rt.NetworkConfig(name);
                if (subnet is not null && existing?.Subnet is { } have && !SameSubnet(have, subnet))
                    throw new InvalidRequestException($"--subnet {subnet}: network '{name}' has subnet {have}");
                if (subnet is not null && existing?.Subnet is null)
                    throw new InvalidRequestException($"network '{name}' has no subnet; create the Docker network with --ipam-driver null");
            }
            else
            {
                var cfg = new NetworkConfig { Name = name, Vlan = vlan ?? 0, Vni = vni, Mtu = mtu, Subnet = subnet, Gateway = gateway };
                _rt.CreateNetwork(cfg);
                created = true;
            }
            Store.SaveDockerNetwork(new DockerNetwork(id, name, created, subnet));
            _log.LogInformation("Docker network {Id}: vswitch network {Network} ({How}, {Subnet})", Short(id), name,
                created ? "created" : "existing", subnet ?? "no subnet");
        }
        _names?.LearnNetwork(id);
        return Ok();
    }

    public JsonObject DeleteNetwork(JsonNode req)
    {
        string id = Str(req, "NetworkID") ?? throw new InvalidRequestException("NetworkID: must be given");
        lock (_gate)
        {
            if (Store.DockerNetworks().FirstOrDefault(n => n.Id == id) is not { } n) return Ok(); // already gone
            if (n.Created && _rt.Datapath.Topology.NetworkByName(n.Network) is not null)
            {
                // Endpoints Docker deleted while vswitchd was down may still hold ports here: they are Docker's, and gone.
                foreach (var a in _atts.Find(n.Network, null, null, null).Where(a => a.Runtime == Runtime)) _atts.Detach(a.Id, "detached (its Docker network is removed)");
                _rt.RemoveNetwork(n.Network);
            }
            Store.DeleteDockerNetwork(id);
            _log.LogInformation("Docker network {Id} removed{What}", Short(id), n.Created ? $", and vswitch network {n.Network} with it" : "");
        }
        return Ok();
    }

    public JsonObject CreateEndpoint(JsonNode req)
    {
        var n = Network(Str(req, "NetworkID"));
        string ep = Str(req, "EndpointID") ?? throw new InvalidRequestException("EndpointID: must be given");
        string? address = Str(req["Interface"], "Address") is { Length: > 0 } a ? a : null;
        string? mac = Str(req["Interface"], "MacAddress") is { Length: > 0 } m ? m : null;
        if (Str(req["Interface"], "AddressIPv6") is { Length: > 0 } v6)
            throw new InvalidRequestException($"AddressIPv6 {v6}: vswitch networks do not hand out IPv6 addresses yet");
        var att = _atts.ByEndpoint(Runtime, ep) ?? _atts.CreateForRuntime(Runtime, n.Network, ep, address, mac, null);
        // Docker refuses an answer that sets what it already gave: only what the switch chose goes back.
        var iface = new JsonObject();
        if (mac is null) iface["MacAddress"] = att.Mac;
        if (address is null && att.Address is not null) iface["Address"] = att.Address;
        return new JsonObject { ["Interface"] = iface.Count > 0 ? iface : null };
    }

    public JsonObject DeleteEndpoint(JsonNode req)
    {
        string ep = Str(req, "EndpointID") ?? throw new InvalidRequestException("EndpointID: must be given");
        if (_atts.ByEndpoint(Runtime, ep) is { } a) _atts.Detach(a.Id, "detached (Docker deleted its endpoint)");
        return Ok();
    }

    public JsonObject EndpointOperInfo(JsonNode req)
    {
        string ep = Str(req, "EndpointID") ?? throw new InvalidRequestException("EndpointID: must be given");
        var a = _atts.ByEndpoint(Runtime, ep) ?? throw new NotFoundException($"no endpoint {Short(ep)}");
        return new JsonObject
        {
            ["Value"] = new JsonObject { ["vswitch.port"] = a.Port, ["vswitch.network"] = a.Network, ["vswitch.attachment"] = a.Id },
        };
    }

    public JsonObject Join(JsonNode req)
    {
        var n = Network(Str(req, "NetworkID"));
        string ep = Str(req, "EndpointID") ?? throw new InvalidRequestException("EndpointID: must be given");
        string sandbox = Str(req, "SandboxKey") is { Length: > 0 } s ? s : throw new InvalidRequestException("SandboxKey: must be given");
        var a = _atts.Join(Runtime, ep, sandbox);
        _names?.LearnEndpoint(n.Id, ep);
        var answer = new JsonObject { ["InterfaceName"] = new JsonObject { ["SrcName"] = a.Port, ["DstPrefix"] = "eth" } };
        // A routed network's gateway is the switch's router. Without one (no subnet) Docker would add its own
        // docker_gwbridge network for a default route: DisableGatewayService says this network wants none.
        if (a.Address is not null && a.Gateway is not null) answer["Gateway"] = a.Gateway;
        else answer["DisableGatewayService"] = true;
        return answer;
    }

    public JsonObject Leave(JsonNode req)
    {
        string ep = Str(req, "EndpointID") ?? throw new InvalidRequestException("EndpointID: must be given");
        if (_atts.ByEndpoint(Runtime, ep) is not null) _atts.Leave(Runtime, ep);
        return Ok();
    }

    private static bool SameSubnet(string a, string b) =>
        System.Net.IPNetwork.TryParse(a, out var x) && System.Net.IPNetwork.TryParse(b, out var y) && x.Equals(y);

    internal static string? Str(JsonNode? node, string key) => node is JsonObject o && o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    internal static string Short(string id) => id.Length > 12 ? id[..12] : id;

    private static JsonObject Ok() => [];
}
