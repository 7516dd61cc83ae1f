using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace VSwitch.Integration.Tests;

/// <summary>
/// Services end to end: real HTTP and UDP servers in backend namespaces, real clients (ab, curl, python's
/// http.client) in a client namespace on another network, a VIP of the service range reached through the
/// client's gateway. Load balancing by Maglev with weights, drain, hairpin, health checks, UDP.
/// </summary>
[Collection("netns")]
public class ServiceTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const string Vip = "10.96.0.10";
    private static readonly string Script = Path.Combine(Repo.Root, "tests/VSwitch.Integration.Tests/Services/svc.py");

    /// <summary>
    /// A daemon with a client network and a backend network (connected), a client namespace and
    /// <c>n</c> backend namespaces (labelled app=web) each running the HTTP (and UDP) server of svc.py.
    /// </summary>
    internal sealed class Rig : IDisposable
    {
        public readonly Vswitchd D;
        public readonly TestNetns Client;
        public readonly List<TestNetns> Backends = [];
        public readonly List<string> Ips = [];
        public readonly Dictionary<string, Process> Servers = [];
        private readonly List<Process> _processes = [];
        public readonly string Dir = Directory.CreateTempSubdirectory("vst-svc").FullName;

        public Rig(int n, bool udp = false, string? limits = null, bool clientPortSecurity = true)
        {
            Client = new TestNetns("vssc-");
            try
            {
                for (int i = 0; i < n; i++) Backends.Add(new TestNetns("vssb-"));
                D = Vswitchd.Start("""{"networks":[{"name":"front","subnet":"10.81.0.0/24"},{"name":"back","subnet":"10.82.0.0/24"}]""" + (limits is null ? "" : ",\"limits\":" + limits) + "}");
                Ok("network", "connect", "front", "back");
                Ok(["attach", Client.Name, "--network", "front", .. clientPortSecurity ? Array.Empty<string>() : ["--port-security", "off"]]);
                for (int i = 0; i < n; i++)
                {
                    var j = JsonNode.Parse(Ok("--json", "attach", Backends[i].Name, "--network", "back", "--label", "app=web"))!;
                    Ips.Add((string)j["ip"]!);
                    Servers["b" + (i + 1)] = Track(Backends[i].Start("/usr/bin/python3", Script, "http", "b" + (i + 1), "8080"));
                    if (udp) Track(Backends[i].Start("/usr/bin/python3", Script, "udp", "b" + (i + 1), "5353"));
                }
                for (int i = 0; i < n; i++)
                {
                    int k = i;
                    Wait.Until(() => Client.TryExec(TimeSpan.FromSeconds(5), "curl", "-s", "-m", "1", $"http://{Ips[k]}:8080/count").ExitCode == 0,
                        TimeSpan.FromSeconds(20), $"backend b{k + 1} to listen");
                }
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public Process Track(Process p)
        {
            _processes.Add(p);
            return p;
        }

        public ProcessResult Vsctl(params string[] args) => Proc.Run(TimeSpan.FromSeconds(60), Repo.Vsctl, ["--socket", D.Socket, .. args]);

        public string Ok(params string[] args)
        {
            var r = Vsctl(args);
            Assert.True(r.ExitCode == 0, $"vsctl {string.Join(' ', args)}: {r.Output}\n{D?.Log}");
            return r.StdOut;
        }

        public JsonNode Service(string name) => D.Get("/v1/services/" + name);

        public JsonNode Backend(string service, string address) =>
            Service(service)["backends"]!.AsArray().First(b => (string)b!["address"]! == address)!;

        /// <summary>Requests served on / by each backend, as the servers count them.</summary>
        public int Served(int i) => int.Parse(Client.Exec("curl", "-s", "-m", "2", $"http://{Ips[i]}:8080/count").Trim());

        /// <summary>The daemon's services namespace: named after its state database (ServiceNamespace).</summary>
        public string ServicesNetns => "vsd-" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(Path.GetFullPath(Path.Combine(D.Dir, "state.db")))))[..8].ToLowerInvariant();

        /// <summary>Waits until every backend of a service is healthy and in the table.</summary>
        public void WaitHealthy(string service, int count) =>
            Wait.Until(() => Service(service)["backends"]!.AsArray().Count(b => (bool)b!["inTable"]! && (string)b["health"]! == "healthy") == count,
                TimeSpan.FromSeconds(20), $"{count} healthy backends of {service}");

        public void Dispose()
        {
            foreach (var p in _processes) Proc.KillQuietly(p);
            string? svcns = null;
            try { svcns = D is null ? null : ServicesNetns; } catch (Exception) { }
            D?.Dispose();
            if (svcns is not null) Proc.Run("ip", "netns", "del", svcns);
            foreach (var b in Backends) b.Dispose();
            Client.Dispose();
            try { Directory.Delete(Dir, true); } catch (IOException) { }
        }
    }

    [RootFact]
    public void Three_weighted_backends_share_1000_new_connections_by_weight_within_20_percent()
    {
        using var r = new Rig(3);
        r.Ok("service", "add", "web", "--vip", Vip, "--port", "80/tcp");
        for (int i = 0; i < 3; i++) r.Ok("service", "backend", "add", "web", $"{r.Ips[i]}:8080", "--weight", (i + 1).ToString());
        r.WaitHealthy("web", 3);

        // ab opens a new connection for every request (no -k).
        var ab = r.Client.TryExec(TimeSpan.FromSeconds(120), "ab", "-n", "1000", "-c", "4", "-s", "5", $"http://{Vip}/");
        Assert.True(ab.ExitCode == 0, ab.Output);
        Assert.Contains("Complete requests:      1000", ab.StdOut);
        Assert.Contains("Failed requests:        0", ab.StdOut);
        var served = Enumerable.Range(0, 3).Select(r.Served).ToArray();
        Assert.Equal(1000, served.Sum());
        output.WriteLine($"weights 1:2:3, served {string.Join(" : ", served)} of 1000 (expected 167 : 333 : 500)");
        for (int i = 0; i < 3; i++)
        {
            double expected = 1000.0 * (i + 1) / 6;
            Assert.True(Math.Abs(served[i] - expected) <= 0.2 * expected,
                $"backend weight {i + 1} served {served[i]} of 1000, expected {expected:F0} ± 20 % (all: {string.Join(", ", served)})");
            // The switch's own count of new connections per backend says the same, give or take a pick that made no
            // connection (seen once: 339 picks, 338 served; not explained yet: perhaps a first packet picked again
            // before its entry was committed).
            Assert.InRange((long)r.Backend("web", $"{r.Ips[i]}:8080")["connectionsTotal"]!, served[i], served[i] + 5);
        }
        var inspect = r.Ok("service", "inspect", "web");
        Assert.Contains($"{r.Ips[2]}:8080", inspect);
        Assert.Contains("healthy", inspect);

        // Prometheus has the same per backend.
        string metrics = r.D.Http.GetStringAsync("/metrics").Result;
        // The counter counts the picks: a SYN sent again before its connection was entered is picked again, so it may
        // run a few ahead of what was served (seen under load: 339 picks for 338 served); it may not be far off.
        var picked = System.Text.RegularExpressions.Regex.Match(metrics,
            $"vswitch_service_backend_connections_total\\{{service=\"web\",backend=\"{System.Text.RegularExpressions.Regex.Escape(r.Ips[2])}:8080\"\\}} (\\d+)");
        Assert.True(picked.Success, "no per-backend connection counter in /metrics");
        long pickedCount = long.Parse(picked.Groups[1].Value);
        Assert.True(Math.Abs(pickedCount - served[2]) <= Math.Max(3, served[2] / 50),
            $"the counter says {pickedCount} connections for {served[2]} served");
        Assert.Contains("vswitch_service_backends_in_table{service=\"web\"} 3", metrics);

        // vsctl trace shows the service, the backend Maglev chose and the translation.
        string port = (string)JsonNode.Parse(r.Ok("--json", "attach", "ls"))!.AsArray().First(a => (string)a!["netns"]! == r.Client.Name)!["port"]!;
        var trace = r.Ok("trace", $"in_port={port},tcp,nw_src=10.81.0.2,nw_dst={Vip},tp_src=40000,tp_dst=80");
        Assert.Matches($@"lb web: {Vip}:80 -> 10\.82\.0\.\d:8080 \(maglev: backend", trace);
    }

    [RootFact]
    public void A_draining_backend_finishes_its_connections_and_gets_no_new_one()
    {
        using var r = new Rig(3);
        r.Ok("service", "add", "web", "--vip", Vip, "--port", "80:8080/tcp", "--selector", "app=web");
        r.WaitHealthy("web", 3);
        var client = r.Track(r.Client.Start("/usr/bin/python3", Script, "drain", $"http://{Vip}/", r.Dir, "60"));
        string kept = client.StandardOutput.ReadLine() ?? throw new InvalidOperationException("client said nothing: " + client.StandardError.ReadToEnd());
        Assert.StartsWith("kept b", kept);
        int which = int.Parse(kept["kept b".Length..]) - 1;
        r.Ok("service", "backend", "drain", "web", r.Ips[which]);
        Assert.Equal("draining", (string)r.Backend("web", r.Ips[which])["state"]!);
        File.WriteAllText(Path.Combine(r.Dir, "drained"), "");
        Assert.True(client.WaitForExit(60_000), "the drain client did not finish");
        var result = JsonNode.Parse(client.StandardOutput.ReadToEnd())!;
        output.WriteLine($"drained b{which + 1}: {result.ToJsonString()}");
        Assert.Equal(0, (int)result["failed"]!);
        Assert.Equal($"b{which + 1}", (string)result["keptAgain"]!); // the open connection goes on, on its backend
        var seen = result["newBackends"]!.AsObject();
        Assert.False(seen.ContainsKey($"b{which + 1}"), $"a new connection reached the draining backend: {result}");
        Assert.Equal(60, seen.Sum(kv => (int)kv.Value!));
        Assert.Equal(2, seen.Count);
    }

    [RootFact]
    public void A_backend_calling_its_own_service_gets_an_answer_hairpin()
    {
        using var r = new Rig(3);
        r.Ok("service", "add", "web", "--vip", Vip, "--port", "80:8080/tcp", "--selector", "app=web");
        r.WaitHealthy("web", 3);
        var answers = new Dictionary<string, int>();
        for (int i = 0; i < 30; i++)
        {
            var c = r.Backends[0].TryExec(TimeSpan.FromSeconds(10), "curl", "-s", "-m", "3", $"http://{Vip}/");
            Assert.True(c.ExitCode == 0, $"request {i} from backend b1 to its own service failed: {c.Output}");
            string who = c.StdOut.Trim();
            answers[who] = answers.GetValueOrDefault(who) + 1;
        }
        // 30 connections over 3 backends: b1 answering itself is the hairpin (missing it by chance: (2/3)^30 ≈ 5e-6).
        output.WriteLine("from b1: " + string.Join(", ", answers));
        Assert.True(answers.ContainsKey("b1"), $"no request of b1 came back to b1: {string.Join(", ", answers)}");
        Assert.Equal(30, answers.Values.Sum());
    }

    [RootFact]
    public void A_killed_backend_leaves_within_3_seconds_and_connections_to_the_others_never_break()
    {
        using var r = new Rig(3);
        r.Ok("service", "add", "web", "--vip", Vip, "--port", "80:8080/tcp", "--selector", "app=web");
        r.WaitHealthy("web", 3);
        var client = r.Track(r.Client.Start("/usr/bin/python3", Script, "steady", $"http://{Vip}/", r.Dir, "10"));
        string kept = client.StandardOutput.ReadLine() ?? throw new InvalidOperationException("client said nothing: " + client.StandardError.ReadToEnd());
        var keptNames = kept.Split(' ').Skip(1).ToArray();
        Assert.Equal(2, keptNames.Length);
        string victim = new[] { "b1", "b2", "b3" }.First(b => !keptNames.Contains(b));
        Proc.KillQuietly(r.Servers[victim]);
        File.WriteAllText(Path.Combine(r.Dir, "killed"), "");
        Assert.True(client.WaitForExit(60_000), "the steady client did not finish");
        var result = JsonNode.Parse(client.StandardOutput.ReadToEnd())!;
        output.WriteLine(result.ToJsonString());
        Assert.True((bool)result["killSeen"]!);
        var late = result["failedAfterKillSeconds"]!.AsArray().Select(x => (double)x!).Where(t => t > 3.0).ToArray();
        Assert.True(late.Length == 0, $"requests failed more than 3 s after the kill: {result}");
        Assert.Empty(result["keptFailures"]!.AsArray());
        Assert.DoesNotContain(victim, result["backendsAfterKill"]!.AsArray().Select(x => (string)x!));
        int i = int.Parse(victim[1..]) - 1;
        var b = r.Backend("web", r.Ips[i]);
        Assert.Equal("unhealthy", (string)b["health"]!);
        Assert.False((bool)b["inTable"]!);

        // It comes back when it is healthy again.
        r.Servers[victim] = r.Track(r.Backends[i].Start("/usr/bin/python3", Script, "http", victim, "8080"));
        r.WaitHealthy("web", 3);
    }

    [RootFact]
    public void Client_ip_affinity_sends_one_client_to_one_backend()
    {
        using var r = new Rig(3);
        r.Ok("service", "add", "web", "--vip", Vip, "--port", "80:8080/tcp", "--selector", "app=web", "--affinity", "client-ip", "--affinity-timeout", "3h");
        r.WaitHealthy("web", 3);
        var who = new HashSet<string>();
        for (int i = 0; i < 20; i++)
        {
            var c = r.Client.TryExec(TimeSpan.FromSeconds(10), "curl", "-s", "-m", "3", $"http://{Vip}/");
            Assert.True(c.ExitCode == 0, c.Output);
            who.Add(c.StdOut.Trim());
        }
        Assert.Single(who);
        Assert.Equal(10800, (int)r.Service("web")["affinityTimeoutSeconds"]!);
    }

    [RootFact]
    public void A_udp_service_is_balanced_and_its_replies_come_from_the_vip()
    {
        using var r = new Rig(3, udp: true);
        r.Ok("service", "add", "dns", "--vip", "10.96.0.53", "--port", "53:5353/udp", "--selector", "app=web");
        var c = r.Client.TryExec(TimeSpan.FromSeconds(60), "/usr/bin/python3", Script, "udpclient", "10.96.0.53", "53", "60");
        Assert.True(c.ExitCode == 0, c.Output);
        var result = JsonNode.Parse(c.StdOut)!;
        output.WriteLine(result.ToJsonString());
        Assert.Equal(0, (int)result["lost"]!);
        Assert.Equal(new[] { "10.96.0.53:53" }, result["sources"]!.AsArray().Select(x => (string)x!).ToArray());
        Assert.Equal(3, result["backends"]!.AsObject().Count);
        Assert.Equal("unchecked", (string)r.Service("dns")["backends"]![0]!["health"]!);
    }

    [RootFact]
    public void Services_survive_a_restart_and_bad_input_is_refused_by_name()
    {
        string dir;
        using (var r = new Rig(1))
        {
            r.Ok("service", "add", "web", "--vip", Vip, "--port", "80:8080/tcp");
            r.Ok("service", "backend", "add", "web", $"{r.Ips[0]}:8080", "--weight", "5");
            var inside = r.Vsctl("service", "add", "bad", "--vip", "10.82.0.77", "--port", "80/tcp");
            Assert.Equal(6, inside.ExitCode);
            Assert.Contains("10.82.0.77 is inside network 'back'", inside.Output);
            var badPort = r.Vsctl("service", "add", "bad", "--vip", "10.96.0.11", "--port", "80/sctp");
            Assert.Contains("'sctp'", badPort.Output);
            var dup = r.Vsctl("service", "add", "web2", "--vip", Vip, "--port", "80/tcp");
            Assert.Equal(4, dup.ExitCode);
            var weight = r.Vsctl("service", "backend", "add", "web", "10.82.0.9:80", "--weight", "0");
            Assert.Contains("weight: 0", weight.Output);
            Assert.Equal(3, r.Vsctl("service", "backend", "drain", "web", "10.82.0.99").ExitCode);

            r.D.KeepDir = true;
            dir = r.D.Dir;
            r.D.Stop();
            using var again = Vswitchd.StartIn(dir, null);
            var s = again.Get("/v1/services/web");
            Assert.Equal(Vip, (string)s["vip"]!);
            Assert.Equal(5, (int)s["backends"]![0]!["weight"]!);
            Wait.Until(() => (string)again.Get("/v1/services/web")["backends"]![0]!["health"]! == "healthy", TimeSpan.FromSeconds(20), "the backend healthy after the restart");
            var c = r.Client.TryExec(TimeSpan.FromSeconds(10), "curl", "-s", "-m", "3", $"http://{Vip}/");
            Assert.Equal("b1", c.StdOut.Trim());
            again.KeepDir = false;
        }
    }

    [RootFact]
    public void Dns_at_the_gateway_answers_services_and_containers_by_name_and_nxdomain_otherwise()
    {
        using var r = new Rig(1);
        r.Ok("service", "add", "web", "--vip", Vip, "--port", "80:8080/tcp", "--selector", "app=web");
        const string gw = "10.81.0.1";
        Wait.Until(() => r.Client.TryExec(TimeSpan.FromSeconds(10), "dig", "+short", "+time=1", "+tries=1", "@" + gw, "web").StdOut.Trim() == Vip,
            TimeSpan.FromSeconds(20), "dig @gateway web to give the VIP");
        Assert.Equal(Vip, r.Client.Exec("dig", "+short", "+tcp", "+time=2", "@" + gw, "web").Trim());
        Assert.Equal(Vip, r.Client.Exec("dig", "+short", "+time=2", "@" + gw, "web.vswitch").Trim());
        Assert.Equal(r.Ips[0], r.Client.Exec("dig", "+short", "+time=2", "@" + gw, r.Backends[0].Name).Trim());
        var nx = r.Client.Exec("dig", "+time=2", "@" + gw, "nosuchname");
        Assert.Contains("status: NXDOMAIN", nx);
        Assert.Contains("status: NXDOMAIN", r.Client.Exec("dig", "+time=2", "+tcp", "@" + gw, "example.com"));
        // getent reads /etc/resolv.conf, which ip netns exec takes from /etc/netns/NAME/resolv.conf.
        Assert.Contains($"nameserver {gw}", File.ReadAllText($"/etc/netns/{r.Client.Name}/resolv.conf"));
        Assert.StartsWith(Vip, r.Client.Exec("getent", "hosts", "web").Trim());
        Assert.NotEqual(0, r.Client.TryExec(TimeSpan.FromSeconds(10), "getent", "hosts", "nosuchname").ExitCode);
        // The DNS server answers from the gateway's address, as the client asked.
        Assert.Contains($"SERVER: {gw}#53", r.Client.Exec("dig", "+time=2", "@" + gw, "web"));
        var att = r.D.Get("/v1/attachments?netns=" + r.Client.Name)[0]!;
        Assert.Equal(gw, (string)att["dns"]!["nameservers"]![0]!);
        Assert.Equal("vswitch", (string)att["dns"]!["search"]![0]!);
        string metrics = r.D.Http.GetStringAsync("/metrics").Result;
        Assert.Matches(@"vswitch_dns_nxdomain_total [1-9]", metrics);
        r.Ok("detach", r.Client.Name);
        Wait.Until(() => !File.Exists($"/etc/netns/{r.Client.Name}/resolv.conf"), TimeSpan.FromSeconds(10), "resolv.conf to go with the attachment");
    }

    [RootFact]
    public void A_full_conntrack_table_drops_new_connections_counts_them_and_keeps_the_old_ones()
    {
        using var r = new Rig(1, limits: """{"conntrack":16}""");
        // No health checks: their probes would be connections too, in a table of 16.
        r.Ok("service", "add", "web", "--vip", Vip, "--port", "80:8080/tcp", "--selector", "app=web", "--no-health-check");
        var c = r.Client.TryExec(TimeSpan.FromSeconds(120), "/usr/bin/python3", Script, "fill", $"http://{Vip}/", "30");
        Assert.True(c.ExitCode == 0, c.Output);
        var result = JsonNode.Parse(c.StdOut)!;
        output.WriteLine($"{result.ToJsonString()}, conntrack-full drops {r.D.Drops("conntrack-full")}");
        Assert.Equal("b1", (string)result["first"]!);
        Assert.Equal("b1", (string)result["again"]!); // the connection made before the table filled goes on
        Assert.InRange((int)result["opened"]!, 1, 15);
        Assert.True((int)result["refused"]! >= 15, result.ToJsonString());
        Assert.True(r.D.Drops("conntrack-full") > 0, "conntrack-full drops are not counted");
        Assert.False(r.D.HasExited);
        Assert.NotNull(r.D.Get("/v1/services/web"));
    }

    [RootFact]
    public void With_client_ip_affinity_known_clients_keep_their_backend_until_the_timeout_then_at_most_1_over_N_plus_2_percent_move()
    {
        // 200 clients: addresses of the client namespace (its port security off, so it may send from all of them).
        using var r = new Rig(3, clientPortSecurity: false);
        const int first = 20, count = 200, timeout = 15;
        for (int i = first; i < first + count; i++) r.Client.Exec("ip", "addr", "add", $"10.81.0.{i}/24", "dev", "eth0");
        r.Ok("service", "add", "web", "--vip", Vip, "--port", "80:8080/tcp", "--selector", "app=web", "--affinity", "client-ip",
            "--affinity-timeout", $"{timeout}s");
        r.WaitHealthy("web", 3);
        JsonObject Ask()
        {
            var c = r.Client.TryExec(TimeSpan.FromSeconds(120), "/usr/bin/python3", Script, "clients", Vip, "10.81.0", first.ToString(), count.ToString());
            Assert.True(c.ExitCode == 0, c.Output);
            var o = JsonNode.Parse(c.StdOut)!.AsObject();
            Assert.DoesNotContain(o, kv => ((string)kv.Value!).StartsWith("error", StringComparison.Ordinal));
            return o;
        }
        var before = Ask();
        Assert.Equal(before.ToJsonString(), Ask().ToJsonString()); // affinity: the same client, the same backend
        Assert.Equal(count, (int)r.Service("web")["affinityClients"]!);

        using var b4 = new TestNetns("vssb-");
        r.Ok("attach", b4.Name, "--network", "back", "--label", "app=web");
        r.Track(b4.Start("/usr/bin/python3", Script, "http", "b4", "8080"));
        r.WaitHealthy("web", 4);
        // Within the timeout every known client keeps its backend although the Maglev table changed.
        var sticky = Ask();
        Assert.Equal(before.ToJsonString(), sticky.ToJsonString());
        Assert.True((long)r.Service("web")["affinityHits"]! >= 2 * count);

        // Not seen for the timeout, they are forgotten (the reaper runs every 2 s) and hashed again.
        var deadline = DateTime.UtcNow.AddSeconds(timeout + 20);
        while ((int)r.Service("web")["affinityClients"]! > 0 && DateTime.UtcNow < deadline) Thread.Sleep(500);
        Assert.Equal(0, (int)r.Service("web")["affinityClients"]!);
        var after = Ask();
        int moved = before.Count(kv => (string)after[kv.Key]! != (string)kv.Value!);
        int toNew = after.Count(kv => (string)kv.Value! == "b4");
        double share = (double)moved / count, bound = 1.0 / 4 + 0.02;
        output.WriteLine($"3 -> 4 backends, after the affinity timeout: {moved} of {count} clients ({share:P1}) changed backend, {toNew} to the new one; bound {bound:P1}");
        Assert.True(share <= bound, $"{share:P1} of clients changed backend (bound {bound:P1})");
        Assert.True(toNew > 0);
        Assert.Equal(moved, toNew); // the ones that moved went to the new backend, none between the old ones
    }
}
