using System.Net;
using System.Text.Json.Nodes;

namespace VSwitch.Integration.Tests;

/// <summary>
/// <c>vsctl attach</c> as a user runs it: namespaces get a TAP renamed to eth0 with an address from
/// the network's subnet, ping each other through the switch, and lose it (address released) on
/// detach, when their namespace disappears, or keep it across a daemon restart.
/// </summary>
[Collection("netns")]
public class AttachTests
{
    private static readonly TimeSpan PingTimeout = TimeSpan.FromSeconds(20);

    private static string Config(string subnet, string gateway) =>
        new JsonObject { ["networks"] = new JsonArray(new JsonObject { ["name"] = "blue", ["subnet"] = subnet, ["gateway"] = gateway }) }.ToJsonString();

    public static ProcessResult Vsctl(Vswitchd d, params string[] args) =>
        Proc.Run(TimeSpan.FromSeconds(60), Repo.Vsctl, ["--socket", d.Socket, .. args]);

    private static JsonNode Attach(Vswitchd d, TestNetns ns, params string[] more)
    {
        var r = Vsctl(d, ["--json", "attach", ns.Name, "--network", "blue", .. more]);
        Assert.True(r.ExitCode == 0, $"vsctl attach {ns.Name} failed: {r.Output}\n{d.Log}");
        return JsonNode.Parse(r.StdOut)!;
    }

    private static void Ping(TestNetns from, string to)
    {
        var r = from.TryExec(PingTimeout, "ping", "-c", "2", "-i", "0.2", "-W", "2", to);
        Assert.True(r.ExitCode == 0, $"ping {to} from {from.Name} failed: {r.Output}");
    }

    private static string[] Allocated(Vswitchd d) =>
        d.Get("/v1/networks/blue")["allocations"]!.AsArray().Select(a => (string)a!["address"]!).ToArray();

    private static bool HasPort(Vswitchd d, string port) => d.Get("/v1/ports").AsArray().Any(p => (string?)p!["name"] == port);

    [RootFact]
    public void Two_namespaces_attached_by_vsctl_get_distinct_addresses_and_ping_each_other_and_detach_releases()
    {
        using var a = new TestNetns("vsat-");
        using var b = new TestNetns("vsat-");
        using var c = new TestNetns("vsat-");
        using var d = Vswitchd.Start(Config("10.14.0.0/24", "10.14.0.1"));

        var ja = Attach(d, a);
        var jb = Attach(d, b);
        string ipA = (string)ja["ip"]!, ipB = (string)jb["ip"]!;
        var subnet = IPNetwork.Parse("10.14.0.0/24");
        Assert.NotEqual(ipA, ipB);
        foreach (var ip in new[] { ipA, ipB })
        {
            Assert.True(subnet.Contains(IPAddress.Parse(ip)), $"{ip} is not in 10.14.0.0/24");
            Assert.NotEqual("10.14.0.1", ip);
            Assert.NotEqual("10.14.0.0", ip);
            Assert.NotEqual("10.14.0.255", ip);
        }
        Assert.Equal($"{ipA}/24", (string)ja["address"]!);
        Assert.Equal("10.14.0.1", (string)ja["gateway"]!);

        // Inside: eth0 with the address, the MAC, the MTU, and the default route via the gateway.
        string addr = a.Exec("ip", "-o", "addr", "show", "dev", "eth0");
        Assert.Contains($"inet {ipA}/24", addr);
        Assert.Contains(((string)ja["mac"]!).ToLowerInvariant(), a.Exec("ip", "-o", "link", "show", "dev", "eth0"));
        Assert.Contains("mtu 1500", a.Exec("ip", "-o", "link", "show", "dev", "eth0"));
        Assert.Contains("default via 10.14.0.1 dev eth0", a.Exec("ip", "route"));

        Ping(a, ipB);
        Ping(b, ipA);

        // Normal ports of the network.
        var ls = Vsctl(d, "port", "ls");
        Assert.Contains((string)ja["port"]!, ls.StdOut);
        Assert.Contains((string)jb["port"]!, ls.StdOut);
        Assert.Equal(new[] { ipA, ipB }.OrderBy(x => x), Allocated(d).OrderBy(x => x));
        var attLs = Vsctl(d, "attach", "ls");
        Assert.Contains(a.Name, attLs.StdOut);
        Assert.Contains(ipB, attLs.StdOut);

        // Detach b by its namespace: interface, port and address go.
        var det = Vsctl(d, "detach", b.Name);
        Assert.True(det.ExitCode == 0, det.Output);
        Assert.False(b.HasLink("eth0"));
        Assert.False(HasPort(d, (string)jb["port"]!));
        Assert.DoesNotContain(ipB, Allocated(d));
        Assert.Equal(3, Vsctl(d, "detach", b.Name).ExitCode); // not found

        // The released address is the lowest free one: the next attachment gets it again.
        var jc = Attach(d, c);
        Assert.Equal(ipB, (string)jc["ip"]!);
        Ping(c, ipA);

        // Detach by id, with --ifname.
        Assert.Equal(0, Vsctl(d, "detach", (string)jc["id"]!).ExitCode);
        Assert.Equal(0, Vsctl(d, "detach", a.Name, "--ifname", "eth0").ExitCode);
        Assert.Empty(Allocated(d));
        Assert.Empty(d.Get("/v1/attachments").AsArray());
    }

