using System.Text.Json.Nodes;

namespace VSwitch.Integration.Tests;

/// <summary>
/// VSwitch as the gateway between two networks (10.1x.1.0/24 and 10.1x.2.0/24, gateways .1),
/// with namespaces whose default routes point at it: ping, traceroute-style TTL expiry, no-route
/// unreachables, TCP across, and path MTU discovery against a smaller egress MTU.
/// </summary>
[Collection("netns")]
public class RouterTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <param name="connect">Connect red and blue (routed networks are isolated from each other until then).</param>
    private static (Vswitchd D, string S) Start(TestNetns a, TestNetns b, string net, int mtu2 = 1500, bool connect = true)
    {
        string s = Names.Random("");
        string cfg = $$"""
            { "networks": [ { "name": "red",  "subnet": "{{net}}.1.0/24", "gateway": "{{net}}.1.1" },
                            { "name": "blue", "subnet": "{{net}}.2.0/24", "gateway": "{{net}}.2.1", "mtu": {{mtu2}} } ],
              "ports": [
                { "name": "vra{{s}}", "network": "red",  "netns": "{{a.Name}}", "addresses": ["{{net}}.1.2/24"] },
                { "name": "vrb{{s}}", "network": "blue", "netns": "{{b.Name}}", "addresses": ["{{net}}.2.2/24"] } ] }
            """;
        var d = Vswitchd.Start(cfg);
        if (connect)
        {
            var (status, body) = d.Send(HttpMethod.Post, "/v1/networks/red/connections", new { network = "blue" });
            Assert.True(status == 201, $"connect red blue: {status} {body}");
        }
        return (d, s);
    }

    [RootFact]
    public void Namespaces_on_two_networks_ping_each_other_and_their_gateways()
    {
        using var a = new TestNetns();
        using var b = new TestNetns();
        var (d, s) = Start(a, b, "10.110");
        using var _ = d;
        // The TAPs got default routes via their network's gateway.
        Assert.Contains("default via 10.110.1.1", a.Exec("ip", "route"));
        var r = a.TryExec(Timeout, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.110.1.1");
        Assert.True(r.ExitCode == 0, "ping gateway: " + r.Output);
        r = a.TryExec(Timeout, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.110.2.2");
        Assert.True(r.ExitCode == 0, "ping across: " + r.Output);
        Assert.Contains("ttl=63", r.StdOut); // one router hop
        r = b.TryExec(Timeout, "ping", "-c", "2", "-i", "0.2", "-W", "2", "10.110.1.2");
        Assert.True(r.ExitCode == 0, "ping back: " + r.Output);

        var neighbors = d.Get("/v1/neighbors").AsArray();
        Assert.Contains(neighbors, n => (string)n!["ip"]! == "10.110.2.2" && (string)n["state"]! == "reachable");
        var routes = d.Get("/v1/routes").AsArray();
        Assert.Contains(routes, x => (string)x!["prefix"]! == "10.110.2.0/24");
        var net = d.Get("/v1/networks/blue");
        Assert.Equal("10.110.2.1", (string)net["gateway"]!);
    }

    [RootFact]
    public void Ttl_1_gets_time_exceeded_and_an_unrouted_destination_gets_unreachable()
    {
        using var a = new TestNetns();
        using var b = new TestNetns();
        var (d, s) = Start(a, b, "10.111");
        using var _ = d;
        var r = a.TryExec(Timeout, "ping", "-c", "1", "-t", "1", "-W", "2", "10.111.2.2");
        Assert.Contains("Time to live exceeded", r.StdOut);
        Assert.Contains("10.111.1.1", r.StdOut);
        r = a.TryExec(Timeout, "ping", "-c", "1", "-W", "2", "10.111.99.9");
        Assert.Contains("Destination Net Unreachable", r.StdOut);
        Assert.True(d.Drops("ttl-expired") >= 1);
        Assert.True(d.Drops("no-route") >= 1);
        // A host that does not answer ARP on a routed network: host unreachable after the retries.
        r = a.TryExec(Timeout, "ping", "-c", "1", "-W", "6", "10.111.2.77");
        Assert.Contains("Destination Host Unreachable", r.StdOut);
    }

    [RootFact]
    public void Tcp_crosses_the_router()
    {
        using var a = new TestNetns();
        using var b = new TestNetns();
        var (d, s) = Start(a, b, "10.112");
        using var _ = d;
        var (sent, received) = Iperf.Run(a, b, "10.112.2.2", seconds: 3);
        Iperf.AssertIntact(sent, received);
    }

    [RootFact]
    public void Too_big_with_df_gets_frag_needed_and_tcp_path_mtu_discovery_still_completes()
    {
        using var a = new TestNetns();
        using var b = new TestNetns();
        var (d, s) = Start(a, b, "10.113", mtu2: 1200);
        using var _ = d;
        Assert.Contains("mtu 1200", b.Exec("ip", "link", "show", "vrb" + s)); // the TAP took its network's MTU
        var r = a.TryExec(Timeout, "ping", "-c", "1", "-M", "do", "-s", "1400", "-W", "2", "10.113.2.2");
        Assert.Contains("mtu = 1200", r.Output);
        Assert.True(d.Drops("fragmentation-needed") >= 1);
        // TCP from the 1500-MTU side learns the 1200 path MTU from the router and completes.
        var (sent, received) = Iperf.Run(a, b, "10.113.2.2", seconds: 3);
        Iperf.AssertIntact(sent, received);
    }

    [RootFact]
    public void Static_routes_via_a_gateway_are_added_listed_and_removed_through_the_api()
    {
        using var a = new TestNetns();
        using var b = new TestNetns();
        // Not connected: the static route alone opens its prefix (and the way back), not blue's subnet.
        var (d, s) = Start(a, b, "10.114", connect: false);
        using var _ = d;
        // b also owns 10.114.50.1 behind itself; the router reaches it via b's address.
        b.Exec("ip", "addr", "add", "10.114.50.1/32", "dev", "lo");
        var (status, body) = d.Send(HttpMethod.Post, "/v1/routes", new { prefix = "10.114.50.0/24", via = "10.114.2.2" });
        Assert.True(status == 201, $"{status} {body}");
        var r = a.TryExec(Timeout, "ping", "-c", "2", "-i", "0.2", "-W", "2", "10.114.50.1");
        Assert.True(r.ExitCode == 0, r.Output);
        r = a.TryExec(Timeout, "ping", "-c", "1", "-W", "1", "10.114.2.2");
        Assert.True(r.ExitCode != 0, "red reached blue's host without a connection: " + r.Output);
        Assert.True(d.Drops("network-isolated") >= 1);
        (status, body) = d.Send(HttpMethod.Post, "/v1/routes", new { prefix = "10.114.60.0/24", via = "192.0.2.1" });
        Assert.Equal(400, status);
        Assert.Contains("192.0.2.1", (string)body!["error"]!);
        Assert.Equal(204, d.Send(HttpMethod.Delete, "/v1/routes?prefix=10.114.50.0/24&via=10.114.2.2").Status);
        r = a.TryExec(Timeout, "ping", "-c", "1", "-W", "2", "10.114.50.1");
        Assert.Contains("Destination Net Unreachable", r.StdOut);
    }
}
