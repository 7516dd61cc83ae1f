using System.Diagnostics;
using System.Text.Json.Nodes;

namespace VSwitch.Integration.Tests;

/// <summary>
/// Defects a network engineer found in the management plane: addresses handed out twice, names
/// that break the API, subnets and devices that answered 500, ports whose device vanished.
/// </summary>
[Collection("netns")]
public class ManagementPlaneTests
{
    private static string Config(string s, string subnet, params JsonObject[] ports) =>
        new JsonObject
        {
            ["networks"] = new JsonArray(new JsonObject { ["name"] = "blue", ["subnet"] = subnet }),
            ["ports"] = new JsonArray([.. ports]),
        }.ToJsonString();

    private static JsonObject Tap(string name, TestNetns ns, string address) =>
        new() { ["name"] = name, ["type"] = "tap", ["network"] = "blue", ["netns"] = ns.Name, ["addresses"] = new JsonArray(address) };

    [RootFact]
    public void IPAM_never_hands_out_an_address_a_port_already_has()
    {
        using var ns1 = new TestNetns("vsmp-");
        using var ns2 = new TestNetns("vsmp-");
        using var a = new TestNetns("vsmp-");
        using var b = new TestNetns("vsmp-");
        using var c = new TestNetns("vsmp-");
        string s = Names.Random("");
        using var d = Vswitchd.Start(Config(s, "10.250.1.0/24", Tap("pa" + s, ns1, "10.250.1.2/24")));
        // A port added at run time with an address of its own.
        var added = d.Send(HttpMethod.Post, "/v1/ports", new { name = "pb" + s, type = "tap", network = "blue", netns = ns2.Name, addresses = new[] { "10.250.1.3/24" } });
        Assert.True(added.Status == 201, added.Body?.ToJsonString());

        var ja = AttachTests.Vsctl(d, "--json", "attach", a.Name, "--network", "blue");
        Assert.True(ja.ExitCode == 0, ja.Output);
        Assert.Equal("10.250.1.4", (string)JsonNode.Parse(ja.StdOut)!["ip"]!);

        // Asking for a held address is refused, naming who holds it.
        var taken = AttachTests.Vsctl(d, "attach", b.Name, "--network", "blue", "--ip", "10.250.1.2");
        Assert.NotEqual(0, taken.ExitCode);
        Assert.Contains("10.250.1.2 is already in use on network 'blue' by port pa" + s, taken.Output);

        // And the other way round: a port may not take an attachment's address.
        var clash = d.Send(HttpMethod.Post, "/v1/ports", new { name = "pc" + s, type = "tap", network = "blue", netns = c.Name, addresses = new[] { "10.250.1.4/24" } });
        Assert.Equal(409, clash.Status);
        Assert.Contains("by attachment", (string)clash.Body!["error"]!);
        Assert.DoesNotContain(d.Get("/v1/ports").AsArray(), p => (string)p!["name"]! == "pc" + s);
    }

    [RootFact]
    public void Bad_names_and_values_are_refused_with_400_before_anything_is_created()
    {
        using var d = Vswitchd.Start(null);
        int before = d.Get("/v1/networks").AsArray().Count;
        foreach (var name in new[] { "a/b", "..", ".", "x\ny", "a\0b", new string('n', 10_000), "-x", "white space" })
        {
            var r = d.Send(HttpMethod.Post, "/v1/networks", new { name });
            Assert.True(r.Status == 400, $"network name {name[..Math.Min(20, name.Length)]}: {r.Status} {r.Body?.ToJsonString()}");
            Assert.Contains("name", (string)r.Body!["error"]!);
        }
        Assert.Equal(before, d.Get("/v1/networks").AsArray().Count);

        var wide = d.Send(HttpMethod.Post, "/v1/networks", new { name = "wide", subnet = "0.0.0.0/0" });
        Assert.Equal(400, wide.Status);
        Assert.Contains("0.0.0.0/0", (string)wide.Body!["error"]!);
        Assert.Equal(201, d.Send(HttpMethod.Post, "/v1/networks", new { name = "ok-net.1" }).Status);

        var lo = d.Send(HttpMethod.Post, "/v1/ports", new { name = "lo", type = "afpacket", network = "ok-net.1" });
        Assert.Equal(400, lo.Status);
        Assert.Contains("loopback", (string)lo.Body!["error"]!);
        // A network named in a body that does not exist is a 404, as in a path.
        Assert.Equal(404, d.Send(HttpMethod.Post, "/v1/neighbors", new { network = "nope", ip = "10.9.9.9", mac = "02:00:00:00:00:09" }).Status);
        var slash = d.Send(HttpMethod.Post, "/v1/ports", new { name = "p/1", type = "tap", network = "ok-net.1" });
        Assert.Equal(400, slash.Status);
        Assert.Single(d.Get("/v1/networks").AsArray(), n => (string)n!["name"]! == "ok-net.1");
        Assert.Empty(d.Get("/v1/ports").AsArray());
    }

