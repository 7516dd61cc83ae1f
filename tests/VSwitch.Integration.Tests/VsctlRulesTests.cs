using System.Text.Json;
using static VSwitch.Integration.Tests.VsctlHarness;

namespace VSwitch.Integration.Tests;

/// <summary>
/// vsctl rules / flows / trace / stats' flow cache against a vswitchd with no configuration (no ports, so no
/// traffic: what needs packets is tested elsewhere). Needs no root. Build vsctl and vswitchd first.
/// </summary>
public sealed class VsctlRulesTests
{
    [Fact]
    public void Help_ListsRulesFlowsAndTrace()
    {
        var r = Vsctl("--help");
        Assert.Equal(0, r.ExitCode);
        foreach (string group in new[] { "rules", "flows", "trace" })
            Assert.Contains(group, r.Stdout);
    }

    [Theory]
    [InlineData("trace")]                                                  // no packet
    [InlineData("trace", "in_port=p1,icmp", "--hex", "00")]                // two packets
    [InlineData("trace", "--hex", "0011223344")]                           // a frame needs its port
    [InlineData("trace", "--live", "in_port=p1,icmp")]                     // live records, it takes no packet
    [InlineData("trace", "in_port=p1,icmp", "--count", "3")]               // --count is for --live
    [InlineData("trace", "--live", "--count", "many")]
    [InlineData("trace", "--live", "--timeout", "soon")]
    [InlineData("rules", "add")]                                           // the rule is required
    [InlineData("rules", "del")]                                           // so is the match
    public void BadUsage_Exits2_BeforeContactingTheDaemon(params string[] args)
    {
        var r = Vsctl(["--socket", "/tmp/nonexistent.sock", .. args]);
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.DoesNotContain("cannot reach", r.Stderr);
    }

    [Fact]
    public void LiveDaemon_RulesListAddDelete()
    {
        using var daemon = Daemon.Start();
        string[] s = ["--socket", daemon.Socket];

        // The table starts with the one default rule: everything, normal switching.
        var ls = Vsctl([.. s, "rules", "ls"]);
        Assert.True(ls.ExitCode == 0, ls.ToString());
        var lines = Lines(ls.Stdout);
        Assert.Equal(["PRIORITY", "MATCH", "ACTIONS", "PACKETS", "BYTES", "AGE"], Words(lines[0]));
        Assert.Equal(2, lines.Length);
        Assert.Equal(["0", "*", "normal", "0", "0"], Words(lines[1])[..5]);

        var add = Vsctl([.. s, "rules", "add", "priority=100,ip,nw_dst=10.0.0.0/8,actions=drop"]);
        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Contains("priority=100,ip,nw_dst=10.0.0.0/8,actions=drop", add.Stdout);

        // dump-flows is ls by its ovs-ofctl name; the new rule comes first (higher priority).
        var dump = Vsctl([.. s, "rules", "dump-flows"]);
        Assert.True(dump.ExitCode == 0, dump.ToString());
        lines = Lines(dump.Stdout);
        Assert.Equal(3, lines.Length);
        Assert.Equal(["100", "ip,nw_dst=10.0.0.0/8", "drop", "0", "0"], Words(lines[1])[..5]);
        Assert.Equal(["0", "*", "normal"], Words(lines[2])[..3]);
        Assert.DoesNotContain("COOKIE", lines[0]); // only when some rule has a cookie

        var json = Vsctl([.. s, "--json", "rules", "ls"]);
        Assert.True(json.ExitCode == 0, json.ToString());
        using (var doc = JsonDocument.Parse(json.Stdout))
        {
            var rules = doc.RootElement.EnumerateArray().ToArray();
            Assert.Equal(2, rules.Length);
            var first = rules.Single(r => r.GetProperty("priority").GetInt32() == 100);
            Assert.Equal("drop", first.GetProperty("actions").GetString());
            Assert.Equal("ip,nw_dst=10.0.0.0/8", first.GetProperty("match").GetString());
        }

        // A misspelt field: exit 6 (invalid), the daemon's message naming it, and a caret line under it.
        const string typo = "priority=100,ip,nw_dts=10.0.0.0/8,actions=drop";
        var bad = Vsctl([.. s, "rules", "add", typo]);
        Assert.True(bad.ExitCode == 6, bad.ToString());
        Assert.Equal("", bad.Stdout);
        Assert.StartsWith("vsctl: ", bad.Stderr);
        Assert.Contains("nw_dts", bad.Stderr);
        string[] err = bad.Stderr.Split('\n');
        int echo = Array.FindIndex(err, l => l.Trim() == typo);
        Assert.True(echo > 0, $"the rule is not echoed:\n{bad.Stderr}");
        string caret = err[echo + 1];
        Assert.StartsWith("^", caret.TrimStart());
        Assert.Equal(err[echo].IndexOf("nw_dts", StringComparison.Ordinal), caret.IndexOf('^'));

        // Nothing changed.
        Assert.Equal(3, Lines(Vsctl([.. s, "rules", "ls"]).Stdout).Length);

        // A cookie and an idle timeout bring their columns.
        var cookie = Vsctl([.. s, "rules", "add", "cookie=0x2a,priority=50,idle_timeout=60,udp,tp_dst=53,actions=normal"]);
        Assert.True(cookie.ExitCode == 0, cookie.ToString());
        var withCookie = Lines(Vsctl([.. s, "rules", "ls"]).Stdout);
        Assert.Equal(["PRIORITY", "MATCH", "ACTIONS", "PACKETS", "BYTES", "AGE", "COOKIE", "IDLE"], Words(withCookie[0]));
        Assert.Equal(["50", "udp,tp_dst=53"], Words(withCookie[2])[..2]);
        Assert.Equal(["0x2a", "60"], Words(withCookie[2])[^2..]);
        var strict = Vsctl([.. s, "rules", "del", "priority=50,udp,tp_dst=53", "--strict"]);
        Assert.True(strict.ExitCode == 0, strict.ToString());
        Assert.StartsWith("deleted 1 rule", strict.Stdout);

        // 'ip' covers the drop rule, not the default one.
        var del = Vsctl([.. s, "rules", "del", "ip"]);
        Assert.True(del.ExitCode == 0, del.ToString());
        var delLines = Lines(del.Stdout);
        Assert.Equal("deleted 1 rule", delLines[0]);
        Assert.Equal("priority=100,ip,nw_dst=10.0.0.0/8,actions=drop", Assert.Single(delLines[1..]));
        lines = Lines(Vsctl([.. s, "rules", "ls"]).Stdout);
        Assert.Equal(["0", "*", "normal"], Words(Assert.Single(lines[1..]))[..3]);

        var again = Vsctl([.. s, "--json", "rules", "del", "ip"]);
        Assert.True(again.ExitCode == 0, again.ToString());
        using (var doc = JsonDocument.Parse(again.Stdout))
            Assert.Equal(0, doc.RootElement.GetProperty("removed").GetInt32());

        var badMatch = Vsctl([.. s, "rules", "del", "ip,nw_dst=10.0.0.300"]);
        Assert.True(badMatch.ExitCode == 6, badMatch.ToString());
        Assert.Contains("nw_dst", badMatch.Stderr);
        Assert.Contains("^", badMatch.Stderr);
    }

