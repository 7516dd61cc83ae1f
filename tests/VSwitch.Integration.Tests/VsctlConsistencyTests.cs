using System.Net.Sockets;
using System.Text.Json;
using static VSwitch.Integration.Tests.VsctlHarness;

namespace VSwitch.Integration.Tests;

/// <summary>
/// What every vsctl command shares, against a vswitchd with no ports (no root needed): a group lists on its own,
/// every change confirms in one line, errors have distinct exit codes (README: "Exit codes") and with --json come
/// back as JSON on stdout; rules ls takes a match; tables fit 120 columns unless --wide. Build vsctl and vswitchd first.
/// </summary>
public sealed class VsctlConsistencyTests
{
    // The exit codes the README documents.
    public const int Error = 1, Usage = 2, NotFound = 3, Conflict = 4, Unreachable = 5, Invalid = 6;

    private static Result Fails(int exit, params string[] args)
    {
        var r = Vsctl(args);
        Assert.True(r.ExitCode == exit, $"vsctl {string.Join(' ', args)}: expected exit {exit}: {r}");
        return r;
    }

    /// <summary>A change's confirmation: one line, naming what changed.</summary>
    private static string OneLine(Result r, params string[] mentions)
    {
        var lines = Lines(r.Stdout);
        Assert.True(lines.Length == 1, $"expected one line of confirmation: {r}");
        foreach (string m in mentions) Assert.Contains(m, lines[0]);
        return lines[0];
    }

    /// <summary>With --json, an error is one JSON object on stdout with the error, its code and the documented exit code; nothing on stderr.</summary>
    private static JsonElement JsonError(int exit, string code, params string[] args)
    {
        var r = Vsctl(["--json", .. args]);
        Assert.True(r.ExitCode == exit, $"vsctl --json {string.Join(' ', args)}: expected exit {exit}: {r}");
        Assert.True(r.Stderr.Trim() == "", $"--json errors go to stdout only: {r}");
        using var doc = JsonDocument.Parse(r.Stdout);
        var e = doc.RootElement.Clone();
        Assert.Equal(JsonValueKind.Object, e.ValueKind);
        Assert.False(string.IsNullOrWhiteSpace(e.GetProperty("error").GetString()), r.ToString());
        Assert.Equal(code, e.GetProperty("code").GetString());
        return e;
    }

    [Theory]
    [InlineData("network")]
    [InlineData("port")]
    [InlineData("fdb")]
    [InlineData("rules")]
    [InlineData("flows")]
    [InlineData("route")]
    [InlineData("neigh")]
    [InlineData("vtep")]
    [InlineData("attach")]
    public void A_group_alone_lists_like_its_ls(string group)
    {
        using var daemon = Daemon.Start("""{ "networks": [ { "name": "blue", "subnet": "10.31.0.0/24" } ] }""");
        string[] s = ["--socket", daemon.Socket];
        var bare = Ok([.. s, group]);
        var ls = Ok([.. s, group, group == "fdb" ? "show" : "ls"]);
        // The same table (the header, then as many rows; AGE may tick between the two runs).
        Assert.Equal(Lines(ls.Stdout).Length, Lines(bare.Stdout).Length);
        Assert.Equal(Lines(ls.Stdout).FirstOrDefault(), Lines(bare.Stdout).FirstOrDefault());
        Assert.NotEmpty(Lines(bare.Stdout));
        // And with --json, the same JSON.
        using var a = JsonDocument.Parse(Ok([.. s, "--json", group]).Stdout);
        Assert.True(a.RootElement.ValueKind is JsonValueKind.Array or JsonValueKind.Object);
    }

