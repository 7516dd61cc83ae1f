using System.Diagnostics;
using System.Text.Json.Nodes;

namespace VSwitch.Integration.Tests;

/// <summary>
/// Network policy with identities (labels), as a Kubernetes user expects it: a three-tier
/// application (web may reach app on 8080, app may reach db on 5432, nothing else) gives exactly that
/// matrix through real TCP connections; replies pass; established connections survive policy changes;
/// a policy that newly isolates a container cuts new connections only; traces name the policy.
/// </summary>
[Collection("netns")]
public class NetworkPolicyTests
{
    /// <summary>Echo servers on the ports given, one thread a connection (python3 is on every Debian).</summary>
    private const string EchoServer = """
        import socket, sys, threading
        def echo(c):
            try:
                while True:
                    d = c.recv(4096)
                    if not d: break
                    c.sendall(d)
            except OSError: pass
            c.close()
        def serve(p):
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', p)); s.listen(64)
            while True:
                c, _ = s.accept(); threading.Thread(target=echo, args=(c,), daemon=True).start()
        for p in sys.argv[1:]: threading.Thread(target=serve, args=(int(p),), daemon=True).start()
        threading.Event().wait(120)
        """;

    /// <summary>Connects, sends a line, expects it back: exit 0, else 1 (refused, timed out, wrong answer).</summary>
    private const string Probe = """
        import socket, sys
        try:
            s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1.5)
            s.sendall(b'ping\n'); sys.exit(0 if s.recv(16) == b'ping\n' else 1)
        except OSError: sys.exit(1)
        """;

    /// <summary>One connection held open for argv[3] seconds, a line every 100 ms, each echoed within 2 s: exit 0 when all were.</summary>
    private const string Held = """
        import socket, sys, time
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
        print('connected', flush=True)
        end = time.time() + float(sys.argv[3]); n = 0
        while time.time() < end:
            s.sendall(b'x\n')
            if s.recv(16) != b'x\n': sys.exit(1)
            n += 1; time.sleep(0.1)
        print('lines', n, flush=True)
        """;

    private sealed class Tier : IDisposable
    {
        public required TestNetns Ns;
        public required string Ip;
        public Process? Server;

        public void Dispose()
        {
            if (Server is not null) Proc.KillQuietly(Server);
            Ns.Dispose();
        }
    }

    private static string Config(string subnet, string gw) =>
        new JsonObject { ["networks"] = new JsonArray(new JsonObject { ["name"] = "blue", ["subnet"] = subnet, ["gateway"] = gw }) }.ToJsonString();

    private static Tier Start(Vswitchd d, string app)
    {
        var ns = new TestNetns("vspol-");
        var r = AttachTests.Vsctl(d, "--json", "attach", ns.Name, "--network", "blue", "--label", "app=" + app);
        Assert.True(r.ExitCode == 0, r.Output);
        var tier = new Tier { Ns = ns, Ip = (string)JsonNode.Parse(r.StdOut)!["ip"]! };
        tier.Server = ns.Start("python3", "-c", EchoServer, "8080", "5432");
        Wait.Until(() => ns.TryExec(TimeSpan.FromSeconds(5), "ss", "-ltn").StdOut is var o && o.Contains(":8080") && o.Contains(":5432"),
            TimeSpan.FromSeconds(10), $"the echo servers in {app}");
        return tier;
    }

    private static bool Connects(Tier from, Tier to, int port) =>
        from.Ns.TryExec(TimeSpan.FromSeconds(10), "python3", "-c", Probe, to.Ip, port.ToString()).ExitCode == 0;

    private static Process Hold(Tier from, Tier to, int port, int seconds)
    {
        var p = from.Ns.Start("python3", "-c", Held, to.Ip, port.ToString(), seconds.ToString());
        Assert.Equal("connected", p.StandardOutput.ReadLine());
        return p;
    }

    private static void Ok(Vswitchd d, params string[] args)
    {
        var r = AttachTests.Vsctl(d, args);
        Assert.True(r.ExitCode == 0, $"vsctl {string.Join(' ', args)}: {r.Output}");
    }

