using System.Text.Json.Nodes;

namespace VSwitch.Integration.Tests;

/// <summary>
/// VSwitch as the IPv6 router between two dual-stack networks (10.16x.{1,2}.0/24 and
/// fd00:16x:{1,2}::/64, gateways .1 and ::1), with namespaces whose default routes point at it:
/// ping -6 across (hop limit minus one), hop limit expiry, no route, address unreachable, packet too
/// big with TCP path MTU discovery, iperf3, neighbour discovery seen from the container (ndisc6,
/// ip -6 neigh) and from the switch (vsctl neigh), router advertisements (rdisc6, SLAAC), static
/// IPv6 routes, isolation, and bad ND input.
/// </summary>
[Collection("netns")]
public class Ipv6RouterTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <param name="n">The test's number: 10.{n}.x.0/24 and fd00:{n}:x::/64.</param>
    private static (Vswitchd D, string S) Start(TestNetns a, TestNetns b, int n, int mtu2 = 1500, bool connect = true, bool slaac = false,
        bool addressA6 = true)
    {
        string s = Names.Random("");
        string a6 = addressA6 ? $", \"fd00:{n}:1::2/64\"" : "";
        string cfg = $$"""
            { "networks": [ { "name": "red",  "subnet": "10.{{n}}.1.0/24", "subnet6": "fd00:{{n}}:1::/64", "slaac": {{(slaac ? "true" : "false")}} },
                            { "name": "blue", "subnet": "10.{{n}}.2.0/24", "subnet6": "fd00:{{n}}:2::/64", "slaac": false, "mtu": {{mtu2}} } ],
              "ports": [
                { "name": "v6a{{s}}", "network": "red",  "netns": "{{a.Name}}", "addresses": ["10.{{n}}.1.2/24"{{a6}}] },
                { "name": "v6b{{s}}", "network": "blue", "netns": "{{b.Name}}", "addresses": ["10.{{n}}.2.2/24", "fd00:{{n}}:2::2/64"] } ] }
            """;
        var d = Vswitchd.Start(cfg);
        try
        {
            if (connect)
            {
                var (status, body) = d.Send(HttpMethod.Post, "/v1/networks/red/connections", new { network = "blue" });
                Assert.True(status == 201, $"connect red blue: {status} {body}");
            }
        }
        catch { d.Dispose(); throw; }
        return (d, s);
    }

    private static ProcessResult Ping6(TestNetns ns, params string[] args) => ns.TryExec(Timeout, "ping", ["-6", .. args]);

    [RootFact]
    public void Ipv6_pings_cross_the_router_with_hop_limit_minus_one_and_the_gateway_resolves_by_nd()
    {
        using var a = new TestNetns("v6-");
        using var b = new TestNetns("v6-");
        var (d, s) = Start(a, b, 160);
        using var _ = d;
        Assert.Contains("default via fd00:160:1::1", a.Exec("ip", "-6", "route"));
        var net = d.Get("/v1/networks/red");
        Assert.Equal("fd00:160:1::/64", (string)net["subnet6"]!);
        Assert.Equal("fd00:160:1::1", (string)net["gateway6"]!);
        string routerMac = (string)net["routerMac"]!;
        Assert.StartsWith("fe80::", (string)net["linkLocal6"]!);

        var r = Ping6(a, "-c", "3", "-i", "0.2", "-W", "2", "fd00:160:1::1");
        Assert.True(r.ExitCode == 0, "ping gateway: " + r.Output);
        r = Ping6(a, "-c", "3", "-i", "0.2", "-W", "2", "fd00:160:2::2");
        Assert.True(r.ExitCode == 0, "ping across: " + r.Output);
        Assert.Contains("ttl=63", r.StdOut); // one router hop: 64 - 1
        r = Ping6(b, "-c", "2", "-i", "0.2", "-W", "2", "fd00:160:1::2");
        Assert.True(r.ExitCode == 0, "ping back: " + r.Output);

        // The container's kernel resolved the gateway by ND: its neighbour table has the router's MAC.
        Assert.Contains($"fd00:160:1::1 dev v6a{s} lladdr {routerMac}", a.Exec("ip", "-6", "neigh"), StringComparison.OrdinalIgnoreCase);
        // ndisc6 asks again, by hand.
        r = a.TryExec(Timeout, "ndisc6", "-1", "-w", "2000", "fd00:160:1::1", "v6a" + s);
        Assert.True(r.ExitCode == 0, "ndisc6: " + r.Output);
        Assert.Contains("Target link-layer address: " + routerMac, r.StdOut, StringComparison.OrdinalIgnoreCase);
        // And the link-local address answers too.
        r = a.TryExec(Timeout, "ndisc6", "-1", "-w", "2000", (string)net["linkLocal6"]!, "v6a" + s);
        Assert.True(r.ExitCode == 0, "ndisc6 link-local: " + r.Output);

        var neighbors = d.Get("/v1/neighbors").AsArray();
        Assert.Contains(neighbors, x => (string)x!["ip"]! == "fd00:160:2::2" && (string)x["state"]! == "reachable");
        Assert.Contains(d.Get("/v1/routes").AsArray(), x => (string)x!["prefix"]! == "fd00:160:2::/64");
    }

    [RootFact]
    public void Hop_limit_1_gets_time_exceeded_no_route_gets_unreachable_and_a_silent_neighbour_address_unreachable()
    {
        using var a = new TestNetns("v6-");
        using var b = new TestNetns("v6-");
        var (d, s) = Start(a, b, 161);
        using var _ = d;
        var r = Ping6(a, "-c", "1", "-t", "1", "-W", "2", "fd00:161:2::2");
        Assert.Contains("Time exceeded: Hop limit", r.StdOut);
        Assert.Contains("fd00:161:1::1", r.StdOut);
        r = Ping6(a, "-c", "1", "-W", "2", "fd00:161:99::9");
        Assert.Contains("Destination unreachable: No route", r.StdOut);
        Assert.True(d.Drops("ttl-expired") >= 1);
        Assert.True(d.Drops("no-route") >= 1);
        // Nobody answers for fd00:161:2::77: three solicitations, then address unreachable.
        r = Ping6(a, "-c", "1", "-W", "8", "fd00:161:2::77");
        Assert.Contains("Destination unreachable: Address unreachable", r.StdOut);
        Assert.True(d.Drops("neighbor-unresolved") >= 1);
    }

    [RootFact]
    public void Too_big_gets_packet_too_big_with_the_egress_mtu_and_tcp_path_mtu_discovery_completes()
    {
        using var a = new TestNetns("v6-");
        using var b = new TestNetns("v6-");
        var (d, s) = Start(a, b, 162, mtu2: 1280);
        using var _ = d;
        Assert.Contains("mtu 1280", b.Exec("ip", "link", "show", "v6b" + s));
        var r = Ping6(a, "-c", "1", "-M", "do", "-s", "1400", "-W", "2", "fd00:162:2::2");
        Assert.Contains("Packet too big: mtu=1280", r.Output);
        Assert.True(d.Drops("packet-too-big") >= 1);
        // The sender's kernel learned the path MTU from the router: TCP from the 1500 side completes.
        Transfer(a, b, "fd00:162:2::2");
    }

    [RootFact]
    public void Iperf3_over_ipv6_across_networks_delivers_exact_bytes()
    {
        using var a = new TestNetns("v6-");
        using var b = new TestNetns("v6-");
        var (d, s) = Start(a, b, 163);
        using var _ = d;
        Transfer(a, b, "fd00:163:2::2");
    }

    /// <summary>iperf3 -6 for 3 s (it completes), then 16 MiB of known bytes counted and hashed at both ends, to EOF.</summary>
    private static void Transfer(TestNetns client, TestNetns server, string serverIp)
    {
        var srv = server.Start("iperf3", "-s", "-1", "-B", serverIp);
        try
        {
            Wait.Until(() => server.TryExec(TimeSpan.FromSeconds(5), "ss", "-ltn").StdOut.Contains(":5201"), TimeSpan.FromSeconds(10), "iperf3 server to listen");
            var r = client.TryExec(TimeSpan.FromSeconds(40), "iperf3", "-6", "-c", serverIp, "-t", "3", "-J");
            Assert.True(r.ExitCode == 0, "iperf3 client failed: " + r.Output);
            var j = JsonNode.Parse(r.StdOut)!;
            Assert.True((double)j["end"]!["sum_sent"]!["bytes"]! > 0);
        }
        finally { Proc.KillQuietly(srv); srv.Dispose(); }
        var sink = server.Start("python3", "-c", Sink6, serverIp, "5206");
        try
        {
            Wait.Until(() => server.TryExec(TimeSpan.FromSeconds(5), "ss", "-ltn").StdOut.Contains(":5206"), TimeSpan.FromSeconds(10), "the TCP sink to listen");
            var src = client.TryExec(TimeSpan.FromSeconds(60), "python3", "-c", Source6, serverIp, "5206");
            Assert.True(src.ExitCode == 0, "source failed: " + src.Output);
            Assert.True(sink.WaitForExit(30_000), "sink did not finish");
            Assert.Equal(src.StdOut.Trim(), sink.StandardOutput.ReadToEnd().Trim());
        }
        finally { Proc.KillQuietly(sink); sink.Dispose(); }
    }

    private const string Sink6 = """
        import socket, hashlib, sys
        s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(30)
        c, _ = s.accept(); c.settimeout(30); h = hashlib.sha256(); n = 0
        while True:
            d = c.recv(1 << 16)
            if not d: break
            h.update(d); n += len(d)
        print(n, h.hexdigest())
        """;

    private const string Source6 = """
        import socket, hashlib, random, sys
        data = random.Random(7).randbytes(16 << 20)
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
        c.sendall(data); c.shutdown(socket.SHUT_WR); c.recv(1); c.close()
        print(len(data), hashlib.sha256(data).hexdigest())
        """;

    [RootFact]
    public void Rdisc6_sees_the_advertisement_and_a_slaac_container_configures_itself_and_reaches_the_other_network()
    {
        using var a = new TestNetns("v6-");
        using var b = new TestNetns("v6-");
        // a has no IPv6 address of its own: it must form one from the router's advertisement.
        var (d, s) = Start(a, b, 164, slaac: true, addressA6: false);
        using var _ = d;
        string dev = "v6a" + s;
        // rdisc6 sends from the link-local address: wait until duplicate address detection is done with it.
        Wait.Until(() => a.Exec("ip", "-6", "-o", "addr", "show", "dev", dev, "scope", "link") is var t && t.Contains("fe80") && !t.Contains("tentative"),
            Timeout, "the link-local address to leave tentative state");
        var r = a.TryExec(Timeout, "rdisc6", "-1", "-w", "2000", dev);
        Assert.True(r.ExitCode == 0, "rdisc6: " + r.Output);
        Assert.Matches(@"Prefix\s*:\s*fd00:164:1::/64", r.StdOut);
        Assert.Matches(@"MTU\s*:\s*1500 bytes", r.StdOut);
        Assert.Matches(@"Router lifetime\s*:\s*1800", r.StdOut);
        Assert.Matches(@"Autonomous address conf\.\s*:\s*Yes", r.StdOut);
        string ll = (string)d.Get("/v1/networks/red")["linkLocal6"]!;
        Assert.Contains("from " + ll, r.StdOut);

        // SLAAC: the kernel (accept_ra is on in a fresh namespace) forms an address in the prefix and a default route via the router.
        string addr = "";
        Wait.Until(() =>
        {
            var text = a.Exec("ip", "-6", "-o", "addr", "show", "dev", dev, "scope", "global");
            var m = System.Text.RegularExpressions.Regex.Match(text, @"inet6 (fd00:164:1:[0-9a-f:]+)/64 .*dynamic");
            if (m.Success && !text.Contains("tentative")) addr = m.Groups[1].Value;
            return addr.Length > 0;
        }, Timeout, "a SLAAC address from fd00:164:1::/64");
        Assert.Contains("default via " + ll, a.Exec("ip", "-6", "route"));
        r = Ping6(a, "-c", "3", "-i", "0.2", "-W", "2", "fd00:164:2::2");
        Assert.True(r.ExitCode == 0, $"ping across from the SLAAC address {addr}: " + r.Output);
        r = Ping6(b, "-c", "1", "-W", "2", addr);
        Assert.True(r.ExitCode == 0, "ping back to the SLAAC address: " + r.Output);
    }

    [RootFact]
    public void Vsctl_neigh_shows_the_container_reachable_after_traffic_and_stale_after_the_timeout()
    {
        using var a = new TestNetns("v6-");
        using var b = new TestNetns("v6-");
        var (d, s) = Start(a, b, 165);
        using var _ = d;
        var r = Ping6(a, "-c", "2", "-i", "0.2", "-W", "2", "fd00:165:2::2");
        Assert.True(r.ExitCode == 0, r.Output);
        string State() => VsctlHarness.Ok("--socket", d.Socket, "neigh", "--network", "blue").Stdout
            .Split('\n').FirstOrDefault(l => l.Contains("fd00:165:2::2")) ?? "";
        Assert.Contains("reachable", State());
        // REACHABLE lasts 30 s (RFC 4861's REACHABLE_TIME) without a new confirmation, then STALE.
        Wait.Until(() => State().Contains("stale"), TimeSpan.FromSeconds(45), "fd00:165:2::2 to become stale");
        var json = JsonNode.Parse(VsctlHarness.Ok("--socket", d.Socket, "--json", "neigh").Stdout)!.AsArray();
        Assert.Contains(json, x => (string)x!["ip"]! == "fd00:165:2::2" && (string)x["state"]! == "stale");
        // Traffic again: the stale entry is used (DELAY), probed by unicast NS, and confirmed: REACHABLE.
        r = Ping6(a, "-c", "1", "-W", "2", "fd00:165:2::2");
        Assert.True(r.ExitCode == 0, r.Output);
        Wait.Until(() => State().Contains("reachable"), TimeSpan.FromSeconds(15), "fd00:165:2::2 to be confirmed reachable again");
    }

    [RootFact]
    public void Static_ipv6_route_via_a_host_and_isolation_until_connected()
    {
        using var a = new TestNetns("v6-");
        using var b = new TestNetns("v6-");
        var (d, s) = Start(a, b, 166, connect: false);
        using var _ = d;
        var r = Ping6(a, "-c", "1", "-W", "1", "fd00:166:2::2");
        Assert.True(r.ExitCode != 0, "red reached blue without a connection: " + r.Output);
        Assert.True(d.Drops("network-isolated") >= 1);
        // b also owns fd00:9:166::1 behind itself; the router reaches it via b's address (a static route opens its prefix).
        b.Exec("ip", "-6", "addr", "add", "fd00:9:166::1/128", "dev", "lo");
        VsctlHarness.Ok("--socket", d.Socket, "route", "add", "fd00:9:166::/64", "--via", "fd00:166:2::2");
        Assert.Contains("fd00:9:166::/64", VsctlHarness.Ok("--socket", d.Socket, "route").Stdout);
        r = Ping6(a, "-c", "2", "-i", "0.2", "-W", "2", "fd00:9:166::1");
        Assert.True(r.ExitCode == 0, "ping behind the static route: " + r.Output);
        var bad = VsctlHarness.Vsctl("--socket", d.Socket, "route", "add", "fd00:9:167::/64", "--via", "fd00:99::1");
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("fd00:99::1", bad.Stderr + bad.Stdout);
        VsctlHarness.Ok("--socket", d.Socket, "network", "connect", "red", "blue");
        r = Ping6(a, "-c", "2", "-i", "0.2", "-W", "2", "fd00:166:2::2");
        Assert.True(r.ExitCode == 0, "connected: " + r.Output);
        VsctlHarness.Ok("--socket", d.Socket, "route", "del", "fd00:9:166::/64");
        r = Ping6(a, "-c", "1", "-W", "2", "fd00:9:166::1");
        Assert.Contains("Destination unreachable: No route", r.StdOut);
    }

    [RootFact]
    public void Vsctl_trace_shows_the_ipv6_route_and_an_ipv6_rule_drops_and_counts()
    {
        using var a = new TestNetns("v6-");
        using var b = new TestNetns("v6-");
        var (d, s) = Start(a, b, 171);
        using var _ = d;
        var r = Ping6(a, "-c", "1", "-W", "2", "fd00:171:2::2");
        Assert.True(r.ExitCode == 0, r.Output);
        // The trace fills in the router's MAC for an off-link destination, as for IPv4.
        var t = VsctlHarness.Ok("--socket", d.Socket, "trace", $"in_port=v6a{s},icmp6,ipv6_src=fd00:171:1::2,ipv6_dst=fd00:171:2::2,nw_ttl=64").Stdout;
        Assert.Contains("route to fd00:171:2::2: connected on blue", t);
        Assert.Contains("dec_ttl", t);
        t = VsctlHarness.Ok("--socket", d.Socket, "trace", $"in_port=v6a{s},icmp6,ipv6_src=fd00:171:1::2,ipv6_dst=fd00:171:2::2,nw_ttl=1").Stdout;
        Assert.Contains("hop limit 1 expires here", t);

        VsctlHarness.Ok("--socket", d.Socket, "rules", "add", "priority=100,ipv6,ipv6_dst=fd00:171:2::2,actions=drop");
        r = Ping6(a, "-c", "1", "-W", "1", "fd00:171:2::2");
        Assert.True(r.ExitCode != 0, "the rule did not drop: " + r.Output);
        var rules = JsonNode.Parse(VsctlHarness.Ok("--socket", d.Socket, "--json", "rules", "ls").Stdout)!.AsArray();
        Assert.Contains(rules, x => ((string)x!["match"]!).Contains("ipv6_dst=fd00:171:2::2") && (long)x["packets"]! >= 1);
        VsctlHarness.Ok("--socket", d.Socket, "rules", "del", "--strict", "priority=100,ipv6,ipv6_dst=fd00:171:2::2");
        r = Ping6(a, "-c", "1", "-W", "2", "fd00:171:2::2");
        Assert.True(r.ExitCode == 0, "after the rule went: " + r.Output);
    }

    [RootFact]
    public void A_hitless_restart_hands_the_ipv6_neighbours_over_and_ipv6_goes_on()
    {
        using var a = new TestNetns("v6-");
        using var b = new TestNetns("v6-");
        var (d, s) = Start(a, b, 172);
        using var _ = d;
        var r = Ping6(a, "-c", "2", "-i", "0.2", "-W", "2", "fd00:172:2::2");
        Assert.True(r.ExitCode == 0, r.Output);
        string macB = b.Exec("cat", $"/sys/class/net/v6b{s}/address").Trim();
        int? successor = null;
        try
        {
            var rr = VsctlHarness.Vsctl("--socket", d.Socket, "--json", "restart");
            Assert.True(rr.ExitCode == 0, rr.ToString());
            successor = (int)JsonNode.Parse(rr.Stdout)!["newPid"]!;
            Wait.Until(() => d.HasExited, TimeSpan.FromSeconds(20), "the old vswitchd to exit");
            // The successor knows b before any new traffic: handed over, in STALE (usable, confirmed on first use).
            var n = d.Get("/v1/neighbors").AsArray().FirstOrDefault(x => (string)x!["ip"]! == "fd00:172:2::2");
            Assert.True(n is not null, "fd00:172:2::2 was not handed over: " + d.Get("/v1/neighbors").ToJsonString());
            Assert.Equal(macB, (string)n!["mac"]!);
            Assert.Equal("stale", (string)n["state"]!);
            r = Ping6(a, "-c", "2", "-i", "0.2", "-W", "2", "fd00:172:2::2");
            Assert.True(r.ExitCode == 0, "after the restart: " + r.Output);
            Assert.Equal("fd00:172:1::1", (string)d.Get("/v1/networks/red")["gateway6"]!);
        }
        finally
        {
            if (successor is int pid) RestartTests.StopByPid(pid);
        }
    }

    [RootFact]
    public void Bad_nd_input_is_dropped_and_counted_and_the_neighbour_table_is_not_poisoned()
    {
        using var a = new TestNetns("v6-");
        using var b = new TestNetns("v6-");
        var (d, s) = Start(a, b, 167);
        using var _ = d;
        string dev = "v6a" + s, mac = a.Exec("cat", $"/sys/class/net/{dev}/address").Trim();
        string rmac = (string)d.Get("/v1/networks/red")["routerMac"]!;
        // scapy, as Debian packages it (/usr/bin/python3): an NS with hop limit 64, an NS with a
        // truncated option, and an unsolicited NA claiming fd00:167:1::66 is at a made-up MAC.
        string script = $$"""
            from scapy.all import *
            e = Ether(src="{{mac}}", dst="33:33:ff:00:00:01")
            sendp(e/IPv6(src="fd00:167:1::2", dst="ff02::1:ff00:1", hlim=64)/ICMPv6ND_NS(tgt="fd00:167:1::1")/ICMPv6NDOptSrcLLAddr(lladdr="{{mac}}"), iface="{{dev}}", verbose=0)
            p = e/IPv6(src="fd00:167:1::2", dst="ff02::1:ff00:1", hlim=255)/ICMPv6ND_NS(tgt="fd00:167:1::1")/Raw(b"\x01\x02" + bytes.fromhex("{{mac.Replace(":", "")}}"))
            sendp(p, iface="{{dev}}", verbose=0)
            sendp(Ether(src="{{mac}}", dst="{{rmac}}")/IPv6(src="fd00:167:1::66", dst="fd00:167:1::1", hlim=255)/ICMPv6ND_NA(tgt="fd00:167:1::66", R=0, S=1, O=1)/ICMPv6NDOptDstLLAddr(lladdr="02:66:66:66:66:66"), iface="{{dev}}", verbose=0)
            """;
        var r = a.TryExec(Timeout, "/usr/bin/python3", "-c", script);
        Assert.True(r.ExitCode == 0, "scapy: " + r.Output);
        Wait.Until(() => d.Drops("nd-bad-hop-limit") >= 1 && d.Drops("nd-malformed") >= 1 && d.Drops("nd-unsolicited-na") >= 1,
            Timeout, "the three bad ND messages to be counted");
        Assert.DoesNotContain(d.Get("/v1/neighbors").AsArray(), x => ((string)x!["ip"]!).StartsWith("fd00:167:1::66"));
        Assert.DoesNotContain(d.Get("/v1/neighbors").AsArray(), x => (string)x!["mac"]! == "02:66:66:66:66:66");
        // The good path still works.
        r = Ping6(a, "-c", "1", "-W", "2", "fd00:167:2::2");
        Assert.True(r.ExitCode == 0, r.Output);
    }

    [RootFact]
    public void A_dual_stack_network_added_by_vsctl_keeps_its_ipv6_gateway_across_a_restart()
    {
        var dir = Directory.CreateTempSubdirectory("vst-d").FullName;
        try
        {
            string mac, ll;
            using (var d = Vswitchd.StartIn(dir, null))
            {
                d.KeepDir = true;
                var add = VsctlHarness.Ok("--socket", d.Socket, "network", "add", "dual", "--subnet", "10.168.0.0/24", "--subnet6", "fd00:168::/64", "--gateway6", "fd00:168::fe");
                Assert.Contains("subnet6 fd00:168::/64, gateway6 fd00:168::fe", add.Stdout);
                var bad = VsctlHarness.Vsctl("--socket", d.Socket, "network", "add", "bad", "--subnet", "10.169.0.0/24", "--subnet6", "fd00:169::/200");
                Assert.NotEqual(0, bad.ExitCode);
                Assert.Contains("fd00:169::/200", bad.Stderr + bad.Stdout);
                bad = VsctlHarness.Vsctl("--socket", d.Socket, "network", "add", "bad", "--subnet6", "fd00:169::/64");
                Assert.NotEqual(0, bad.ExitCode);
                Assert.Contains("'fd00:169::/64' needs an IPv4 subnet too", bad.Stderr + bad.Stdout);
                bad = VsctlHarness.Vsctl("--socket", d.Socket, "network", "add", "bad", "--subnet", "10.169.0.0/24", "--subnet6", "fe80::/64");
                Assert.NotEqual(0, bad.ExitCode);
                Assert.Contains("'fe80::/64' is link-local", bad.Stderr + bad.Stdout);
                VsctlHarness.Ok("--socket", d.Socket, "neigh", "add", "fd00:168::5", "02:00:00:00:16:85");
                VsctlHarness.Ok("--socket", d.Socket, "route", "add", "fd00:9:168::/64", "--via", "fd00:168::5");
                var inspect = VsctlHarness.Ok("--socket", d.Socket, "network", "inspect", "dual").Stdout;
                Assert.Contains("gateway6:   fd00:168::fe", inspect);
                var v = d.Get("/v1/networks/dual");
                mac = (string)v["routerMac"]!;
                ll = (string)v["linkLocal6"]!;
                Assert.Equal(0, d.Stop());
            }
            using (var d = Vswitchd.StartIn(dir, null))
            {
                d.KeepDir = true;
                var v = d.Get("/v1/networks/dual");
                Assert.Equal("fd00:168::fe", (string)v["gateway6"]!);
                Assert.Equal("fd00:168::/64", (string)v["subnet6"]!);
                Assert.Equal(mac, (string)v["routerMac"]!);
                Assert.Equal(ll, (string)v["linkLocal6"]!);
                Assert.Contains(d.Get("/v1/routes").AsArray(), x => (string)x!["prefix"]! == "fd00:168::/64");
                // The static IPv6 neighbour and route came back from the state database.
                Assert.Contains(d.Get("/v1/routes").AsArray(), x => (string)x!["prefix"]! == "fd00:9:168::/64"
                    && (string?)x["paths"]![0]!["via"] == "fd00:168::5");
                Assert.Contains(d.Get("/v1/neighbors").AsArray(), x => (string)x!["ip"]! == "fd00:168::5"
                    && (string)x["mac"]! == "02:00:00:00:16:85" && (string)x["state"]! == "permanent");
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