    [Fact]
    public void Every_change_confirms_in_one_line()
    {
        using var daemon = Daemon.Start();
        string[] s = ["--socket", daemon.Socket];

        OneLine(Ok([.. s, "network", "add", "red", "--subnet", "10.32.1.0/24"]), "red");
        OneLine(Ok([.. s, "network", "add", "plain"]), "plain");
        OneLine(Ok([.. s, "route", "add", "10.32.9.0/24", "--via", "10.32.1.254"]), "10.32.9.0/24");
        OneLine(Ok([.. s, "route", "add", "10.32.9.0/24", "--dev", "red"]), "10.32.9.0/24");
        OneLine(Ok([.. s, "route", "del", "10.32.9.0/24", "--dev", "red"]), "10.32.9.0/24", "dev red", "deleted");
        OneLine(Ok([.. s, "route", "del", "10.32.9.0/24"]), "10.32.9.0/24", "deleted");
        OneLine(Ok([.. s, "neigh", "add", "--network", "red", "10.32.1.50", "02:00:00:00:00:50"]), "10.32.1.50");
        OneLine(Ok([.. s, "neigh", "flush"]), "removed");
        OneLine(Ok([.. s, "fdb", "flush"]), "removed");
        OneLine(Ok([.. s, "flows", "flush"]), "removed");
        OneLine(Ok([.. s, "rules", "add", "priority=7,udp,actions=drop"]), "priority=7");
        OneLine(Ok([.. s, "network", "rm", "plain"]), "plain", "removed");
    }

    [Fact]
    public void Overlay_changes_confirm_in_one_line()
    {
        using var daemon = EndpointDaemon();
        string[] s = ["--socket", daemon.Socket];
        OneLine(Ok([.. s, "vtep", "add", "ov", "10.9.9.2"]), "10.9.9.2");
        OneLine(Ok([.. s, "vtep", "del", "ov", "10.9.9.2"]), "10.9.9.2", "ov", "deleted");
        OneLine(Ok([.. s, "fdb", "add", "ov", "02:00:00:00:00:07", "--vtep", "10.9.9.3"]), "02:00:00:00:00:07");
        OneLine(Ok([.. s, "fdb", "del", "ov", "02:00:00:00:00:07"]), "02:00:00:00:00:07", "ov", "deleted");
    }

    [Fact]
    public void Neigh_add_without_network_picks_the_network_whose_subnet_holds_the_address()
    {
        using var daemon = Daemon.Start();
        string[] s = ["--socket", daemon.Socket];
        Ok([.. s, "network", "add", "red", "--subnet", "10.33.1.0/24"]);
        Ok([.. s, "network", "add", "blue", "--subnet", "10.33.2.0/24"]);

        OneLine(Ok([.. s, "neigh", "add", "10.33.2.9", "02:00:00:00:00:09"]), "10.33.2.9", "blue");
        var rows = Lines(Ok([.. s, "neigh", "ls", "--network", "blue"]).Stdout).Skip(1).Select(Words).ToArray();
        Assert.Equal([["blue", "10.33.2.9", "02:00:00:00:00:09", "permanent", "-"]], rows);

        // In no network's subnet: refused, naming the candidates and how to choose.
        var none = Fails(Invalid, [.. s, "neigh", "add", "192.0.2.1", "02:00:00:00:00:0a"]);
        Assert.StartsWith("vsctl: ", none.Stderr);
        Assert.Contains("192.0.2.1", none.Stderr);
        Assert.Contains("red", none.Stderr);
        Assert.Contains("blue", none.Stderr);
        Assert.Contains("--network", none.Stderr);
    }

