using System.Text.Json.Nodes;

namespace VSwitch.Integration.Tests;

/// <summary>
/// North-south (issue 22): a network's host port (the host's own interface on it), masquerade of
/// connections leaving through the host, and published ports. The "outside" is a namespace joined to
/// the host's namespace by a veth with addresses of its own (100.64.X.0/24); nothing leaves the machine.
/// The host's rules, routes and sysctls the switch sets must be gone when it stops.
/// </summary>
[Collection("netns")]
public class NorthSouthTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>A switch with one routed network (a host port on it) and one container, and an outside namespace joined to the host.</summary>
    private sealed class Setup : IDisposable
    {
        public readonly TestNetns Container = new("vns-");
        public readonly TestNetns Outside = new("vno-");
        public readonly TestVeth Uplink;
        public readonly Vswitchd D;
        public readonly string Net = Names.Random("ns");
        public readonly string Subnet;     // "10.A.B"
        public readonly string OutNet;     // "100.64.X"
        public readonly string Sfx = Names.Random("");
        public string HostAddress => Subnet + ".254";
        public string ContainerIp => Subnet + ".2";
        public string HostOutside => OutNet + ".1";
        public string OutsideIp => OutNet + ".2";
        public string Device => "vsh-" + Net;

        public Setup(bool masquerade = true, bool secondContainer = false, TestNetns? second = null)
        {
            var rnd = Random.Shared;
            Subnet = $"10.{rnd.Next(200, 250)}.{rnd.Next(1, 254)}";
            OutNet = $"100.64.{rnd.Next(1, 254)}";
            try
            {
                Uplink = new TestVeth(Outside, OutsideIp + "/24");
                Proc.Check("ip", "addr", "add", HostOutside + "/24", "dev", Uplink.Outer);
                string ports = $$"""{ "name": "vnc{{Sfx}}", "network": "{{Net}}", "netns": "{{Container.Name}}", "addresses": ["{{ContainerIp}}/24"] }""";
                if (second is not null)
                    ports += $$""", { "name": "vnd{{Sfx}}", "network": "{{Net}}", "netns": "{{second.Name}}", "addresses": ["{{Subnet}}.3/24"] }""";
                D = Vswitchd.Start($$"""
                    { "networks": [ { "name": "{{Net}}", "subnet": "{{Subnet}}.0/24", "hostPort": true, "masquerade": {{(masquerade ? "true" : "false")}} } ],
                      "ports": [ {{ports}} ] }
                    """);
            }
            catch { Dispose(); throw; }
        }

        public void Dispose()
        {
            D?.Dispose();
            Uplink?.Dispose();
            Outside.Dispose();
            Container.Dispose();
        }

    }

    /// <summary>The host as it was: no rule or route of the host port's table, the local rule back at priority 0, no device.</summary>
    private static void AssertHostRestored(string device)
    {
        int table = TableFor(device);
        string rules = Proc.Check("ip", "rule", "show");
        Assert.DoesNotContain($"lookup {table}", rules);
        Assert.Matches(@"(?m)^0:\s+from all lookup local", rules);
        Assert.Equal("", Proc.Run("ip", "route", "show", "table", table.ToString()).StdOut.Trim());
        Assert.False(Proc.Run("ip", "link", "show", "dev", device).ExitCode == 0, device + " still exists");
    }

    /// <summary>The table number the daemon gives a host port (VSwitchd.NorthSouth.HostNat.TableFor).</summary>
    private static int TableFor(string device)
    {
        uint h = 2166136261;
        foreach (char c in device) h = (h ^ c) * 16777619;
        return 7_600_000 + (int)(h % 100_000);
    }

    /// <summary>An HTTP server in a namespace that logs each client's address (python's http.server writes "ADDR - - [...] GET").</summary>
    private static System.Diagnostics.Process HttpServer(TestNetns ns, string ip, int port)
    {
        var p = ns.Start("python3", "-u", "-m", "http.server", "-b", ip, port.ToString());
        Wait.Until(() => ns.TryExec(TimeSpan.FromSeconds(5), "ss", "-ltn").StdOut.Contains($"{ip}:{port}"), TimeSpan.FromSeconds(10), "the HTTP server to listen");
        return p;
    }

    private static string Curl(TestNetns ns, string url)
    {
        var r = ns.TryExec(Timeout, "curl", "-sS", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}", url);
        Assert.True(r.ExitCode == 0 && r.StdOut.Trim() == "200", $"curl {url}: exit {r.ExitCode}: {r.Output}");
        return r.StdOut;
    }

    private static string StopAndLog(System.Diagnostics.Process p)
    {
        Proc.KillQuietly(p);
        p.WaitForExit(5000);
        return p.StandardError.ReadToEnd() + p.StandardOutput.ReadToEnd();
    }

    private static string BuiltVsctl => Path.Combine(Repo.Root, "tools/vsctl/bin", Repo.Configuration, "net10.0/vsctl.dll");

    private static VsctlHarness.Result Vsctl(Setup s, params string[] args) => VsctlHarness.Ok(["--socket", s.D.Socket, .. args]);

    /// <summary>The masqueraded connections to the outside server in the conntrack table (GET /v1/conntrack?nat=snat).</summary>
    private static JsonArray Masqueraded(Setup s, int port) =>
        new(s.D.Get($"/v1/conntrack?nat=snat&dst={s.OutsideIp}").AsObject()["connections"]!.AsArray()
            .Where(c => (int)c!["origDport"]! == port).Select(c => c!.DeepClone()).ToArray());

    [RootFact]
    public void The_host_and_a_container_ping_each_other_over_the_host_port()
    {
        string device;
        using (var s = new Setup())
        {
            int table = TableFor(s.Device);
            var net = s.D.Get("/v1/networks/" + s.Net);
            Assert.Equal(s.Device, (string)net["hostPort"]!["device"]!);
            Assert.Equal(s.HostAddress + "/24", (string)net["hostPort"]!["address"]!);
            Assert.Contains($"inet {s.HostAddress}/24", Proc.Check("ip", "-4", "addr", "show", "dev", s.Device));
            var r = s.Container.TryExec(Timeout, "ping", "-c", "3", "-i", "0.2", "-W", "2", s.HostAddress);
            Assert.True(r.ExitCode == 0, "container -> host: " + r.Output);
            r = Proc.Run(Timeout, "ping", "-c", "3", "-i", "0.2", "-W", "2", s.ContainerIp);
            Assert.True(r.ExitCode == 0, "host -> container: " + r.Output);
            Assert.Contains($"lookup {table}", Proc.Check("ip", "rule", "show"));
            var show = Vsctl(s, "show");
            Assert.Contains($"host port: {s.Device}, address: {s.HostAddress}/24, masquerade: on", show.Stdout);
            device = s.Device;
        }
        AssertHostRestored(device);
    }

    [RootFact]
    public void A_container_reaches_an_outside_server_through_masquerade_and_the_server_sees_the_host()
    {
        string device;
        using (var s = new Setup())
        {
            device = s.Device;
            var http = HttpServer(s.Outside, s.OutsideIp, 8000);
            try { Curl(s.Container, $"http://{s.OutsideIp}:8000/"); }
            finally
            {
                string log = StopAndLog(http);
                Assert.Contains($"{s.HostOutside} - - ", log);      // the host's address on the way to the server
                Assert.DoesNotContain($"{s.ContainerIp} - - ", log);
            }
            // iperf3 runs, then 16 MiB of known bytes arrive whole (count and SHA-256), through the masquerade.
            var (sent, received) = Iperf.Run(s.Container, s.Outside, s.OutsideIp, seconds: 3);
            Iperf.AssertIntact(sent, received);
            var stats = s.D.Get("/v1/stats")["northSouth"]!;
            Assert.True((long)stats["masqueraded"]! >= 3, "masqueraded: " + stats);
            Assert.Matches(@"masquerade: \d+ connections, \d+ open", Vsctl(s, "stats").Stdout);
            string metrics = s.D.Http.GetStringAsync("/metrics").Result;
            Assert.Matches(@"(?m)^vswitch_masquerade_connections_total [1-9]", metrics);
            // The NAT steps in a trace: the router's choice of the host's address, the commit that would translate.
            var trace = Vsctl(s, "trace", "--routed", $"in_port=vnc{s.Sfx},udp,nw_src={s.ContainerIp},nw_dst={s.OutsideIp},tp_src=40000,tp_dst=53").Stdout;
            Assert.Contains($"masquerade: the new connection leaves behind the host's address {s.HostOutside}", trace);
            Assert.Contains($"would masquerade udp src={s.ContainerIp} dst={s.OutsideIp} sport=40000 dport=53 behind {s.HostOutside}", trace);

            // A connection's entry is listed while it lives, and expires after it ends (a reset: CLOSE, 10 s).
            const string Client = """
                import os, socket, struct, sys, time
                c = socket.create_connection((sys.argv[1], 5210), timeout=10)
                c.sendall(b"x"); c.recv(1)
                print("open", flush=True)
                end = time.time() + 30
                while not os.path.exists(sys.argv[2]) and time.time() < end: time.sleep(0.05)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c.close()
                """;
            const string Echo = """
                import socket, sys
                s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((sys.argv[1], 5210)); s.listen(1); s.settimeout(30)
                c, a = s.accept(); print(a[0], flush=True); c.recv(1); c.sendall(b"y"); c.settimeout(30)
                try: c.recv(1)
                except OSError: pass
                """;
            var server = s.Outside.Start("python3", "-c", Echo, s.OutsideIp);
            string stopFile = Path.Combine(Path.GetTempPath(), Names.Random("vns-stop-"));
            var client = (System.Diagnostics.Process?)null;
            try
            {
                Wait.Until(() => s.Outside.TryExec(TimeSpan.FromSeconds(5), "ss", "-ltn").StdOut.Contains(":5210"), Timeout, "the echo server to listen");
                client = s.Container.Start("python3", "-c", Client, s.OutsideIp, stopFile);
                Assert.Equal("open", client.StandardOutput.ReadLine());
                var open = Masqueraded(s, 5210);
                Assert.True(open.Count == 1, "conntrack: " + open.ToJsonString());
                var e = open[0]!;
                Assert.Equal(s.ContainerIp, (string)e["origSrc"]!);
                Assert.Equal(s.HostOutside, (string)e["replyDst"]!);        // answers come to the host's address...
                Assert.InRange((int)e["replyDport"]!, 61000, 65534);       // ...on a port of the masquerade's range
                Assert.True((string)e["tcpState"]! == "ESTABLISHED", "conntrack: " + s.D.Get("/v1/conntrack").ToJsonString());
                Assert.Equal(s.HostOutside, server.StandardOutput.ReadLine()); // the server saw the host
                File.WriteAllText(stopFile, "");
                Assert.True(client.WaitForExit(10_000), "client did not end");
                Wait.Until(() => Masqueraded(s, 5210).Count == 0, Timeout, "the connection's entry to expire after its reset");
            }
            finally
            {
                if (client is not null) Proc.KillQuietly(client);
                Proc.KillQuietly(server);
                File.Delete(stopFile);
            }
        }
        AssertHostRestored(device);
    }

    [RootFact]
    public void With_masquerade_off_the_outside_sees_the_container_and_answers_through_its_route_back()
    {
        string device;
        using (var s = new Setup(masquerade: false))
        {
            device = s.Device;
            // Without NAT the outside needs a route to the container's subnet: through the host.
            s.Outside.Exec("ip", "route", "add", s.Subnet + ".0/24", "via", s.HostOutside);
            var http = HttpServer(s.Outside, s.OutsideIp, 8000);
            try { Curl(s.Container, $"http://{s.OutsideIp}:8000/"); }
            finally
            {
                string log = StopAndLog(http);
                Assert.Contains($"{s.ContainerIp} - - ", log);
                Assert.DoesNotContain($"{s.HostOutside} - - ", log);
            }
            Assert.DoesNotContain("dport 61000-65534", Proc.Check("ip", "rule", "show"));
            // Turned on at run time: the same request now comes from the host.
            Vsctl(s, "network", "masquerade", s.Net, "on");
            http = HttpServer(s.Outside, s.OutsideIp, 8001);
            try { Curl(s.Container, $"http://{s.OutsideIp}:8001/"); }
            finally { Assert.Contains($"{s.HostOutside} - - ", StopAndLog(http)); }
        }
        AssertHostRestored(device);
    }

    [RootFact]
    public void A_published_port_reaches_the_container_from_outside_and_by_hairpin_and_survives_a_restart()
    {
        string device;
        using var second = new TestNetns("vnh-");
        using (var s = new Setup(second: second))
        {
            device = s.Device;
            var add = Vsctl(s, "publish", "add", s.Net, "8080/tcp", "--to", s.ContainerIp + ":80");
            Assert.Contains("published *:8080/tcp", add.Stdout);
            var bad = VsctlHarness.Vsctl("--socket", s.D.Socket, "publish", "add", s.Net, "8081/tcp", "--to", "10.255.0.9:80");
            Assert.True(bad.ExitCode == 6 && bad.Stderr.Contains("10.255.0.9:80"), bad.ToString());
            var web = HttpServer(s.Container, "0.0.0.0", 80);
            var live = VsctlHarness.StartDotnet(BuiltVsctl, ["--socket", s.D.Socket, "trace", "--live", "--filter", "tcp,tp_dst=8080", "--count", "1", "--timeout", "20"]);
            try
            {
                // From outside, to the host's address; again until the live trace (armed at some moment) has recorded one.
                Wait.Until(() => { Curl(s.Outside, $"http://{s.HostOutside}:8080/"); return live.WaitForExit(300); }, Timeout, "the live trace to record a connection to 8080");
                string traced = live.StandardOutput.ReadToEnd();
                Assert.Contains($"publish *:8080/tcp: {s.HostOutside}:8080 -> {s.ContainerIp}:80", traced);
                Curl(second, $"http://{s.HostOutside}:8080/");              // hairpin: another container, the same published port
            }
            finally
            {
                Proc.KillQuietly(live);
                string log = StopAndLog(web);
                Assert.Contains($"{s.OutsideIp} - - ", log);                // the container sees the real client
                Assert.Contains($"{s.Subnet}.3 - - ", log);
            }
            var ls = Vsctl(s, "publish", "ls");
            Assert.Contains("*:8080/tcp", ls.Stdout);
            var pub = s.D.Get("/v1/publish").AsArray().Single()!;
            Assert.True((long)pub["connections"]! >= 2, pub.ToJsonString());
            Assert.Contains($"ipproto tcp dport 8080 lookup {TableFor(s.Device)}", Proc.Check("ip", "rule", "show"));
            Assert.Matches(@"(?m)^vswitch_publish_connections_total\{publish=""\*:8080/tcp"",to=""[0-9.]+:80""\} [2-9]", s.D.Http.GetStringAsync("/metrics").Result);
            Assert.Contains("*:8080/tcp", Vsctl(s, "stats").Stdout);

            // Stored: a restart on the same state database publishes it again.
            string dir = s.D.Dir;
            s.D.KeepDir = true;
            Assert.Equal(0, s.D.Stop());
            AssertHostRestored(device);
            using var again = Vswitchd.StartIn(dir, null);
            try
            {
                Assert.Contains("*:8080/tcp", (string)again.Get("/v1/publish").AsArray().Single()!["id"]!);
                web = HttpServer(s.Container, "0.0.0.0", 80);
                try { Curl(s.Outside, $"http://{s.HostOutside}:8080/"); }
                finally { StopAndLog(web); }
                Assert.Equal(204, again.Send(HttpMethod.Delete, "/v1/publish?id=" + Uri.EscapeDataString("*:8080/tcp")).Status);
                Assert.DoesNotContain("dport 8080", Proc.Check("ip", "rule", "show"));
            }
            finally { again.KeepDir = false; }
        }
        AssertHostRestored(device);
    }
}
