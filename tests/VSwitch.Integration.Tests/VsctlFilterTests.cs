using System.Text.Json;
using static VSwitch.Integration.Tests.VsctlHarness;

namespace VSwitch.Integration.Tests;

/// <summary>
/// vsctl's filters against a switch with traffic: namespaces on TAPs in two networks ping, then
/// <c>flows [MATCH] [--port P] [--network N]</c>, <c>port ls --network N</c> and <c>fdb show --port P</c> select
/// from what the tables hold (the daemon parses the match, as for a rule); flows fit 120 columns unless --wide.
/// </summary>
[Collection("netns")]
public sealed class VsctlFilterTests
{
    private const int NotFound = VsctlConsistencyTests.NotFound, Invalid = VsctlConsistencyTests.Invalid;

    /// <summary>The flows of <c>vsctl --json flows ARGS</c>: (flow, actions).</summary>
    private static (string Flow, string Actions)[] JsonFlows(string[] s, params string[] args)
    {
        using var doc = JsonDocument.Parse(Ok([.. s, "--json", "flows", .. args]).Stdout);
        return doc.RootElement.EnumerateArray().Select(f => (f.GetProperty("flow").GetString()!, f.GetProperty("actions").GetString()!)).ToArray();
    }

    [RootFact]
    public void Flows_ports_and_fdb_filter_and_flows_fit_120_columns()
    {
        using var a = new TestNetns("vsf-");
        using var b = new TestNetns("vsf-");
        using var c = new TestNetns("vsf-");
        // Without IPv6, no router solicitations or MLD reports add flows while the test counts them.
        foreach (var ns in new[] { a, b, c })
        {
            ns.Exec("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1");
            ns.Exec("sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1");
        }
        string x = Names.Random("");
        string pa = "vfa" + x, pb = "vfb" + x, pc = "vfc" + x;
        using var d = Vswitchd.Start($$"""
            { "networks": [ { "name": "blue" }, { "name": "red" } ],
              "ports": [
                { "name": "{{pa}}", "network": "blue", "netns": "{{a.Name}}", "addresses": ["10.94.0.1/24"], "mac": "02:94:00:00:00:01" },
                { "name": "{{pb}}", "network": "blue", "netns": "{{b.Name}}", "addresses": ["10.94.0.2/24"], "mac": "02:94:00:00:00:02" },
                { "name": "{{pc}}", "network": "red", "netns": "{{c.Name}}", "addresses": ["10.95.0.1/24"], "mac": "02:95:00:00:00:01" } ],
              "datapath": { "flowIdleSeconds": 300 } }
            """);
        string[] s = ["--socket", d.Socket];

        var ping = a.TryExec(TimeSpan.FromSeconds(20), "ping", "-c", "2", "-i", "0.2", "-W", "2", "10.94.0.2");
        Assert.True(ping.ExitCode == 0, ping.Output);
        c.TryExec(TimeSpan.FromSeconds(10), "ping", "-c", "1", "-W", "1", "10.95.0.9"); // nobody: ARP floods in red

        var all = JsonFlows(s);
        Assert.Contains(all, f => f.Flow.Contains("nw_proto=1,"));
        Assert.Contains(all, f => f.Flow.Contains(",arp,"));
        Assert.Contains(all, f => f.Flow.Contains($"in_port={pc},"));

        // A match in rule syntax, parsed by the daemon: ICMP flows only.
        var icmp = JsonFlows(s, "icmp");
        Assert.NotEmpty(icmp);
        Assert.All(icmp, f => Assert.Contains(",ip,", f.Flow));
        Assert.All(icmp, f => Assert.Contains("nw_proto=1,", f.Flow));
        Assert.True(icmp.Length < all.Length);
        var icmpText = Lines(Ok([.. s, "flows", "icmp"]).Stdout);
        Assert.Equal(icmp.Length + 1, icmpText.Length);

        var inA = JsonFlows(s, $"in_port={pa}");
        Assert.NotEmpty(inA);
        Assert.All(inA, f => Assert.StartsWith($"in_port={pa},", f.Flow));
        Assert.True(inA.Length < all.Length);
        Assert.Equal(JsonFlows(s, "ls", $"in_port={pa}").Length, inA.Length);

        // --port: in on the port or out to it.
        var viaB = JsonFlows(s, "--port", pb);
        Assert.NotEmpty(viaB);
        Assert.All(viaB, f => Assert.True(f.Flow.StartsWith($"in_port={pb},") || f.Actions.Contains($"output:{pb}"), f.ToString()));
        Assert.Contains(viaB, f => f.Actions.Contains($"output:{pb}"));

        // --network: flows that came in on the network's ports.
        var red = JsonFlows(s, "--network", "red");
        Assert.NotEmpty(red);
        Assert.All(red, f => Assert.StartsWith($"in_port={pc},", f.Flow));
        Assert.DoesNotContain(JsonFlows(s, "--network", "blue"), f => f.Flow.Contains(pc));
        Assert.Empty(JsonFlows(s, "icmp", "--network", "red"));

        // Bad filters: the daemon's answer, as for a rule.
        var bad = Vsctl([.. s, "flows", "icmp,nw_dts=10.0.0.1"]);
        Assert.True(bad.ExitCode == Invalid, bad.ToString());
        Assert.Contains("nw_dts", bad.Stderr);
        Assert.Contains("^", bad.Stderr);
        var (status, body) = d.Send(HttpMethod.Get, "/v1/flows?match=" + Uri.EscapeDataString("icmp,nw_dts=10.0.0.1"));
        Assert.Equal(400, status);
        Assert.StartsWith("nw_dts", (string)body!["token"]!);
        Assert.Equal(5, (int)body["position"]!);
        var noPort = Vsctl([.. s, "flows", "--port", "nope"]);
        Assert.True(noPort.ExitCode == NotFound, noPort.ToString());
        Assert.Contains("no port named 'nope'", noPort.Stderr);
        Assert.Equal(NotFound, Vsctl([.. s, "flows", "--network", "nope"]).ExitCode);

        // Width: exact-match flows are long; the default cuts them to 120 columns, --wide prints them whole.
        Assert.Contains(all, f => f.Flow.Length + f.Actions.Length > 120);
        var narrow = Lines(Ok([.. s, "flows"]).Stdout);
        // A flow may appear between the two listings (a late ARP retry under load): at least every flow, one a line.
        Assert.True(narrow.Length >= all.Length + 1, $"{all.Length} flows in JSON, table:\n{string.Join('\n', narrow)}\nJSON:\n{string.Join('\n', all.Select(f => f.Flow))}");
        Assert.True(narrow.Max(l => l.Length) <= 120, string.Join('\n', narrow));
        var wide = Lines(Ok([.. s, "flows", "--wide"]).Stdout);
        Assert.True(wide.Max(l => l.Length) > 120, string.Join('\n', wide));
        foreach (var f in all) Assert.Contains(wide, l => l.Contains(f.Flow) && l.Contains(f.Actions));

        // port ls --network.
        var redPorts = Lines(Ok([.. s, "port", "ls", "--network", "red"]).Stdout);
        Assert.Equal([pc], redPorts.Skip(1).Select(l => Words(l)[0]).ToArray());
        using (var doc = JsonDocument.Parse(Ok([.. s, "--json", "port", "ls", "--network", "blue"]).Stdout))
            Assert.Equal([pa, pb], doc.RootElement.EnumerateArray().Select(p => p.GetProperty("name").GetString()!).ToArray());
        Assert.Equal(NotFound, Vsctl([.. s, "port", "ls", "--network", "nope"]).ExitCode);
        Assert.True(Lines(Ok([.. s, "port", "ls"]).Stdout).Max(l => l.Length) <= 120);

        // fdb show --port.
        var fdbA = Lines(Ok([.. s, "fdb", "show", "--port", pa]).Stdout);
        Assert.Equal(["02:94:00:00:00:01"], fdbA.Skip(1).Select(l => Words(l)[2]).ToArray());
        Assert.All(fdbA.Skip(1), l => Assert.Equal(pa, Words(l)[3]));
        using (var doc = JsonDocument.Parse(Ok([.. s, "--json", "fdb", "show", "--port", pc]).Stdout))
            Assert.All(doc.RootElement.EnumerateArray(), e => Assert.Equal(pc, e.GetProperty("port").GetString()));
        Assert.Equal(NotFound, Vsctl([.. s, "fdb", "show", "--port", "nope"]).ExitCode);
        Assert.True(Lines(Ok([.. s, "show"]).Stdout).Max(l => l.Length) <= 120);

        // Removing a port confirms in one line.
        var rm = Lines(Ok([.. s, "port", "rm", pb]).Stdout);
        Assert.Contains(pb, Assert.Single(rm));
        Assert.Contains("removed", rm[0]);
    }
}