    [Fact]
    public void LiveDaemon_FlowsTraceAndFlowCacheStats()
    {
        using var daemon = Daemon.Start();
        string[] s = ["--socket", daemon.Socket];

        // An idle switch has no datapath flows: the header alone.
        var flows = Vsctl([.. s, "flows"]);
        Assert.True(flows.ExitCode == 0, flows.ToString());
        var lines = Lines(flows.Stdout);
        Assert.True(lines.Length <= 1, flows.ToString());
        if (lines.Length == 1) Assert.Equal(["THREAD", "PACKETS", "BYTES", "AGE", "IDLE", "FLOW", "ACTIONS"], Words(lines[0]));

        var json = Vsctl([.. s, "--json", "flows"]);
        Assert.True(json.ExitCode == 0, json.ToString());
        Assert.Equal("[]", json.Stdout.Trim());

        var flush = Vsctl([.. s, "flows", "flush"]);
        Assert.True(flush.ExitCode == 0, flush.ToString());
        Assert.Equal("removed 0 flows", flush.Stdout.Trim());

        // A made-up packet from a port that does not exist.
        var trace = Vsctl([.. s, "trace", "in_port=nope,icmp"]);
        Assert.True(trace.ExitCode == 6, trace.ToString()); // the description does not parse: invalid
        Assert.Contains("'nope'", trace.Stderr);
        Assert.Equal("", trace.Stdout);

        var inPort = Vsctl([.. s, "trace", "icmp", "--in-port", "nope"]);
        Assert.True(inPort.ExitCode == 3, inPort.ToString()); // not found
        Assert.Contains("no port named 'nope'", inPort.Stderr);

        var hex = Vsctl([.. s, "trace", "--hex", "zz", "--in-port", "nope"]);
        Assert.True(hex.ExitCode == 6, hex.ToString());
        Assert.Contains("hex", hex.Stderr);

        // A live trace with a bad filter points at it; one with nothing to see ends at its timeout.
        var filter = Vsctl([.. s, "trace", "--live", "--filter", "icmp,nw_dts=10.0.0.1"]);
        Assert.True(filter.ExitCode == 6, filter.ToString());
        Assert.Contains("nw_dts", filter.Stderr);
        Assert.Contains("^", filter.Stderr);

        var live = Vsctl([.. s, "trace", "--live", "--count", "2", "--timeout", "0.5"]);
        Assert.True(live.ExitCode == 0, live.ToString());
        Assert.StartsWith("recorded 0 of 2", live.Stdout.Trim());

        var liveJson = Vsctl([.. s, "--json", "trace", "--live", "--count", "1", "--timeout", "0.2"]);
        Assert.True(liveJson.ExitCode == 0, liveJson.ToString());
        using (var doc = JsonDocument.Parse(liveJson.Stdout))
        {
            Assert.Equal(1, doc.RootElement.GetProperty("requested").GetInt32());
            Assert.Equal(0, doc.RootElement.GetProperty("recorded").GetInt32());
        }

        var range = Vsctl([.. s, "trace", "--live", "--count", "0"]);
        Assert.True(range.ExitCode == 6, range.ToString()); // the daemon checks the range and says so
        Assert.Contains("count", range.Stderr);

        // stats gains the flow cache.
        var stats = Vsctl([.. s, "stats"]);
        Assert.True(stats.ExitCode == 0, stats.ToString());
        Assert.Contains("FLOW CACHE", stats.Stdout);
        foreach (string key in new[] { "flows", "hits", "misses", "revalidations", "evictions", "hit rate" })
            Assert.Contains(Lines(stats.Stdout), l => l.StartsWith(key + " ", StringComparison.Ordinal));

        var statsJson = Vsctl([.. s, "--json", "stats"]);
        Assert.True(statsJson.ExitCode == 0, statsJson.ToString());
        using (var doc = JsonDocument.Parse(statsJson.Stdout))
            Assert.Equal(0, doc.RootElement.GetProperty("flowCache").GetProperty("flows").GetInt64());
    }
}