    [RootFact]
    public void A_three_tier_policy_gives_exactly_the_allowed_matrix_keeps_established_connections_and_names_itself_in_traces()
    {
        using var d = Vswitchd.Start(Config("10.61.0.0/24", "10.61.0.1"));
        using var web = Start(d, "web");
        using var app = Start(d, "app");
        using var db = Start(d, "db");
        var tiers = new[] { ("web", web), ("app", app), ("db", db) };

        // No policy: everything connects, and conntrack is off.
        Assert.True(Connects(web, db, 5432));
        Assert.False((bool)d.Get("/v1/conntrack")["tracking"]!);

        Ok(d, "policy", "add", "app-ingress", "--selector", "app=app", "--ingress-from", "app=web", "--port", "8080/tcp");
        Ok(d, "policy", "add", "db-ingress", "--selector", "app=db", "--ingress-from", "app=app", "--port", "5432/tcp");
        Ok(d, "policy", "add", "web-ingress", "--selector", "app=web", "--ingress");
        Assert.True((bool)d.Get("/v1/conntrack")["tracking"]!);

        var wrong = new List<string>();
        foreach (var (fromName, from) in tiers)
            foreach (var (toName, to) in tiers)
            {
                if (from == to) continue;
                foreach (int port in new[] { 8080, 5432 })
                {
                    bool expected = (fromName, toName, port) is ("web", "app", 8080) or ("app", "db", 5432);
                    if (Connects(from, to, port) != expected) wrong.Add($"{fromName} -> {toName}:{port} {(expected ? "refused" : "connected")}");
                }
            }
        Assert.True(wrong.Count == 0, "policy matrix wrong: " + string.Join("; ", wrong));
        Assert.True(d.Drops("policy-denied") >= 10, $"policy-denied drops: {d.Drops("policy-denied")}");

        // Counted per policy; the trace names the policy that denied.
        var policies = d.Get("/v1/policies").AsArray();
        var dbPolicy = policies.First(p => (string?)p!["name"] == "db-ingress")!;
        Assert.True((long)dbPolicy["allowedConnections"]! >= 1);
        Assert.True((long)dbPolicy["deniedConnections"]! >= 1);
        Assert.Single(dbPolicy["selected"]!.AsArray());
        var ls = AttachTests.Vsctl(d, "policy", "ls");
        Assert.Contains("from app=app on 5432/tcp", ls.StdOut);
        var webPort = (string)d.Get("/v1/attachments").AsArray().First(a => (string?)a!["ip"] == web.Ip)!["port"]!;
        var trace = AttachTests.Vsctl(d, "trace", $"in_port={webPort},tcp,nw_src={web.Ip},nw_dst={db.Ip},tp_dst=5432,dl_dst={Mac(d, db.Ip)}");
        Assert.Contains("denied by policy db-ingress", trace.Output);

        // An established connection survives an unrelated policy, and a policy that newly isolates its
        // destination (new connections to it are refused, this one goes on).
        var held = Hold(web, app, 8080, 4);
        Ok(d, "policy", "add", "unrelated", "--selector", "app=nothing", "--ingress");
        Ok(d, "policy", "add", "app-ingress", "--selector", "app=app", "--ingress-from", "app=db", "--port", "8080/tcp"); // web no longer allowed
        Assert.False(Connects(web, app, 8080));
        Assert.True(held.WaitForExit(15_000), "the held connection did not end");
        Assert.True(held.ExitCode == 0, "the established connection broke: " + held.StandardError.ReadToEnd());
        var ct = d.Get($"/v1/conntrack?src={web.Ip}&port=8080")["connections"]!.AsArray();
        Assert.Contains(ct, c => (string?)c!["tcpState"] is "TIME_WAIT" or "LAST_ACK" or "FIN_WAIT" or "CLOSE_WAIT" or "CLOSE");

        // Deleting every policy opens everything again.
        foreach (var name in new[] { "app-ingress", "db-ingress", "web-ingress", "unrelated" }) Ok(d, "policy", "del", name);
        Assert.True(Connects(db, web, 8080));
    }

