using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using VSwitch.Core;
using VSwitchd.Docker;
using VSwitchd.Runtime;

namespace VSwitch.Core.Tests;

/// <summary>
/// The Docker drivers' answers to what libnetwork sends, without root (no endpoint, so no TAP): networks from
/// CreateNetwork's options and IPv4Data, bad options named, pools and addresses of the IPAM driver. The whole path
/// with a real dockerd is DockerDriverTests (integration).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class DockerDriverUnitTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vsdu").FullName;
    private readonly StateStore _store;
    private readonly SwitchRuntime _rt;
    private readonly Attachments _atts;
    private readonly DockerNetworkDriver _net;
    private readonly DockerIpamDriver _ipam;

    public DockerDriverUnitTests()
    {
        _store = new StateStore(Path.Combine(_dir, "state.db"));
        _rt = new SwitchRuntime(new DatapathOptions(), NullLogger<SwitchRuntime>.Instance, _store);
        _atts = new Attachments(_rt, NullLogger<Attachments>.Instance);
        _net = new DockerNetworkDriver(_rt, _atts, null, NullLogger.Instance);
        _ipam = new DockerIpamDriver(_rt, _atts, NullLogger.Instance);
    }

    public void Dispose()
    {
        _atts.Dispose();
        _rt.Dispose();
        _store.Dispose();
        Directory.Delete(_dir, true);
    }

    private static JsonNode Create(string id, string? pool, string? gateway, params (string K, string V)[] opts)
    {
        var generic = new JsonObject();
        foreach (var (k, v) in opts) generic[k] = v;
        var req = new JsonObject { ["NetworkID"] = id, ["Options"] = new JsonObject { ["com.docker.network.generic"] = generic } };
        if (pool is not null) req["IPv4Data"] = new JsonArray(new JsonObject { ["AddressSpace"] = "x", ["Pool"] = pool, ["Gateway"] = gateway });
        return req;
    }

    private const string Id1 = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2";
    private const string Id2 = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

    [Fact]
    public void A_docker_network_is_a_vswitch_network_with_its_options_and_goes_with_it()
    {
        _net.CreateNetwork(Create(Id1, "10.9.0.0/24", "10.9.0.1/24", ("vlan", "7"), ("mtu", "1400")));
        var v = _rt.GetNetwork("docker-a1b2c3d4e5f6");
        Assert.Equal(7, v.Vlan);
        Assert.Equal("10.9.0.0/24", v.Subnet);
        Assert.Equal("10.9.0.1", v.Gateway);
        Assert.Equal(1400, v.Mtu);
        Assert.Equal(Id1, v.DockerId);
        _net.CreateNetwork(Create(Id1, "10.9.0.0/24", "10.9.0.1/24")); // a replay: nothing new
        Assert.Single(_rt.ListNetworks());
        _net.DeleteNetwork(new JsonObject { ["NetworkID"] = Id1 });
        Assert.Empty(_rt.ListNetworks());
        _net.DeleteNetwork(new JsonObject { ["NetworkID"] = Id1 }); // already gone: fine
    }

    [Fact]
    public void The_null_ipam_gives_a_bridged_network_and_an_existing_network_can_be_used()
    {
        _net.CreateNetwork(Create(Id1, "0.0.0.0/0", null, ("network", "plain")));
        Assert.Null(_rt.GetNetwork("plain").Subnet);
        var e = Assert.Throws<InvalidRequestException>(() => _net.CreateNetwork(Create(Id2, "10.9.0.0/24", null, ("network", "plain"))));
        Assert.Contains("has no subnet", e.Message);
        _net.DeleteNetwork(new JsonObject { ["NetworkID"] = Id1 });
        Assert.Empty(_rt.ListNetworks()); // the driver made it, so it removed it
    }

    [Theory]
    [InlineData("colour", "blue", "-o colour: not an option")]
    [InlineData("vlan", "5000", "-o vlan=5000: must be a number 0..4094")]
    [InlineData("vni", "x", "-o vni=x")]
    [InlineData("mtu", "20", "-o mtu=20")]
    public void Bad_options_are_refused_naming_them(string key, string value, string expected)
    {
        var e = Assert.Throws<InvalidRequestException>(() => _net.CreateNetwork(Create(Id1, "10.9.0.0/24", null, (key, value))));
        Assert.Contains(expected, e.Message);
        Assert.Empty(_rt.ListNetworks());
    }

    [Fact]
    public void Unknown_networks_and_ipv6_are_refused_clearly()
    {
        var e = Assert.Throws<NotFoundException>(() => _net.CreateEndpoint(new JsonObject { ["NetworkID"] = Id2, ["EndpointID"] = "e1" }));
        Assert.Contains("ffeeddccbbaa", e.Message);
        var req = Create(Id1, "10.9.0.0/24", null);
        req["IPv6Data"] = new JsonArray(new JsonObject { ["Pool"] = "fd00::/64" });
        Assert.Contains("IPv6", Assert.Throws<InvalidRequestException>(() => _net.CreateNetwork(req)).Message);
    }

    [Fact]
    public void The_ipam_driver_hands_out_free_pools_the_gateway_and_addresses_from_the_switchs_own_table()
    {
        var p1 = _ipam.RequestPool(new JsonObject { ["AddressSpace"] = "vswitch" });
        Assert.Equal("10.210.0.0/24", (string)p1["Pool"]!);
        var p2 = _ipam.RequestPool(new JsonObject { ["AddressSpace"] = "vswitch" });
        Assert.Equal("10.210.1.0/24", (string)p2["Pool"]!);
        Assert.Contains("another Docker network", Assert.Throws<ConflictException>(() => _ipam.RequestPool(new JsonObject { ["Pool"] = "10.210.0.0/24" })).Message);
        Assert.Contains("overlaps 10.210.0.0/24", Assert.Throws<ConflictException>(() => _ipam.RequestPool(new JsonObject { ["Pool"] = "10.210.0.0/16" })).Message);
        Assert.Contains("--subnet banana", Assert.Throws<InvalidRequestException>(() => _ipam.RequestPool(new JsonObject { ["Pool"] = "banana" })).Message);
        Assert.Contains("IPv6", Assert.Throws<InvalidRequestException>(() => _ipam.RequestPool(new JsonObject { ["V6"] = true })).Message);

        var gw = _ipam.RequestAddress(new JsonObject
        {
            ["PoolID"] = "10.210.0.0/24", ["Options"] = new JsonObject { ["RequestAddressType"] = "com.docker.network.gateway" },
        });
        Assert.Equal("10.210.0.1/24", (string)gw["Address"]!);
        // An endpoint's address needs the vswitch network (CreateNetwork comes between the two in Docker).
        Assert.Contains("has no vswitch network", Assert.Throws<InvalidRequestException>(() => _ipam.RequestAddress(new JsonObject { ["PoolID"] = "10.210.0.0/24" })).Message);
        _net.CreateNetwork(Create(Id1, "10.210.0.0/24", "10.210.0.1/24"));
        Assert.Equal("10.210.0.2/24", (string)_ipam.RequestAddress(new JsonObject { ["PoolID"] = "10.210.0.0/24" })["Address"]!);
        Assert.Equal("10.210.0.3/24", (string)_ipam.RequestAddress(new JsonObject { ["PoolID"] = "10.210.0.0/24" })["Address"]!);
        Assert.Contains("already in use", Assert.Throws<ConflictException>(() =>
            _ipam.RequestAddress(new JsonObject { ["PoolID"] = "10.210.0.0/24", ["Address"] = "10.210.0.2" })).Message);
        // The switch's own view holds them (a vsctl attach would not get them), and a release frees the lowest again.
        Assert.Equal("attachment ipam-", _atts.HolderOf("docker-a1b2c3d4e5f6", "10.210.0.2")![..16]);
        _ipam.ReleaseAddress(new JsonObject { ["PoolID"] = "10.210.0.0/24", ["Address"] = "10.210.0.2/24" });
        Assert.Null(_atts.HolderOf("docker-a1b2c3d4e5f6", "10.210.0.2"));
        Assert.Equal("10.210.0.2/24", (string)_ipam.RequestAddress(new JsonObject { ["PoolID"] = "10.210.0.0/24" })["Address"]!);
        Assert.Contains("not one the vswitch IPAM handed out", Assert.Throws<NotFoundException>(() => _ipam.RequestAddress(new JsonObject { ["PoolID"] = "10.1.0.0/24" })).Message);
        _ipam.ReleasePool(new JsonObject { ["PoolID"] = "10.210.1.0/24" });
        Assert.Equal("10.210.1.0/24", (string)_ipam.RequestPool(new JsonObject())["Pool"]!);
    }
}
