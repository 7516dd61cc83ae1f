using System.Diagnostics;
using System.Text.Json.Nodes;

namespace VSwitch.Integration.Tests;

/// <summary>
/// Issue 17, port mirroring: a mirror of port A to port M: tcpdump in M's namespace sees A's ICMP both ways, the
/// mirror's counters are exactly A's frames in and out, it survives a restart, and bad mirrors are refused by name.
/// </summary>
[Collection("netns")]
public class MirrorTests
{
    private static string Config(string s, params (string Name, TestNetns Ns, string Ip)[] ports) => new JsonObject
    {
        ["networks"] = new JsonArray(new JsonObject { ["name"] = "blue" }),
        ["ports"] = new JsonArray(ports.Select(p => (JsonNode)new JsonObject
        {
            ["name"] = p.Name, ["type"] = "tap", ["network"] = "blue", ["netns"] = p.Ns.Name, ["addresses"] = new JsonArray(p.Ip),
        }).ToArray()),
    }.ToJsonString();

    /// <summary>No IPv6 (router solicitations, MLD) in a namespace: then a port's only frames are the test's.</summary>
    private static TestNetns Quiet()
    {
        var ns = new TestNetns("vmir-");
        ns.Exec("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1");
        ns.Exec("sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1");
        return ns;
    }

    private static (long Rx, long Tx) Counters(Vswitchd d, string port)
    {
        var c = d.Port(port)["counters"]!;
        return ((long)c["rxPackets"]!, (long)c["txPackets"]!);
    }

    [RootFact]
    public void A_mirror_of_a_port_shows_its_traffic_both_ways_on_the_output_port_counts_it_and_survives_a_restart()
    {
        using var a = Quiet();
        using var b = Quiet();
        using var m = Quiet();
        string s = Names.Random("");
        string pa = "mia" + s, pb = "mib" + s, pm = "mim" + s;
        var d = Vswitchd.Start(Config(s, (pa, a, "10.96.0.1/24"), (pb, b, "10.96.0.2/24"), (pm, m, "10.96.0.9/24")));
        string dir = d.Dir;
        Process? dump = null;
        try
        {
            var (status, body) = d.Send(HttpMethod.Post, "/v1/mirrors", new { name = "span", sources = new[] { pa }, output = pm });
            Assert.True(status == 201, $"{status} {body}");
            var before = Counters(d, pa);
            // --immediate-mode: each frame as it comes (a TPACKET_V3 block not yet retired is lost on exit); -c 11: one more than
            // the 10 expected, so that an extra copy would show; it is stopped by SIGINT after the counts settled.
            dump = m.Start("tcpdump", "-i", pm, "--immediate-mode", "-l", "-n", "-c", "11", "icmp");
            var seenLines = new System.Collections.Concurrent.ConcurrentQueue<string>();
            var reader = dump;
            var seen = Task.Run(async () =>
            {
                for (string? line; (line = await reader.StandardOutput.ReadLineAsync()) is not null;) seenLines.Enqueue(line);
                return string.Join('\n', seenLines);
            });
            // tcpdump says "listening on" once its socket is open: from then on it sees every frame.
            var listening = Task.Run(async () =>
            {
                for (string? line; (line = await dump.StandardError.ReadLineAsync()) is not null;)
                    if (line.Contains("listening on")) return true;
                return false;
            });
            Assert.True(listening.Wait(TimeSpan.FromSeconds(10)) && listening.Result, "tcpdump did not start");
            var ping = a.TryExec(TimeSpan.FromSeconds(20), "ping", "-c", "5", "-i", "0.2", "10.96.0.2");
            Assert.True(ping.ExitCode == 0, ping.Output);
            // Every frame A received and sent was copied once; tcpdump sees the ICMP of them (tcpdump stops on SIGINT, then a moment).
            Wait.Until(() => (long)d.Get("/v1/mirrors/span")["packets"]! == Counters(d, pa).Rx - before.Rx + Counters(d, pa).Tx - before.Tx,
                TimeSpan.FromSeconds(5), "the mirror's count to equal A's frames in and out");
            var after = Counters(d, pa);
            long copies = (long)d.Get("/v1/mirrors/span")["packets"]!;
            Assert.True(copies >= 10, $"{copies} copies");
            Wait.Until(() => seenLines.Count >= 10, TimeSpan.FromSeconds(10), "tcpdump in M to print the 10 copies of the ICMP");
            Proc.Run("kill", "-INT", dump.Id.ToString());
            Assert.True(dump.WaitForExit(10_000), "tcpdump did not stop");
            var lines = seen.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            string said = $"tcpdump in M saw: {seen.Result}; port M: {d.Port(pm)["counters"]}";
            Assert.True(lines.Count(l => l.Contains("IP 10.96.0.1 > 10.96.0.2: ICMP echo request")) == 5, said); // received on A
            Assert.True(lines.Count(l => l.Contains("IP 10.96.0.2 > 10.96.0.1: ICMP echo reply")) == 5, said);   // sent on A
            Assert.True(lines.Length == 10, said);
            Assert.Equal(after.Rx - before.Rx + after.Tx - before.Tx, copies);

            // Stored: after a restart it is there again and copies again.
            d.KeepDir = true;
            Assert.Equal(0, d.Stop());
            d.Dispose();
            d = Vswitchd.StartIn(dir, null);
            var listed = d.Get("/v1/mirrors").AsArray();
            Assert.Single(listed);
            Assert.Equal(pm, (string)listed[0]!["output"]!);
            Assert.True(a.TryExec(TimeSpan.FromSeconds(20), "ping", "-c", "2", "-i", "0.2", "10.96.0.2").ExitCode == 0);
            Wait.Until(() => (long)d.Get("/v1/mirrors/span")["packets"]! >= 4, TimeSpan.FromSeconds(5), "copies after the restart");
        }
        finally
        {
            if (dump is not null) Proc.KillQuietly(dump);
            d.KeepDir = false;
            d.Dispose();
        }
    }