    [RootFact]
    public void A_port_whose_namespace_is_deleted_goes_down_costs_no_CPU_and_comes_back_with_its_namespace()
    {
        using var ns = new TestNetns("vsmp-");
        using var other = new TestNetns("vsmp-");
        string s = Names.Random("");
        using var d = Vswitchd.Start(Config(s, "10.250.2.0/24", Tap("ga" + s, ns, "10.250.2.2/24"), Tap("gb" + s, other, "10.250.2.3/24")));
        Assert.Equal("up", (string)d.Get("/v1/ports/ga" + s)["state"]!);

        other.Exec("ip", "link", "set", "gb" + s, "down");
        var down = d.Get("/v1/ports/gb" + s);
        Assert.Equal("down", (string)down["state"]!);
        Assert.Contains("administratively down", (string)down["stateReason"]!);
        other.Exec("ip", "link", "set", "gb" + s, "up");

        Proc.Check("ip", "netns", "del", ns.Name);
        Wait.Until(() => (string)d.Get("/v1/ports/ga" + s)["state"]! == "down" && d.Get("/v1/ports/ga" + s)["id"]!.GetValue<int>() == 0,
            TimeSpan.FromSeconds(10), "the port to be taken out and kept down");
        string reason = (string)d.Get("/v1/ports/ga" + s)["stateReason"]!;
        Assert.Contains("gone", reason);
        Assert.Contains($"namespace {ns.Name} exists again", reason);
        Assert.Contains($"port ga{s} is down", d.Log);

        // A dead device must not keep the datapath thread busy.
        var cpu0 = CpuTime(d.Pid);
        Thread.Sleep(3000);
        var used = CpuTime(d.Pid) - cpu0;
        Assert.True(used < TimeSpan.FromSeconds(0.5), $"vswitchd used {used.TotalSeconds:0.00} s of CPU in 3 s with a vanished port");

        // The table says so too.
        var ls = AttachTests.Vsctl(d, "port", "ls");
        Assert.True(ls.ExitCode == 0, ls.Output);
        Assert.Contains($"ga{s}: down:", ls.StdOut);

        // The namespace comes back (same name): a new TAP is made there, addressed, and forwards.
        Proc.Check("ip", "netns", "add", ns.Name);
        Wait.Until(() => (string)d.Get("/v1/ports/ga" + s)["state"]! == "up", TimeSpan.FromSeconds(10), "the port to come back up");
        var ping = ns.TryExec(TimeSpan.FromSeconds(20), "ping", "-c", "2", "-W", "2", "10.250.2.3");
        Assert.True(ping.ExitCode == 0, ping.Output);
    }

    [RootFact]
    public void An_afpacket_port_whose_interface_is_deleted_goes_down_costs_no_CPU_and_is_attached_again() =>
        InterfaceDeletedAndBack("afpacket");

    /// <summary>
    /// A port of <paramref name="type"/> on a veth end (no namespace) whose interface is deleted: kept down, no CPU
    /// spent on it, attached again once an interface of that name exists (<paramref name="whenBack"/> checks more), frames received.
    /// </summary>
    internal static void InterfaceDeletedAndBack(string type, Action<Vswitchd, string>? whenBack = null)
    {
        string s = Names.Random("");
        string va = "va" + s, vb = "vb" + s;
        Proc.Check("ip", "link", "add", va, "type", "veth", "peer", "name", vb);
        try
        {
            Proc.Check("ip", "link", "set", va, "up");
            Proc.Check("ip", "link", "set", vb, "up");
            string config = new JsonObject
            {
                ["networks"] = new JsonArray(new JsonObject { ["name"] = "blue" }),
                ["ports"] = new JsonArray(new JsonObject { ["name"] = va, ["type"] = type, ["network"] = "blue" }),
            }.ToJsonString();
            using var d = Vswitchd.Start(config);
            Wait.Until(() => (string)d.Get("/v1/ports/" + va)["state"]! == "up", TimeSpan.FromSeconds(10), "the veth to have carrier");
            Proc.Run("ip", "link", "del", va);
            Wait.Until(() => (string)d.Get("/v1/ports/" + va)["state"]! == "down", TimeSpan.FromSeconds(10), "the port to be kept down");
            Assert.Contains($"interface {va}", (string)d.Get("/v1/ports/" + va)["stateReason"]!);
            var cpu0 = CpuTime(d.Pid);
            Thread.Sleep(3000);
            var used = CpuTime(d.Pid) - cpu0;
            Assert.True(used < TimeSpan.FromSeconds(0.5), $"vswitchd used {used.TotalSeconds:0.00} s of CPU in 3 s with a vanished interface");

            // The interface comes back under the same name: the port is attached again and receives.
            Proc.Check("ip", "link", "add", va, "type", "veth", "peer", "name", vb);
            Proc.Check("ip", "link", "set", va, "up");
            Wait.Until(() => (string)d.Get("/v1/ports/" + va)["state"]! is "up" or "down" && d.Get("/v1/ports/" + va)["id"]!.GetValue<int>() > 0,
                TimeSpan.FromSeconds(10), "the port to be attached again");
            whenBack?.Invoke(d, va);
            Proc.Check("ip", "link", "set", vb, "up"); // the peer's IPv6 router solicitations and MLD reports arrive
            Wait.Until(() => (long)d.Get("/v1/ports/" + va)["counters"]!["rxPackets"]! > 0, TimeSpan.FromSeconds(15), "frames on the re-attached port");
        }
        finally { Proc.Run("ip", "link", "del", va); }
    }

