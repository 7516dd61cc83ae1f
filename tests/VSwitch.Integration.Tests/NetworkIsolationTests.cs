using System.Text.Json.Nodes;
using static VSwitch.Integration.Tests.VsctlHarness;

namespace VSwitch.Integration.Tests;

/// <summary>
/// Isolation between networks (issue 16, item 3): two routed networks with a container on each.
/// Ping across fails by default and is counted as network-isolated; it works after
/// `vsctl network connect`, fails again after `disconnect` (the cached flow is cut), and a
/// connection survives a daemon restart. A static route opens its prefix and the way back.
/// </summary>
[Collection("netns")]
public class NetworkIsolationTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static string Config(TestNetns a, TestNetns b, string net, string s) => $$"""
        { "networks": [ { "name": "green", "subnet": "{{net}}.1.0/24" },
                        { "name": "blue",  "subnet": "{{net}}.2.0/24" } ],
          "ports": [
            { "name": "vig{{s}}", "network": "green", "netns": "{{a.Name}}", "addresses": ["{{net}}.1.2/24"] },
            { "name": "vib{{s}}", "network": "blue",  "netns": "{{b.Name}}", "addresses": ["{{net}}.2.2/24"] } ] }
        """;

    private static bool Pings(TestNetns from, string to) =>
        from.TryExec(Timeout, "ping", "-c", "2", "-i", "0.2", "-W", "1", to).ExitCode == 0;

    private static void AssertPings(TestNetns from, string to)
    {
        var r = from.TryExec(Timeout, "ping", "-c", "2", "-i", "0.2", "-W", "2", to);
        Assert.True(r.ExitCode == 0, $"ping {to}: {r.Output}");
    }

    [RootFact]
    public void Two_routed_networks_are_isolated_until_connected_and_the_connection_is_stored()
    {
        using var a = new TestNetns("vsis-");
        using var b = new TestNetns("vsis-");
        string s = Names.Random("");
        string? dir = null;
        try
        {
            using (var d = Vswitchd.Start(Config(a, b, "10.117", s)))
            {
                d.KeepDir = true;
                dir = d.Dir;
                // By default: each container reaches its own gateway, nothing of the other network.
                AssertPings(a, "10.117.1.1");
                AssertPings(b, "10.117.2.1");
                Assert.False(Pings(a, "10.117.2.2"), "green reached blue before any connect");
                Assert.False(Pings(b, "10.117.1.2"), "blue reached green before any connect");
                Assert.False(Pings(a, "10.117.2.1"), "green got an answer from blue's gateway");
                long isolated = d.Drops("network-isolated");
                Assert.True(isolated >= 6, $"network-isolated drops: {isolated}");
                var stats = Ok("--socket", d.Socket, "stats").Stdout;
                Assert.Contains("network-isolated", stats);
                string metrics = d.Http.GetStringAsync("/metrics").Result;
                Assert.Matches(@"vswitch_stage_drops_total\{[^}]*reason=""network-isolated""[^}]*\} [1-9]", metrics);
                var ls = Ok("--socket", d.Socket, "network", "ls").Stdout;
                Assert.Contains("CONNECTED", ls);
                Assert.Equal("-", Words(Lines(ls).Single(l => l.StartsWith("green ")))[^1]);

                // Connected: both ways, one router hop.
                Assert.Equal("networks green and blue connected", Ok("--socket", d.Socket, "network", "connect", "green", "blue").Stdout.Trim());
                var r = a.TryExec(Timeout, "ping", "-c", "2", "-i", "0.2", "-W", "2", "10.117.2.2");
                Assert.True(r.ExitCode == 0, "ping across after connect: " + r.Output);
                Assert.Contains("ttl=63", r.StdOut);
                AssertPings(b, "10.117.1.2");
                AssertPings(a, "10.117.2.1");
                Assert.Equal("blue", Words(Lines(Ok("--socket", d.Socket, "network", "ls").Stdout).Single(l => l.StartsWith("green ")))[^1]);
                var inspect = JsonNode.Parse(Ok("--socket", d.Socket, "--json", "network", "inspect", "blue").Stdout)!;
                Assert.Equal(["green"], inspect["connectedTo"]!.AsArray().Select(x => (string)x!).ToArray());
                Assert.Contains("connected:  green", Ok("--socket", d.Socket, "network", "inspect", "blue").Stdout);

                // Refusals, each with its exit code and the bad value named.
                var again = Vsctl("--socket", d.Socket, "network", "connect", "blue", "green");
                Assert.True(again.ExitCode == 4 && again.Stderr.Contains("already connected"), again.ToString());
                var unknown = Vsctl("--socket", d.Socket, "network", "connect", "green", "bleu");
                Assert.True(unknown.ExitCode == 3 && unknown.Stderr.Contains("'bleu'"), unknown.ToString());
                var self = Vsctl("--socket", d.Socket, "network", "connect", "green", "green");
                Assert.True(self.ExitCode == 6 && self.Stderr.Contains("itself"), self.ToString());
                var (status, body) = d.Send(HttpMethod.Post, "/v1/networks/green/connections", new { });
                Assert.True(status == 400 && ((string)body!["error"]!).Contains("network: required"), $"{status} {body}");

                // Disconnected while a ping runs: its cached flow is cut at its next packet.
                long TxToBlue() => (long)d.Port("vib" + s)["counters"]!["txPackets"]!;
                long sentBefore = TxToBlue(), before = d.Drops("network-isolated");
                var running = Task.Run(() => a.TryExec(Timeout, "ping", "-c", "30", "-i", "0.2", "-W", "1", "10.117.2.2"));
                Wait.Until(() => TxToBlue() >= sentBefore + 3 || running.IsCompleted, TimeSpan.FromSeconds(10), "the running ping to reach blue");
                Assert.Equal("networks blue and green disconnected", Ok("--socket", d.Socket, "network", "disconnect", "blue", "green").Stdout.Trim());
                var cut = running.Result;
                var m = System.Text.RegularExpressions.Regex.Match(cut.StdOut, @"(\d+) packets transmitted, (\d+) received");
                Assert.True(m.Success, cut.Output);
                int received = int.Parse(m.Groups[2].Value);
                Assert.True(received >= 3 && received <= 27, $"the running ping should stop getting replies at the disconnect: {cut.Output}");
                Assert.True(d.Drops("network-isolated") >= before + 3);
                Assert.False(Pings(a, "10.117.2.2"), "green reached blue after disconnect");
                var twice = Vsctl("--socket", d.Socket, "network", "disconnect", "green", "blue");
                Assert.True(twice.ExitCode == 3 && twice.Stderr.Contains("not connected"), twice.ToString());

                Ok("--socket", d.Socket, "network", "connect", "green", "blue");
                AssertPings(a, "10.117.2.2");
                Assert.Equal(0, d.Stop());
            }

            // The connection is in the state database: a restarted daemon routes between them at once.
            using var d2 = Vswitchd.StartIn(dir, null);
            Wait.Until(() => a.HasLink("vig" + s) && b.HasLink("vib" + s), TimeSpan.FromSeconds(10), "the TAPs to come back");
            Assert.Equal(["blue"], d2.Get("/v1/networks/green")["connectedTo"]!.AsArray().Select(x => (string)x!).ToArray());
            Wait.Until(() => Pings(a, "10.117.2.2"), TimeSpan.FromSeconds(15), "green to reach blue after the restart");
            Assert.Equal(204, d2.Send(HttpMethod.Delete, "/v1/networks/green/connections/blue").Status);
            Assert.False(Pings(a, "10.117.2.2"), "green reached blue after the API disconnected them");
        }
        finally
        {
            if (dir is not null) try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    [Fact] // no ports: creates nothing, needs no root
    public void A_removed_network_takes_its_connections_with_it()
    {
        using var d = Vswitchd.Start(null);
        Assert.Equal(201, d.Send(HttpMethod.Post, "/v1/networks", new { name = "n1", subnet = "10.118.1.0/24" }).Status);
        Assert.Equal(201, d.Send(HttpMethod.Post, "/v1/networks", new { name = "n2", subnet = "10.118.2.0/24" }).Status);
        Assert.Equal(201, d.Send(HttpMethod.Post, "/v1/networks", new { name = "l2" }).Status);
        var (status, body) = d.Send(HttpMethod.Post, "/v1/networks/n1/connections", new { network = "l2" });
        Assert.True(status == 400 && ((string)body!["error"]!).Contains("'l2' has no subnet"), $"{status} {body}");
        (status, body) = d.Send(HttpMethod.Post, "/v1/networks/n1/connections", new { network = "n2" });
        Assert.True(status == 201, $"{status} {body}");
        Assert.Equal(["n2"], body!["connectedTo"]!.AsArray().Select(x => (string)x!).ToArray());
        Assert.Equal(204, d.Send(HttpMethod.Delete, "/v1/networks/n2").Status);
        Assert.Empty(d.Get("/v1/networks/n1")["connectedTo"]!.AsArray());
        // A new network under the old name starts isolated.
        Assert.Equal(201, d.Send(HttpMethod.Post, "/v1/networks", new { name = "n2", subnet = "10.118.2.0/24" }).Status);
        Assert.Empty(d.Get("/v1/networks/n2")["connectedTo"]!.AsArray());
    }
}