    [RootFact]
    public void Bad_mirrors_are_refused_naming_the_bad_value()
    {
        using var a = Quiet();
        using var m = Quiet();
        string s = Names.Random("");
        string pa = "mia" + s, pm = "mim" + s;
        using var d = Vswitchd.Start(Config(s, (pa, a, "10.96.1.1/24"), (pm, m, "10.96.1.9/24")));
        var cases = new (object Body, int Status, string Says)[]
        {
            (new { name = "x", sources = new[] { "nope" }, output = pm }, 404, "no port named 'nope'"),
            (new { name = "x", sources = new[] { pa }, output = "gone" }, 404, "no port named 'gone'"),
            (new { name = "x", sources = new[] { pa }, output = pa }, 400, $"output '{pa}' is also a source"),
            (new { name = "x", sources = new[] { pa }, output = pm, direction = "up" }, 400, "direction 'up'"),
            (new { name = "x", sources = new[] { pa }, output = pm, vlan = 5000 }, 400, "vlan 5000"),
        };
        foreach (var (body, status, says) in cases)
        {
            var (st, err) = d.Send(HttpMethod.Post, "/v1/mirrors", body);
            Assert.Equal(status, st);
            Assert.Contains(says, (string)err!["error"]!);
        }
        Assert.Equal(201, d.Send(HttpMethod.Post, "/v1/mirrors", new { name = "one", sources = new[] { pa }, output = pm }).Status);
        Assert.Equal(409, d.Send(HttpMethod.Post, "/v1/mirrors", new { name = "one", sources = new[] { pa }, output = pm }).Status);
        // The output of one mirror may not be the source of another: its copies would be copied again.
        var (loop, why) = d.Send(HttpMethod.Post, "/v1/mirrors", new { name = "two", sources = new[] { pm }, output = pa });
        Assert.Equal(400, loop);
        Assert.Contains("copied again", (string)why!["error"]!);
        Assert.Equal(204, d.Send(HttpMethod.Delete, "/v1/mirrors/one").Status);
        Assert.Equal(404, d.Send(HttpMethod.Delete, "/v1/mirrors/one").Status);
    }
}