    [RootFact]
    public void A_daemon_restarted_after_a_ports_namespace_was_deleted_starts_with_that_port_down()
    {
        using var n1 = new TestNetns("vsmp-");
        using var n2 = new TestNetns("vsmp-");
        using var n3 = new TestNetns("vsmp-");
        string s = Names.Random("");
        string dir = Directory.CreateTempSubdirectory("vst-d").FullName;
        string config = Config(s, "10.250.6.0/24", Tap("ra" + s, n1, "10.250.6.2/24"), Tap("rb" + s, n2, "10.250.6.3/24"), Tap("rc" + s, n3, "10.250.6.4/24"));
        try
        {
            using (var d = Vswitchd.StartIn(dir, config)) d.KeepDir = true;
            Proc.Check("ip", "netns", "del", n1.Name); // as a reboot does to named namespaces
            using (var d = Vswitchd.StartIn(dir, config))
            {
                d.KeepDir = true;
                var a = d.Get("/v1/ports/ra" + s);
                Assert.Equal("down", (string)a["state"]!);
                Assert.Contains(n1.Name, (string)a["stateReason"]!);
                Assert.Equal("up", (string)d.Get("/v1/ports/rb" + s)["state"]!);
                var ping = n2.TryExec(TimeSpan.FromSeconds(20), "ping", "-c", "2", "-W", "2", "10.250.6.4");
                Assert.True(ping.ExitCode == 0, ping.Output);
                // Its address stays its own while it is down.
                Assert.Equal(409, d.Send(HttpMethod.Post, "/v1/ports", new { name = "rd" + s, type = "tap", network = "blue", addresses = new[] { "10.250.6.2/24" } }).Status);
                // And it can be removed for good.
                Assert.Equal(0, AttachTests.Vsctl(d, "port", "del", "ra" + s).ExitCode);
                Assert.Equal(404, d.Send(HttpMethod.Get, "/v1/ports/ra" + s).Status);
            }
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [RootFact]
    public void A_second_daemon_on_the_same_state_database_refuses_to_start()
    {
        string dir = Directory.CreateTempSubdirectory("vst-d").FullName;
        try
        {
            using var first = Vswitchd.StartIn(dir, null);
            first.KeepDir = true;
            var second = Proc.Run(TimeSpan.FromSeconds(30), Repo.Vswitchd, "--socket", Path.Combine(dir, "second.sock"), "--state", Path.Combine(dir, "state.db"));
            Assert.Equal(1, second.ExitCode);
            Assert.Contains("another vswitchd", second.Output);
            Assert.Contains("state.db", second.Output);
            Assert.False(File.Exists(Path.Combine(dir, "second.sock")), "the second daemon must not listen");
            Assert.Equal(200, first.Send(HttpMethod.Get, "/v1/show").Status);
        }
        finally { Directory.Delete(dir, true); }
    }

    [RootFact]
    public void A_port_alone_in_its_network_shows_no_drops_for_frames_with_nowhere_to_go()
    {
        using var ns = new TestNetns("vsmp-");
        string s = Names.Random("");
        using var d = Vswitchd.Start(Config(s, "10.250.3.0/24", Tap("la" + s, ns, "10.250.3.2/24")));
        // ARP for a host that is not there: broadcasts that no other port takes.
        ns.TryExec(TimeSpan.FromSeconds(10), "ping", "-c", "2", "-W", "1", "10.250.3.9");
        Wait.Until(() => (long)d.Get("/v1/ports/la" + s)["counters"]!["rxUnsent"]! >= 1, TimeSpan.FromSeconds(10), "frames with nowhere to go to be counted");
        var counters = d.Get("/v1/ports/la" + s)["counters"]!;
        Assert.Equal(0, (long)counters["rxDrops"]!);
        // No MAC was configured: the one the kernel chose is shown, not "-".
        string? mac = (string?)d.Get("/v1/ports/la" + s)["mac"];
        Assert.False(string.IsNullOrEmpty(mac), "the port's MAC is not shown");
        Assert.Contains(mac!, ns.Exec("ip", "link", "show", "dev", "la" + s));
        Assert.Contains($"mac: {mac}", AttachTests.Vsctl(d, "show").StdOut);
        var ls = AttachTests.Vsctl(d, "port", "ls");
        var row = ls.StdOut.Split('\n').Single(l => l.StartsWith("la" + s, StringComparison.Ordinal));
        Assert.EndsWith(" 0", row.TrimEnd()); // the DROPS column
        var stats = AttachTests.Vsctl(d, "stats");
        Assert.Contains("no-output (not an error)", stats.StdOut);
    }

    [RootFact]
    public void A_trace_names_ports_needs_no_router_MAC_and_lists_every_flooded_port()
    {
        using var n1 = new TestNetns("vsmp-");
        using var n2 = new TestNetns("vsmp-");
        using var n3 = new TestNetns("vsmp-");
        string s = Names.Random("");
        string config = new JsonObject
        {
            ["networks"] = new JsonArray(
                new JsonObject { ["name"] = "blue", ["subnet"] = "10.250.4.0/24" },
                new JsonObject { ["name"] = "red", ["subnet"] = "10.250.5.0/24" }),
            ["ports"] = new JsonArray(
                new JsonObject { ["name"] = "ta" + s, ["type"] = "tap", ["network"] = "blue", ["netns"] = n1.Name, ["addresses"] = new JsonArray("10.250.4.2/24") },
                new JsonObject { ["name"] = "tc" + s, ["type"] = "tap", ["network"] = "blue", ["netns"] = n3.Name, ["addresses"] = new JsonArray("10.250.4.3/24") },
                new JsonObject { ["name"] = "tb" + s, ["type"] = "tap", ["network"] = "red", ["netns"] = n2.Name, ["addresses"] = new JsonArray("10.250.5.2/24") }),
        }.ToJsonString();
        using var d = Vswitchd.Start(config);
        Assert.Equal(201, d.Send(HttpMethod.Post, "/v1/networks/blue/connections", new { network = "red" }).Status); // isolated otherwise
        var ping = n1.TryExec(TimeSpan.FromSeconds(20), "ping", "-c", "2", "-W", "2", "10.250.5.2");
        Assert.True(ping.ExitCode == 0, ping.Output);

        // Routed, with no MAC given: the destination is off blue's subnet, so the frame goes to the router.
        var r = AttachTests.Vsctl(d, "trace", $"in_port=ta{s},icmp,nw_src=10.250.4.2,nw_dst=10.250.5.2");
        Assert.True(r.ExitCode == 0, r.Output);
        Assert.Contains($"in_port=ta{s}", r.StdOut);
        Assert.DoesNotContain("in_port=1,", r.StdOut);
        Assert.DoesNotContain("would learn 00:00:00:00:00:00", r.StdOut);
        Assert.Contains("route to 10.250.5.2", r.StdOut);
        Assert.Contains($"output: would send on tb{s}", r.StdOut);
        Assert.Contains($"output:tb{s}", r.StdOut.Split('\n').Single(l => l.StartsWith("Final actions:", StringComparison.Ordinal)));

        // A broadcast floods: every port it reaches is listed.
        var flood = AttachTests.Vsctl(d, "--json", "trace", $"in_port=tb{s},dl_src=02:00:00:00:00:77,dl_dst=ff:ff:ff:ff:ff:ff,arp,arp_tpa=10.250.5.9");
        Assert.True(flood.ExitCode == 0, flood.Output);
        var single = AttachTests.Vsctl(d, "trace", $"in_port=ta{s},dl_dst=ff:ff:ff:ff:ff:ff,dl_src=02:00:00:00:00:78,udp,nw_dst=10.250.4.255");
        Assert.Contains($"would send on tc{s}", single.StdOut);
        Assert.DoesNotContain($"would send on ta{s}", single.StdOut);

        // --routed on a network without a router is refused, naming why.
        var bad = AttachTests.Vsctl(d, "trace", "--routed", "--hex", "00", "--in-port", "ta" + s);
        Assert.NotEqual(0, bad.ExitCode);
    }

    [RootFact]
    public void The_VXLAN_endpoint_is_set_moved_and_kept_at_run_time()
    {
        string dir = Directory.CreateTempSubdirectory("vst-d").FullName;
        int port = 20000 + Random.Shared.Next(20000);
        try
        {
            using (var d = Vswitchd.StartIn(dir, null))
            {
                d.KeepDir = true;
                // No endpoint yet: a VXLAN network is refused.
                Assert.Equal(400, d.Send(HttpMethod.Post, "/v1/networks", new { name = "ov", vni = 42 }).Status);
                var set = AttachTests.Vsctl(d, "overlay", "set", "--local", "127.0.0.1", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));
                Assert.True(set.ExitCode == 0, set.Output);
                Assert.Contains($"127.0.0.1:{port}", set.StdOut);
                Assert.Equal(201, d.Send(HttpMethod.Post, "/v1/networks", new { name = "ov", vni = 42, vteps = new[] { "127.0.0.9" } }).Status);

                // An address this host does not have: refused, and the endpoint stays where it was.
                var bad = d.Send(HttpMethod.Put, "/v1/overlay", new { local = "192.0.2.77", port });
                Assert.Equal(400, bad.Status);
                Assert.Equal("127.0.0.1", (string?)d.Get("/v1/overlay")["local"]);

                // Moved: the network keeps its VTEPs.
                Assert.Equal(200, d.Send(HttpMethod.Put, "/v1/overlay", new { local = "127.0.0.2", port = port + 1 }).Status);
                var o = d.Get("/v1/overlay");
                Assert.Equal("127.0.0.2", (string?)o["local"]);
                Assert.Equal("127.0.0.9", (string?)o["networks"]![0]!["vteps"]![0]);

                // Closing it is refused while a VXLAN network needs it.
                var unset = AttachTests.Vsctl(d, "overlay", "unset");
                Assert.NotEqual(0, unset.ExitCode);
                Assert.Contains("'ov'", unset.Output);
                d.Kill();
            }
            // Acknowledged, so kept across a crash.
            using (var d = Vswitchd.StartIn(dir, null))
            {
                d.KeepDir = true;
                var o = d.Get("/v1/overlay");
                Assert.Equal("127.0.0.2", (string?)o["local"]);
                Assert.Equal(port + 1, (int)o["port"]!);
                Assert.Equal(204, d.Send(HttpMethod.Delete, "/v1/networks/ov").Status);
                Assert.Equal(204, d.Send(HttpMethod.Delete, "/v1/overlay").Status);
                Assert.Null((string?)d.Get("/v1/overlay")["local"]);
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [RootFact]
    public void A_config_file_that_differs_from_the_database_is_reported_at_start_and_applied_with_config_wins()
    {
        string dir = Directory.CreateTempSubdirectory("vst-d").FullName;
        string Net(params string[] names) => new JsonObject { ["networks"] = new JsonArray([.. names.Select(n => (JsonNode)new JsonObject { ["name"] = n })]) }.ToJsonString();
        try
        {
            using (var d = Vswitchd.StartIn(dir, Net("blue")))
                d.KeepDir = true;
            using (var d = Vswitchd.StartIn(dir, Net("blue", "red")))
            {
                d.KeepDir = true;
                Wait.Until(() => d.Log.Contains("vswitchd ready"), TimeSpan.FromSeconds(10), "the start-up line");
                Assert.Contains("differs and was NOT applied", d.Log);
                Assert.Contains("network 'red': only in the file", d.Log);
                Assert.Contains("--config-wins", d.Log);
                Assert.DoesNotContain(d.Get("/v1/networks").AsArray(), n => (string)n!["name"]! == "red");
            }
            using (var d = Vswitchd.StartIn(dir, Net("blue", "red"), "--config-wins"))
            {
                d.KeepDir = true;
                Assert.Contains(d.Get("/v1/networks").AsArray(), n => (string)n!["name"]! == "red");
            }
            using (var d = Vswitchd.StartIn(dir, Net("blue", "red")))
            {
                d.KeepDir = true;
                Wait.Until(() => d.Log.Contains("vswitchd ready"), TimeSpan.FromSeconds(10), "the start-up line");
                Assert.Contains("says the same", d.Log);
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    internal static TimeSpan CpuTime(int pid)
    {
        using var p = Process.GetProcessById(pid);
        p.Refresh();
        return p.TotalProcessorTime;
    }
}
