using System.Text.Json.Nodes;

namespace VSwitch.Integration.Tests;

/// <summary>
/// Bounded everything (issue 19): each limit of the config's "limits" section refuses at its bound,
/// says which setting to raise, and is counted in GET /v1/stats, vsctl stats and /metrics; the README's
/// Limits table names every row the daemon reports.
/// </summary>
[Collection("netns")]
public class LimitsTests
{
    private static string Config(JsonObject limits) => new JsonObject
    {
        ["networks"] = new JsonArray(new JsonObject { ["name"] = "lim", ["subnet"] = "10.251.7.0/24" }),
        ["limits"] = limits,
    }.ToJsonString();

    private static JsonNode Limit(Vswitchd d, string resource) =>
        d.Get("/v1/stats")["limits"]!.AsArray().Single(l => (string)l!["resource"]! == resource)!;

    private static double Metric(Vswitchd d, string series)
    {
        string text = d.Http.GetStringAsync("/metrics").Result;
        var line = text.Split('\n').FirstOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal));
        Assert.True(line is not null, $"/metrics has no {series}");
        return double.Parse(line![(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    [RootFact]
    public void Rules_routes_and_request_bodies_stop_at_their_limit_and_are_counted()
    {
        using var d = Vswitchd.Start(Config(new JsonObject { ["rules"] = 3, ["routes"] = 1, ["apiBodyBytes"] = 2048 }));

        // The default rule counts: two more fit, the third is refused naming the setting, a replacement still goes in.
        Assert.Equal(0, AttachTests.Vsctl(d, "rules", "add", "priority=5,ip,actions=drop").ExitCode);
        Assert.Equal(0, AttachTests.Vsctl(d, "rules", "add", "priority=6,ip,actions=drop").ExitCode);
        var full = AttachTests.Vsctl(d, "rules", "add", "priority=7,ip,actions=drop");
        Assert.Equal(4, full.ExitCode);
        Assert.Contains("the rule table is full: 3 of 3 (raise limits.rules", full.Output);
        var replaced = AttachTests.Vsctl(d, "rules", "add", "priority=6,ip,actions=normal");
        Assert.True(replaced.ExitCode == 0, replaced.Output);
        var rules = Limit(d, "rules");
        Assert.Equal(3, (long)rules["used"]!);
        Assert.Equal(3, (long)rules["limit"]!);
        Assert.Equal(1, (long)rules["hits"]!);

        // One static prefix; a second path (ECMP) to it still fits, a second prefix does not.
        Assert.Equal(0, AttachTests.Vsctl(d, "route", "add", "10.9.0.0/16", "--via", "10.251.7.9").ExitCode);
        Assert.Equal(0, AttachTests.Vsctl(d, "route", "add", "10.9.0.0/16", "--via", "10.251.7.10").ExitCode);
        var noRoom = AttachTests.Vsctl(d, "route", "add", "10.10.0.0/16", "--via", "10.251.7.9");
        Assert.Equal(4, noRoom.ExitCode);
        Assert.Contains("limits.routes", noRoom.Output);
        Assert.Equal(1, (long)Limit(d, "routes")["hits"]!);

        // A body over apiBodyBytes: 413 with the limit named, whether sized up front or chunked.
        string big = new JsonObject { ["rule"] = new string('x', 5000) }.ToJsonString();
        var (status, body) = d.Send(HttpMethod.Post, "/v1/rules", big);
        Assert.Equal(413, status);
        Assert.Equal("request body larger than 2048 bytes (limits.apiBodyBytes)", (string)body!["error"]!);
        var chunked = new HttpRequestMessage(HttpMethod.Post, "/v1/rules") { Content = new StreamContent(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(big))) };
        chunked.Content.Headers.ContentType = new("application/json");
        chunked.Headers.TransferEncodingChunked = true;
        Assert.Equal(413, (int)d.Http.SendAsync(chunked).Result.StatusCode);
        Assert.Equal(2, (long)Limit(d, "api-request-body-bytes")["hits"]!);

        // The same figures in /metrics and in vsctl stats' LIMITS table.
        Assert.Equal(1, Metric(d, "vswitch_limit_hits_total{resource=\"rules\"}"));
        Assert.Equal(3, Metric(d, "vswitch_limit{resource=\"rules\"}"));
        Assert.Equal(2, Metric(d, "vswitch_limit_hits_total{resource=\"api-request-body-bytes\"}"));
        Assert.True(Metric(d, "dotnet_total_memory_bytes") > 0, "the GC heap is exported for soaks");
        var stats = AttachTests.Vsctl(d, "stats");
        Assert.Equal(0, stats.ExitCode);
        var row = VsctlHarness.Lines(stats.StdOut).Single(l => l.StartsWith("rules ", StringComparison.Ordinal));
        Assert.Equal(["rules", "3", "3", "1"], VsctlHarness.Words(row)[..4]);
    }

    [RootFact]
    public void A_mac_flood_past_the_per_port_limit_is_refused_and_counted_as_mac_table_full()
    {
        using var ns = new TestNetns("vslm-");
        using var d = Vswitchd.Start(Config(new JsonObject { ["macTable"] = 64, ["macPerPort"] = 16 }));
        string port = Names.Random("lm");
        Assert.Equal(0, AttachTests.Vsctl(d, "port", "add", port, "--type", "tap", "--network", "lim", "--netns", ns.Name).ExitCode);
        // 40 made-up unicast source MACs from one container (scapy, Debian's python3-scapy).
        string script = Path.Combine(d.Dir, "flood.py");
        File.WriteAllText(script, "import logging\nlogging.getLogger('scapy').setLevel(logging.ERROR)\nfrom scapy.all import Ether, Raw, sendp\n"
            + $"sendp([Ether(src='02:00:00:5a:00:%02x' % i, dst='ff:ff:ff:ff:ff:ff', type=0x88b5)/Raw(b'x'*46) for i in range(40)], iface='{port}', verbose=False)\n");
        var r = ns.TryExec(TimeSpan.FromSeconds(60), "/usr/bin/python3", script);
        Assert.True(r.ExitCode == 0, r.Output);

        JsonNode perPort = null!;
        Wait.Until(() => (long)(perPort = Limit(d, "mac-table-per-port"))["hits"]! >= 24, TimeSpan.FromSeconds(10), "24 refused learns");
        Assert.Equal(16, (long)perPort["used"]!); // the port's share, full; nothing evicted
        Assert.Equal(16, (long)perPort["limit"]!);
        Assert.Equal(64, (long)Limit(d, "mac-table")["limit"]!);
        Assert.True((long)d.Get("/v1/stats")["macLearnsRefused"]! >= 24);
        Assert.True(Metric(d, "vswitch_mac_learns_refused_total") >= 24);
        Assert.True(Metric(d, "vswitch_limit_hits_total{resource=\"mac-table-per-port\"}") >= 24);
    }

    [RootFact]
    public void The_log_budget_leaves_lines_out_and_says_how_many()
    {
        using var d = Vswitchd.Start(Config(new JsonObject { ["logLinesPerSecond"] = 1 }));
        string port = Names.Random("lm");
        try
        {
            // Each add and remove logs a line or more; at one line a second most of a quick burst is left out.
            for (int i = 0; i < 4; i++)
            {
                Assert.Equal(0, AttachTests.Vsctl(d, "port", "add", port, "--type", "tap", "--network", "lim").ExitCode);
                Assert.Equal(0, AttachTests.Vsctl(d, "port", "rm", port).ExitCode);
            }
            var budget = Limit(d, "log-lines-per-second");
            Assert.Equal(1, (long)budget["limit"]!);
            Assert.True((long)budget["hits"]! > 0, budget.ToJsonString());
            // The next line that passes (after a second's refill) first says how many were left out.
            Wait.Until(() =>
            {
                AttachTests.Vsctl(d, "port", "add", port, "--type", "tap", "--network", "lim");
                AttachTests.Vsctl(d, "port", "rm", port);
                return d.Log.Contains("log line(s) left out: over limits.logLinesPerSecond (1 a second)");
            }, TimeSpan.FromSeconds(15), "the summary of the left-out log lines");
        }
        finally { AttachTests.Vsctl(d, "port", "rm", port); }
    }

    [RootFact]
    public void A_bad_limit_stops_the_start_naming_the_field()
    {
        string dir = Directory.CreateTempSubdirectory("vst-l").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "c.json"), Config(new JsonObject { ["macPerPort"] = 0, ["apiBodyBytes"] = 10 }));
            var r = Proc.Run(TimeSpan.FromSeconds(30), Repo.Vswitchd, "--config", Path.Combine(dir, "c.json"),
                "--socket", Path.Combine(dir, "s"), "--state", Path.Combine(dir, "st.db"));
            Assert.Equal(2, r.ExitCode);
            Assert.Contains("limits.macPerPort: 0 must be 1..limits.macTable (65536)", r.Output);
            Assert.Contains("limits.apiBodyBytes: 10 must be 1024..268435456", r.Output);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [RootFact]
    public void The_readme_documents_every_limit_the_daemon_reports()
    {
        using var d = Vswitchd.Start(null);
        string readme = File.ReadAllText(Path.Combine(Repo.Root, "README.md"));
        int at = readme.IndexOf("### Limits", StringComparison.Ordinal);
        Assert.True(at >= 0, "README.md has no '### Limits' section");
        string section = readme[at..];
        foreach (var l in d.Get("/v1/stats")["limits"]!.AsArray())
        {
            Assert.Contains($"| `{(string)l!["resource"]!}` |", section);
            if ((string)l["setting"]! is { Length: > 0 } setting) Assert.Contains($"`{setting}`", section);
        }
    }
}
