using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using VSwitchd.Runtime;

namespace VSwitchd.Docker;

/// <summary>
/// libnetwork's remote IpamDriver (<c>--ipam-driver vswitch</c>): Docker's addresses come from the switch's own IPAM,
/// so what <c>docker network inspect</c> shows and what <c>vsctl network inspect</c> shows are one plan. A pool is a
/// subnet (its id is the subnet); the gateway is the network's router; an endpoint's address is reserved in the
/// switch's address table (lowest free, never one a vsctl or CNI attachment, a port or a static neighbour holds)
/// until the endpoint takes it over. Answers carry libnetwork's IPAM error field, <c>{"Error": "..."}</c>.
/// </summary>
public sealed class DockerIpamDriver
{
    /// <summary>Where a pool comes from when <c>docker network create</c> gives no --subnet: the first free /24 of it.</summary>
    public const string DefaultRange = "10.210.0.0/16";
    private const string GatewayRequest = "com.docker.network.gateway";

    private readonly SwitchRuntime _rt;
    private readonly Attachments _atts;
    private readonly ILogger _log;
    private readonly object _gate = new();

    public DockerIpamDriver(SwitchRuntime rt, Attachments atts, ILogger log)
    {
        _rt = rt;
        _atts = atts;
        _log = log;
    }

    private StateStore Store => _rt.Store ?? throw new UnavailableException("the Docker IPAM driver needs vswitchd's state database");

    public static JsonObject Capabilities() => new() { ["RequiresMACAddress"] = false, ["RequiresRequestReplay"] = false };

    public static JsonObject AddressSpaces() => new() { ["LocalDefaultAddressSpace"] = "vswitch", ["GlobalDefaultAddressSpace"] = "vswitch" };

    public JsonObject RequestPool(JsonNode req)
    {
        if (req["V6"]?.GetValue<bool>() == true) throw new InvalidRequestException("IPv6: the vswitch IPAM hands out IPv4 only (create the network without --ipv6)");
        string? wanted = DockerNetworkDriver.Str(req, "Pool") is { Length: > 0 } p ? p : null;
        if (DockerNetworkDriver.Str(req, "SubPool") is { Length: > 0 } sub)
            throw new InvalidRequestException($"--ip-range {sub}: the vswitch IPAM hands out the whole subnet (leave out --ip-range)");
        lock (_gate)
        {
            var pools = Store.DockerPools();
            var taken = pools.Select(x => IPNetwork.Parse(x.Pool))
                .Concat(_rt.Datapath.Topology.Networks.Select(n => _rt.NetworkConfig(n.Name)?.Subnet).OfType<string>().Select(IPNetwork.Parse)).ToList();
            IPNetwork pool;
            if (wanted is not null)
            {
                if (!IPNetwork.TryParse(wanted, out pool) || pool.BaseAddress.AddressFamily != AddressFamily.InterNetwork || pool.PrefixLength is < 8 or > 30)
                    throw new InvalidRequestException($"--subnet {wanted}: not an IPv4 subnet of /8../30");
                if (pools.Any(x => IPNetwork.Parse(x.Pool).Equals(pool)))
                    throw new ConflictException($"--subnet {wanted}: another Docker network already has it");
                // A vswitch network with exactly this subnet may be used (-o network=NAME); one that overlaps may not.
                var target = pool;
                if (taken.Where(t => !t.Equals(target) && Overlap(t, target)).Select(t => (IPNetwork?)t).FirstOrDefault() is { } clash)
                    throw new ConflictException($"--subnet {wanted}: overlaps {clash}, which a vswitch network or Docker network uses");
            }
            else
            {
                var range = IPNetwork.Parse(DefaultRange);
                IPNetwork? free = null;
                for (uint i = 0; i < 256 && free is null; i++)
                {
                    var candidate = new IPNetwork(Ipv4Pool.ToAddress(Ipv4Pool.ToUInt(range.BaseAddress) + (i << 8)), 24);
                    if (!taken.Any(t => Overlap(t, candidate))) free = candidate;
                }
                pool = free ?? throw new ConflictException($"no free /24 left in {DefaultRange}: give --subnet");
            }
            string id = pool.ToString();
            Store.SaveDockerPool(new DockerPool(id, null));
            _log.LogInformation("Docker IPAM: pool {Pool}", id);
            return new JsonObject { ["PoolID"] = id, ["Pool"] = id, ["Data"] = new JsonObject() };
        }
    }

    public JsonObject ReleasePool(JsonNode req)
    {
        if (DockerNetworkDriver.Str(req, "PoolID") is { Length: > 0 } id)
        {
            Store.DeleteDockerPool(id);
            _log.LogInformation("Docker IPAM: pool {Pool} released", id);
        }
        return [];
    }

    public JsonObject RequestAddress(JsonNode req)
    {
        var pool = Pool(DockerNetworkDriver.Str(req, "PoolID"));
        var net = IPNetwork.Parse(pool.Pool);
        string? wanted = DockerNetworkDriver.Str(req, "Address") is { Length: > 0 } a ? a : null;
        if (req["Options"]?["RequestAddressType"]?.ToString() == GatewayRequest)
        {
            // The gateway is the switch's router on the network: Docker passes it back in CreateNetwork.
            var plan = Ipv4Pool.Of(pool.Pool, wanted?.Split('/')[0])!.Value;
            if (wanted is not null && !plan.Contains(plan.Gateway)) throw new InvalidRequestException($"--gateway {wanted}: outside {pool.Pool}");
            Store.SaveDockerPool(pool with { Gateway = plan.GatewayAddress });
            return new JsonObject { ["Address"] = plan.Cidr(plan.Gateway), ["Data"] = new JsonObject() };
        }
        string network = NetworkOf(net) ?? throw new InvalidRequestException(
            $"pool {pool.Pool} has no vswitch network yet: the vswitch IPAM serves networks of the vswitch driver (--aux-address is not supported)");
        string cidr = _atts.Reserve(network, wanted?.Split('/')[0]);
        _log.LogInformation("Docker IPAM: {Address} reserved on {Network}", cidr, network);
        return new JsonObject { ["Address"] = cidr, ["Data"] = new JsonObject() };
    }

    public JsonObject ReleaseAddress(JsonNode req)
    {
        var pool = Pool(DockerNetworkDriver.Str(req, "PoolID"));
        string? address = DockerNetworkDriver.Str(req, "Address");
        if (address is null || address.Split('/')[0] == pool.Gateway) return [];
        if (NetworkOf(IPNetwork.Parse(pool.Pool)) is { } network) _atts.Unreserve(network, address);
        return [];
    }

    private DockerPool Pool(string? id)
    {
        if (string.IsNullOrEmpty(id)) throw new InvalidRequestException("PoolID: must be given");
        return Store.DockerPools().FirstOrDefault(p => p.Pool == id) ?? throw new NotFoundException($"pool '{id}' is not one the vswitch IPAM handed out");
    }

    /// <summary>The vswitch network whose subnet is this pool, or null.</summary>
    private string? NetworkOf(IPNetwork pool) =>
        _rt.Datapath.Topology.Networks.Select(n => n.Name)
            .FirstOrDefault(n => _rt.NetworkConfig(n)?.Subnet is { } s && IPNetwork.TryParse(s, out var x) && x.Equals(pool));

    private static bool Overlap(IPNetwork a, IPNetwork b) => a.Contains(b.BaseAddress) || b.Contains(a.BaseAddress);
}