    [RootFact]
    public void Egress_rules_with_address_blocks_and_exceptions_and_policies_survive_a_restart()
    {
        string? dir = null;
        try
        {
            using var a = new TestNetns("vspol-");
            using var b = new TestNetns("vspol-");
            using (var d = Vswitchd.Start(Config("10.62.0.0/24", "10.62.0.1")))
            {
                d.KeepDir = true;
                dir = d.Dir;
                var ta = new Tier { Ns = a, Ip = Attach(d, a, "client") };
                var tb = new Tier { Ns = b, Ip = Attach(d, b, "server") };
                tb.Server = b.Start("python3", "-c", EchoServer, "8080", "5432");
                Wait.Until(() => b.TryExec(TimeSpan.FromSeconds(5), "ss", "-ltn").StdOut.Contains(":5432"), TimeSpan.FromSeconds(10), "the echo server");
                // The client may open connections only into 10.62.0.0/24 minus the server's own /32 on 5432.
                Ok(d, "policy", "add", "client-egress", "--selector", "app=client", "--egress-to", "10.62.0.0/24", "--except", tb.Ip + "/32", "--port", "5432/tcp");
                Assert.False(Connects(ta, tb, 5432));
                Ok(d, "policy", "add", "client-egress", "--selector", "app=client", "--egress-to", "10.62.0.0/24", "--port", "5432/tcp");
                Assert.True(Connects(ta, tb, 5432));
                Assert.False(Connects(ta, tb, 8080));
                var bad = AttachTests.Vsctl(d, "policy", "add", "x", "--selector", "app=client", "--egress-to", "10.62.0.0/24", "--except", "10.63.0.0/24");
                Assert.NotEqual(0, bad.ExitCode);
                Assert.Contains("10.63.0.0/24", bad.Output);
                Proc.KillQuietly(tb.Server);
                Assert.Equal(0, d.Stop());
            }
            using var d2 = Vswitchd.StartIn(dir, null);
            var restored = d2.Get("/v1/policies/client-egress");
            Assert.Equal("client", (string)restored["selector"]!["app"]!);
            Assert.Single(restored["selected"]!.AsArray());
        }
        finally
        {
            if (dir is not null) try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    [RootFact]
    public void A_policy_naming_a_container_of_another_network_opens_the_path_between_isolated_networks_for_that_traffic_only()
    {
        var cfg = new JsonObject
        {
            ["networks"] = new JsonArray(
                new JsonObject { ["name"] = "blue", ["subnet"] = "10.64.0.0/24", ["gateway"] = "10.64.0.1" },
                new JsonObject { ["name"] = "green", ["subnet"] = "10.65.0.0/24", ["gateway"] = "10.65.0.1" }),
        }.ToJsonString();
        using var d = Vswitchd.Start(cfg);
        using var web = new TestNetns("vspol-");
        using var db = new TestNetns("vspol-");
        using var other = new TestNetns("vspol-");
        string webIp = Attach(d, web, "web");
        string otherIp = Attach(d, other, "other");
        var r = AttachTests.Vsctl(d, "--json", "attach", db.Name, "--network", "green", "--label", "app=db");
        Assert.True(r.ExitCode == 0, r.Output);
        string dbIp = (string)JsonNode.Parse(r.StdOut)!["ip"]!;
        bool Ping(TestNetns from, string to) => from.TryExec(TimeSpan.FromSeconds(10), "ping", "-c", "1", "-W", "1", to).ExitCode == 0;

        Assert.False(Ping(web, dbIp));  // isolated networks
        Ok(d, "policy", "add", "db-from-web", "--selector", "app=db", "--ingress-from", "app=web");
        Assert.True(Ping(web, dbIp), "the policy should open blue -> green for web");
        Assert.False(Ping(other, dbIp)); // another container of blue: still isolated
        Assert.True(d.Drops("network-isolated") >= 2);
        Ok(d, "policy", "del", "db-from-web");
        Assert.False(Ping(web, dbIp));
    }

    [RootFact]
    public void Tracked_connections_go_on_across_a_hitless_restart_with_their_state()
    {
        using var d = Vswitchd.Start(Config("10.66.0.0/24", "10.66.0.1"));
        int? successor = null;
        try
        {
            using var web = Start(d, "web");
            using var app = Start(d, "app");
            Ok(d, "policy", "add", "app-ingress", "--selector", "app=app", "--ingress-from", "app=web", "--port", "8080/tcp");
            var held = Hold(web, app, 8080, 6);
            Wait.Until(() => d.Get($"/v1/conntrack?src={web.Ip}&port=8080&state=ESTABLISHED")["connections"]!.AsArray().Count == 1,
                TimeSpan.FromSeconds(10), "the held connection in conntrack");
            var r = VsctlHarness.Vsctl("--socket", d.Socket, "--json", "restart");
            Assert.True(r.ExitCode == 0, r.ToString());
            successor = (int)JsonNode.Parse(r.Stdout)!["newPid"]!;
            Wait.Until(() => d.HasExited, TimeSpan.FromSeconds(20), "the old vswitchd to exit");
            Assert.Contains("tracked connections taken over", d.Log);
            // The connection is the one that was tracked before (not taken up again mid-stream), and it never broke.
            var ct = d.Get($"/v1/conntrack?src={web.Ip}&port=8080")["connections"]!.AsArray();
            var c = Assert.Single(ct);
            Assert.DoesNotContain("PICKED_UP", c!["status"]!.AsArray().Select(x => (string)x!));
            Assert.True(held.WaitForExit(20_000), "the held connection did not end");
            Assert.True(held.ExitCode == 0, "the connection broke across the restart: " + held.StandardError.ReadToEnd());
            Assert.True(Connects(web, app, 8080));
        }
        finally
        {
            if (successor is int pid) RestartTests.StopByPid(pid);
        }
    }

    private static string Attach(Vswitchd d, TestNetns ns, string app)
    {
        var r = AttachTests.Vsctl(d, "--json", "attach", ns.Name, "--network", "blue", "--label", "app=" + app);
        Assert.True(r.ExitCode == 0, r.Output);
        return (string)JsonNode.Parse(r.StdOut)!["ip"]!;
    }

    private static string Mac(Vswitchd d, string ip) =>
        (string)d.Get("/v1/attachments").AsArray().First(a => (string?)a!["ip"] == ip)!["mac"]!;
}
