using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace VSwitch.Integration.Tests;

/// <summary>
/// Rules, datapath flows, traces, run-time ports, restarts, API errors and metrics against a real
/// vswitchd with namespaces attached by TAP.
/// </summary>
[Collection("netns")]
public class FlowTablesTests
{
    private static readonly TimeSpan PingTimeout = TimeSpan.FromSeconds(20);

    private static bool Pings(TestNetns from, string to, int count = 2, int wait = 1) =>
        from.TryExec(PingTimeout, "ping", "-c", count.ToString(), "-i", "0.2", "-W", wait.ToString(), to).ExitCode == 0;

    private static string Config(string s, TestNetns a, TestNetns b, string subnet, double flowIdle = 10) => $$"""
        { "networks": [ { "name": "blue" } ],
          "ports": [
            { "name": "vta{{s}}", "network": "blue", "netns": "{{a.Name}}", "addresses": ["{{subnet}}.1/24"], "mac": "02:aa:00:00:00:01" },
            { "name": "vtb{{s}}", "network": "blue", "netns": "{{b.Name}}", "addresses": ["{{subnet}}.2/24"], "mac": "02:aa:00:00:00:02" } ],
          "datapath": { "flowIdleSeconds": {{flowIdle}} } }
        """;

    private static JsonNode Ok((int Status, JsonNode? Body) r, int expect = 200)
    {
        Assert.True(r.Status == expect, $"expected {expect}, got {r.Status}: {r.Body}");
        return r.Body ?? new JsonObject();
    }

    [RootFact]
    public void A_drop_rule_stops_ping_and_counts_and_deleting_it_restores_ping()
    {
        using var a = new TestNetns();
        using var b = new TestNetns();
        string s = Names.Random("");
        using var d = Vswitchd.Start(Config(s, a, b, "10.96.0"));
        Assert.True(Pings(a, "10.96.0.2"));

        Ok(d.Send(HttpMethod.Post, "/v1/rules", new { rule = $"priority=100,in_port=vta{s},actions=drop" }), 201);
        Assert.False(Pings(a, "10.96.0.2", count: 3));
        var rule = d.Get("/v1/rules").AsArray().First(r => (int)r!["priority"]! == 100)!;
        Assert.True((long)rule["packets"]! >= 3, rule.ToJsonString());
        Assert.True(d.Drops("rule-drop") >= 3);

        // Strict takes the priority as part of the rule (32768 when not given, as ovs-ofctl does):
        // without it nothing matches, and an empty strict match never takes the default rule.
        Assert.Equal(0, (int)Ok(d.Send(HttpMethod.Delete, $"/v1/rules?match=in_port=vta{s}&strict=true"))["removed"]!);
        Assert.Equal(0, (int)Ok(d.Send(HttpMethod.Delete, "/v1/rules?match=&strict=true"))["removed"]!);
        Assert.Contains(d.Get("/v1/rules").AsArray(), r => (int)r!["priority"]! == 0);
        var del = Ok(d.Send(HttpMethod.Delete, $"/v1/rules?match=priority=100,in_port=vta{s}&strict=true"));
        Assert.Equal(1, (int)del["removed"]!);
        Assert.True(Pings(a, "10.96.0.2"));
    }

    [RootFact]
    public void Datapath_flows_of_a_running_ping_count_up_and_idle_out()
    {
        using var a = new TestNetns();
        using var b = new TestNetns();
        string s = Names.Random("");
        using var d = Vswitchd.Start(Config(s, a, b, "10.97.0", flowIdle: 1.5));
        var ping = a.Start("ping", "-i", "0.1", "-c", "30", "10.97.0.2");
        try
        {
            long Count() => d.Get("/v1/flows").AsArray()
                .Where(f => ((string)f!["flow"]!).Contains("icmp_type=8") && (string)f["actions"]! == $"output:vtb{s}")
                .Sum(f => (long)f!["packets"]!);
            Wait.Until(() => Count() >= 3, TimeSpan.FromSeconds(10), "a cached echo-request flow");
            long first = Count();
            Wait.Until(() => Count() > first + 5, TimeSpan.FromSeconds(10), "the flow's counter to rise");
        }
        finally { Proc.KillQuietly(ping); }
        Wait.Until(() => d.Get("/v1/flows").AsArray().Count == 0, TimeSpan.FromSeconds(10), "flows to idle out");
        Assert.True((long)d.Get("/v1/stats")["flowCache"]!["hits"]! > 0);
    }