    [Fact]
    public void Errors_have_distinct_exit_codes_in_plain_mode()
    {
        using var daemon = Daemon.Start("""{ "networks": [ { "name": "blue" } ] }""");
        string[] s = ["--socket", daemon.Socket];

        var notFound = Fails(NotFound, [.. s, "network", "inspect", "nope"]);
        Assert.Equal("vsctl: no network named 'nope'", Lines(notFound.Stderr)[0]);
        Assert.Equal("", notFound.Stdout);
        Assert.Contains("already exists", Fails(Conflict, [.. s, "network", "add", "blue"]).Stderr);
        Assert.Contains("vlan", Fails(Invalid, [.. s, "network", "add", "red", "--vlan", "5000"]).Stderr);
        Assert.Contains("nw_dts", Fails(Invalid, [.. s, "rules", "add", "priority=1,nw_dts=1.2.3.4,actions=drop"]).Stderr);
        Assert.StartsWith("vsctl: ", Fails(Usage, [.. s, "network", "add"]).Stderr);
        string missing = $"/tmp/nonexistent-{Guid.NewGuid():N}.sock";
        Assert.Contains("cannot reach vswitchd", Fails(Unreachable, "--socket", missing, "show").Stderr);
    }

    [Fact]
    public void Json_errors_are_json_with_their_code_and_exit_code()
    {
        using var daemon = Daemon.Start("""{ "networks": [ { "name": "blue" } ] }""");
        string[] s = ["--socket", daemon.Socket];

        var notFound = JsonError(NotFound, "not-found", [.. s, "network", "inspect", "nope"]);
        Assert.Equal("no network named 'nope'", notFound.GetProperty("error").GetString());
        Assert.Equal(404, notFound.GetProperty("status").GetInt32());
        JsonError(NotFound, "not-found", [.. s, "port", "rm", "nope"]);
        JsonError(NotFound, "not-found", [.. s, "route", "del", "10.9.0.0/16"]);

        var conflict = JsonError(Conflict, "conflict", [.. s, "network", "add", "blue"]);
        Assert.Contains("already exists", conflict.GetProperty("error").GetString());
        Assert.Equal(409, conflict.GetProperty("status").GetInt32());

        // A rule that does not parse keeps the daemon's token and position.
        var invalid = JsonError(Invalid, "invalid", [.. s, "rules", "add", "priority=1,nw_dts=1.2.3.4,actions=drop"]);
        Assert.Equal(400, invalid.GetProperty("status").GetInt32());
        Assert.StartsWith("nw_dts", invalid.GetProperty("token").GetString());
        Assert.Equal(11, invalid.GetProperty("position").GetInt32());
        JsonError(Invalid, "invalid", [.. s, "network", "add", "red", "--vlan", "5000"]);

        // Usage errors, before any request: JSON too.
        var usage = JsonError(Usage, "usage", [.. s, "network", "add"]);
        Assert.Contains("'add'", usage.GetProperty("error").GetString());
        JsonError(Usage, "usage", [.. s, "frobnicate"]);
        JsonError(Usage, "usage", [.. s, "network", "add", "red", "--vlan", "ten"]);

        // The daemon cannot be reached: no socket, or a socket nobody listens on.
        string missing = $"/tmp/nonexistent-{Guid.NewGuid():N}.sock";
        var gone = JsonError(Unreachable, "unreachable", "--socket", missing, "show");
        Assert.Contains(missing, gone.GetProperty("error").GetString());
        string stale = $"/tmp/vst-stale-{Guid.NewGuid():N}.sock";
        try
        {
            using var sock = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            sock.Bind(new UnixDomainSocketEndPoint(stale));
            var refused = JsonError(Unreachable, "unreachable", "--socket", stale, "port", "ls");
            Assert.Contains("connection refused", refused.GetProperty("error").GetString());
        }
        finally { File.Delete(stale); }

        // Errors vsctl finds itself (no attachment by that name) have their code too.
        JsonError(NotFound, "not-found", [.. s, "detach", "nosuchns"]);
    }