    [RootFact]
    public void Deleting_a_namespace_without_detaching_removes_its_port_and_releases_its_address()
    {
        using var a = new TestNetns("vsat-");
        var b = new TestNetns("vsat-");
        try
        {
            using var d = Vswitchd.Start(Config("10.15.0.0/24", "10.15.0.1"));
            var ja = Attach(d, a);
            var jb = Attach(d, b);
            string ipB = (string)jb["ip"]!, portB = (string)jb["port"]!;
            Ping(a, ipB);

            b.Dispose(); // like a container killed: nobody detaches
            Wait.Until(() => !HasPort(d, portB) && !Allocated(d).Contains(ipB), TimeSpan.FromSeconds(15),
                $"port {portB} to go and {ipB} to be released after its namespace was deleted");
            Assert.Single(d.Get("/v1/attachments").AsArray());
            Assert.True(HasPort(d, (string)ja["port"]!));
            Assert.Contains("namespace", d.Log);
        }
        finally { b.Dispose(); }
    }

    [RootFact]
    public void A_restarted_daemon_recreates_attachments_whose_namespace_still_exists_and_releases_the_others()
    {
        using var a = new TestNetns("vsat-");
        using var b = new TestNetns("vsat-");
        var c = new TestNetns("vsat-");
        string? dir = null;
        try
        {
            JsonNode ja, jb, jc;
            using (var d = Vswitchd.Start(Config("10.16.0.0/24", "10.16.0.1")))
            {
                d.KeepDir = true;
                dir = d.Dir;
                ja = Attach(d, a);
                jb = Attach(d, b);
                jc = Attach(d, c);
                Ping(a, (string)jb["ip"]!);
                Assert.Equal(0, d.Stop());
            }
            Assert.False(a.HasLink("eth0")); // a stopped daemon's TAPs are gone
            c.Dispose();                     // and this container went away meanwhile

            using var d2 = Vswitchd.StartIn(dir, null);
            Wait.Until(() => a.HasLink("eth0") && b.HasLink("eth0"), TimeSpan.FromSeconds(10), "eth0 to come back in both namespaces");
            var atts = d2.Get("/v1/attachments").AsArray();
            Assert.Equal(2, atts.Count);
            Assert.Contains($"inet {(string)ja["ip"]!}/24", a.Exec("ip", "-o", "addr", "show", "dev", "eth0"));
            Assert.Contains(((string)jb["mac"]!).ToLowerInvariant(), b.Exec("ip", "-o", "link", "show", "dev", "eth0"));
            Ping(a, (string)jb["ip"]!);
            Assert.DoesNotContain((string)jc["ip"]!, Allocated(d2));
        }
        finally
        {
            c.Dispose();
            if (dir is not null) try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    [RootFact]
    public void Labels_given_at_attach_are_shown_changed_by_vsctl_attach_label_refused_when_bad_and_kept_across_a_restart()
    {
        using var a = new TestNetns("vsat-");
        string? dir = null;
        try
        {
            string id;
            using (var d = Vswitchd.Start(Config("10.17.0.0/24", "10.17.0.1")))
            {
                d.KeepDir = true;
                dir = d.Dir;
                var ja = Attach(d, a, "--label", "app=web,tier=front", "--label", "example.com/team=blue");
                id = (string)ja["id"]!;
                Assert.Equal("web", (string)ja["labels"]!["app"]!);
                Assert.Equal("blue", (string)ja["labels"]!["example.com/team"]!);
                Assert.Contains("app=web,example.com/team=blue,tier=front", Vsctl(d, "attach", "ls", "--wide").StdOut);

                var bad = Vsctl(d, "attach", "label", id, "app=-web");
                Assert.NotEqual(0, bad.ExitCode);
                Assert.Contains("-web", bad.Output);
                var badApi = d.Send(HttpMethod.Patch, "/v1/attachments/" + id, """{"labels": {"bad key": "x"}}""");
                Assert.Equal(400, badApi.Status);
                Assert.Contains("bad key", badApi.Body!.ToJsonString());

                var set = Vsctl(d, "attach", "label", a.Name, "app=db");
                Assert.True(set.ExitCode == 0, set.Output);
                Assert.Contains("labels app=db", set.StdOut);
                Assert.Equal(0, d.Stop());
            }
            using var d2 = Vswitchd.StartIn(dir, null);
            var back = d2.Get("/v1/attachments/" + id);
            Assert.Equal("db", (string)back["labels"]!["app"]!);
            Assert.Single(back["labels"]!.AsObject());
        }
        finally
        {
            if (dir is not null) try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    [RootFact]
    public void Static_addresses_are_checked_against_the_subnet_reserved_addresses_and_other_attachments()
    {
        using var a = new TestNetns("vsat-");
        using var b = new TestNetns("vsat-");
        using var d = Vswitchd.Start(Config("10.18.0.0/24", "10.18.0.1"));

        var ja = Attach(d, a, "--ip", "10.18.0.50", "--mac", "02:00:00:00:18:50", "--ifname", "net0");
        Assert.Equal("10.18.0.50/24", (string)ja["address"]!);
        Assert.Equal("02:00:00:00:18:50", ((string)ja["mac"]!).ToLowerInvariant());
        Assert.True(a.HasLink("net0"));

        foreach (var (ip, expect, exit) in new[]
        {
            ("10.18.0.50", "already in use", 4), ("10.18.0.1", "gateway", 6), ("10.18.0.0", "network address", 6),
            ("10.18.0.255", "broadcast", 6), ("10.19.0.5", "outside the subnet", 6), ("nonsense", "not an IPv4 address", 6),
        })
        {
            var r = Vsctl(d, "attach", b.Name, "--network", "blue", "--ip", ip);
            Assert.True(r.ExitCode == exit, $"--ip {ip}: {r.Output}"); // 4 conflict, 6 invalid
            Assert.Contains(expect, r.StdErr);
            Assert.False(b.HasLink("eth0"));
        }
        var missing = Vsctl(d, "attach", "vsat-nosuchns", "--network", "blue");
        Assert.Equal(6, missing.ExitCode); // invalid
        Assert.Contains("does not exist", missing.StdErr);
        var noNet = Vsctl(d, "attach", b.Name, "--network", "red");
        Assert.Equal(3, noNet.ExitCode); // not found
        Assert.Contains("no network named 'red'", noNet.StdErr);

        // The first free address skips the gateway; nothing was leaked by the refusals.
        var jb = Attach(d, b);
        Assert.Equal("10.18.0.2", (string)jb["ip"]!);
        var dup = Vsctl(d, "attach", b.Name, "--network", "blue");
        Assert.Equal(4, dup.ExitCode); // conflict
        Assert.Contains("already has eth0", dup.StdErr);
        Assert.Equal(2, d.Get("/v1/ports").AsArray().Count);
    }
}