    [RootFact]
    public void Trace_names_the_normal_rule_the_learned_mac_and_the_output_or_flood()
    {
        using var a = new TestNetns();
        using var b = new TestNetns();
        string s = Names.Random("");
        using var d = Vswitchd.Start(Config(s, a, b, "10.98.0"));
        Assert.True(Pings(a, "10.98.0.2"));
        var t = Ok(d.Send(HttpMethod.Post, "/v1/trace",
            new { spec = $"in_port=vta{s},icmp,dl_src=02:aa:00:00:00:01,dl_dst=02:aa:00:00:00:02,nw_src=10.98.0.1,nw_dst=10.98.0.2" }));
        string steps = string.Join("\n", t["steps"]!.AsArray().Select(x => (string)x!["detail"]!));
        Assert.Contains("priority=0,actions=normal", steps);
        Assert.Contains($"02:aa:00:00:00:02 learned on vtb{s}", steps);
        Assert.Equal($"output:vtb{s}", (string)t["actions"]!);

        var unknown = Ok(d.Send(HttpMethod.Post, "/v1/trace",
            new { spec = $"in_port=vta{s},icmp,dl_src=02:aa:00:00:00:01,dl_dst=02:aa:00:00:00:99,nw_dst=10.98.0.9" }));
        Assert.Equal("flood", (string)unknown["actions"]!);

        // The same through a raw frame, as vsctl trace --hex sends it.
        var frame = "ffffffffffff" + "02aa00000001" + "0806" + "0001080006040001" + "02aa00000001" + "0a620001" + "000000000000" + "0a620002" + new string('0', 36);
        var hex = Ok(d.Send(HttpMethod.Post, "/v1/trace", new { hex = frame, inPort = $"vta{s}" }));
        Assert.Equal("flood", (string)hex["actions"]!);
    }

    [RootFact]
    public void A_port_added_through_the_api_while_traffic_runs_works_without_restart()
    {
        using var a = new TestNetns();
        using var b = new TestNetns();
        using var c = new TestNetns();
        string s = Names.Random("");
        using var d = Vswitchd.Start(Config(s, a, b, "10.99.0"));
        var ping = a.Start("ping", "-i", "0.1", "-c", "100", "10.99.0.2");
        try
        {
            Ok(d.Send(HttpMethod.Post, "/v1/ports", new { name = "vtc" + s, type = "tap", network = "blue", netns = c.Name, addresses = new[] { "10.99.0.3/24" } }), 201);
            Assert.True(Pings(c, "10.99.0.1"));
            Assert.True(Pings(b, "10.99.0.3"));
        }
        finally { Proc.KillQuietly(ping); }
        Assert.True(c.HasLink("vtc" + s));
        Ok(d.Send(HttpMethod.Delete, "/v1/ports/vtc" + s), 204);
        Wait.Until(() => !c.HasLink("vtc" + s), TimeSpan.FromSeconds(5), "the removed port's TAP to disappear");
        Assert.True(Pings(a, "10.99.0.2"));
    }