    [Fact]
    public void Rules_ls_takes_a_match_and_lists_the_rules_at_least_as_specific()
    {
        using var daemon = Daemon.Start();
        string[] s = ["--socket", daemon.Socket];
        Ok([.. s, "rules", "add", "priority=100,tcp,tp_dst=80,actions=drop"]);
        Ok([.. s, "rules", "add", "priority=90,tcp,nw_dst=10.0.0.0/8,actions=normal"]);
        Ok([.. s, "rules", "add", "priority=80,udp,actions=normal"]);
        Ok([.. s, "rules", "add", "priority=70,ip,actions=normal"]);

        var tcp = Lines(Ok([.. s, "rules", "ls", "tcp"]).Stdout);
        Assert.Equal(["100", "90"], tcp.Skip(1).Select(l => Words(l)[0]).ToArray());
        // The group takes it too, and so does --json.
        Assert.Equal(tcp.Length, Lines(Ok([.. s, "rules", "tcp"]).Stdout).Length);
        using (var doc = JsonDocument.Parse(Ok([.. s, "--json", "rules", "ls", "tcp,tp_dst=80"]).Stdout))
            Assert.Equal(100, Assert.Single(doc.RootElement.EnumerateArray()).GetProperty("priority").GetInt32());
        // With priority=N, only that priority; with --strict, exactly that match.
        Assert.Equal(["90"], Lines(Ok([.. s, "rules", "ls", "priority=90,tcp"]).Stdout).Skip(1).Select(l => Words(l)[0]).ToArray());
        Assert.Equal(["70"], Lines(Ok([.. s, "rules", "ls", "ip", "--strict"]).Stdout).Skip(1).Select(l => Words(l)[0]).ToArray());
        // 'ip' covers every IP rule, not the default one; '' (or nothing) is all.
        Assert.Equal(5, Lines(Ok([.. s, "rules", "ls", "ip"]).Stdout).Length);
        Assert.Equal(6, Lines(Ok([.. s, "rules", "ls"]).Stdout).Length);

        // A bad match: the daemon's message, a caret under the token, exit 6.
        var bad = Fails(Invalid, [.. s, "rules", "ls", "tcp,tp_dts=80"]);
        Assert.Contains("tp_dts", bad.Stderr);
        Assert.Contains("^", bad.Stderr);
        var json = JsonError(Invalid, "invalid", [.. s, "rules", "ls", "tcp,tp_dts=80"]);
        Assert.StartsWith("tp_dts", json.GetProperty("token").GetString());
    }

    [Fact]
    public void Rules_fit_120_columns_and_wide_shows_them_whole()
    {
        using var daemon = Daemon.Start();
        string[] s = ["--socket", daemon.Socket];
        const string match = "tcp,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,nw_src=10.100.200.0/24,nw_dst=10.200.100.0/24,tp_src=12345,tp_dst=54321";
        const string actions = "mod_dl_src:02:00:00:00:00:aa,mod_dl_dst:02:00:00:00:00:bb,dec_ttl,mod_vlan_vid:100,normal";
        var added = Ok([.. s, "rules", "add", $"cookie=0x1234,priority=100,idle_timeout=30,hard_timeout=60,{match},actions={actions}"]);
        Assert.Contains(match, added.Stdout); // a confirmation is never cut

        var narrow = Lines(Ok([.. s, "rules", "ls"]).Stdout);
        Assert.True(narrow.Max(l => l.Length) <= 120, string.Join('\n', narrow));
        Assert.Contains(narrow, l => l.Contains('…'));
        Assert.StartsWith("PRIORITY", narrow[0]);

        var wide = Lines(Ok([.. s, "rules", "ls", "--wide"]).Stdout);
        Assert.Contains(wide, l => l.Contains(match) && l.Contains(actions));
        Assert.DoesNotContain(wide, l => l.Contains('…'));
    }

    /// <summary>vswitchd with its VXLAN endpoint on 127.0.0.1 (a free UDP port) and a VXLAN network "ov".</summary>
    private static Daemon EndpointDaemon()
    {
        int port;
        using (var probe = new UdpClient(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0)))
            port = ((System.Net.IPEndPoint)probe.Client.LocalEndPoint!).Port;
        return Daemon.Start($$"""
            { "overlay": { "local": "127.0.0.1", "port": {{port}} }, "networks": [ { "name": "ov", "vni": 42 } ] }
            """);
    }
}