    [RootFact]
    public void Everything_acknowledged_survives_sigkill_and_ping_works_again()
    {
        using var a = new TestNetns();
        using var b = new TestNetns();
        string s = Names.Random("");
        string dir;
        using (var d = Vswitchd.StartIn(null, null))
        {
            d.KeepDir = true;
            dir = d.Dir;
            Ok(d.Send(HttpMethod.Post, "/v1/networks", new { name = "green", vlan = 0 }), 201);
            Ok(d.Send(HttpMethod.Post, "/v1/ports", new { name = "vta" + s, type = "tap", network = "green", netns = a.Name, addresses = new[] { "10.100.0.1/24" } }), 201);
            Ok(d.Send(HttpMethod.Post, "/v1/ports", new { name = "vtb" + s, type = "tap", network = "green", netns = b.Name, addresses = new[] { "10.100.0.2/24" } }), 201);
            Ok(d.Send(HttpMethod.Post, "/v1/rules", new { rule = $"priority=50,tcp,in_port=vta{s},tp_dst=9,actions=drop" }), 201);
            Assert.True(Pings(a, "10.100.0.2"));
            d.Kill();
        }
        try
        {
            using var d2 = Vswitchd.StartIn(dir, null); // deletes the folder when disposed
            Assert.Contains(d2.Get("/v1/networks").AsArray(), n => (string)n!["name"]! == "green");
            Assert.Equal(2, d2.Get("/v1/ports").AsArray().Count);
            Assert.Contains(d2.Get("/v1/rules").AsArray(), r => (string)r!["text"]! == $"priority=50,tcp,in_port=vta{s},tp_dst=9,actions=drop");
            Assert.True(Pings(a, "10.100.0.2"));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [RootFact]
    public void Api_errors_are_4xx_with_a_message_and_the_daemon_keeps_running()
    {
        using var d = Vswitchd.Start("""{ "networks": [ { "name": "blue" } ] }""");
        void Bad(int expect, HttpMethod m, string path, object? body, string mention)
        {
            var (status, json) = d.Send(m, path, body);
            Assert.True(status == expect, $"{m} {path}: expected {expect}, got {status}: {json}");
            Assert.Contains(mention, (string)json!["error"]!);
        }
        Bad(404, HttpMethod.Delete, "/v1/ports/nosuch", null, "nosuch");
        Bad(400, HttpMethod.Post, "/v1/rules", new { rule = "priority=1,nw_dts=1.2.3.4,actions=drop" }, "nw_dts");
        Bad(400, HttpMethod.Post, "/v1/networks", "{ this is not json", "invalid JSON");
        Bad(400, HttpMethod.Post, "/v1/networks", """{ "name": "red", "vlan": "ten" }""", "vlan");
        Bad(400, HttpMethod.Post, "/v1/networks", new { name = "red", vlan = 5000 }, "5000");
        Bad(409, HttpMethod.Post, "/v1/networks", new { name = "blue" }, "already exists");
        Bad(400, HttpMethod.Post, "/v1/ports", new { name = "x1", type = "tap", network = "nonet" }, "nonet");
        Bad(400, HttpMethod.Post, "/v1/trace", new { spec = "in_port=ghost,icmp" }, "ghost");
        Assert.False(d.HasExited);
        Assert.Equal("blue", (string)d.Get("/v1/networks").AsArray()[0]!["name"]!);
        Assert.Contains("\"openapi\"", d.Http.GetStringAsync("/openapi/v1.json").Result);
    }

    [RootFact]
    public void Metrics_are_valid_prometheus_text()
    {
        using var a = new TestNetns();
        using var b = new TestNetns();
        string s = Names.Random("");
        using var d = Vswitchd.Start(Config(s, a, b, "10.101.0"));
        Assert.True(Pings(a, "10.101.0.2"));
        // curl over the socket, as an operator (or a Prometheus sidecar) would.
        var r = Proc.Run("curl", "-s", "--unix-socket", d.Socket, "http://localhost/metrics");
        Assert.Equal(0, r.ExitCode);
        var sample = new Regex(@"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*=""[^""]*""(,[a-zA-Z_][a-zA-Z0-9_]*=""[^""]*"")*\})? -?[0-9.e+E-]+$");
        var values = new Dictionary<string, double>();
        foreach (var line in r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("# HELP ") || line.StartsWith("# TYPE ")) continue;
            Assert.Matches(sample, line);
            int sp = line.LastIndexOf(' ');
            values[line[..sp]] = double.Parse(line[(sp + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        }
        Assert.True(values[$"vswitch_port_rx_packets_total{{port=\"vta{s}\"}}"] >= 2);
        Assert.True(values["vswitch_mac_table_entries"] >= 2);
        Assert.True(values.ContainsKey("vswitch_flow_cache_hits_total"));
    }
}
