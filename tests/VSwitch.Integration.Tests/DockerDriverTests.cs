using System.Text.Json.Nodes;

namespace VSwitch.Integration.Tests;

/// <summary>
/// Docker's own commands against vswitchd's remote network and IPAM driver: a private dockerd (PrivateDockerd) finds
/// the driver's socket in /run/docker/plugins under a random name, and docker network create/run/connect/disconnect/
/// rm/network rm go through it. The containers are busybox, imported from busybox-static.
/// </summary>
[Collection("netns")]
public class DockerDriverTests
{
    private static readonly TimeSpan PingTimeout = TimeSpan.FromSeconds(20);

    private static string[] SwitchArgs(string plugin, PrivateDockerd dk) =>
        ["--docker-plugin", $"/run/docker/plugins/{plugin}.sock", "--docker-host", dk.Host];

    private static bool Pings(PrivateDockerd dk, string from, string to) =>
        dk.Run(PingTimeout, "exec", from, "ping", "-c", "1", "-W", "1", to).ExitCode == 0;

    private static void AssertPings(PrivateDockerd dk, string from, string to, Vswitchd d)
    {
        // The first ping also resolves ARP; a few tries within the deadline.
        bool ok = false;
        try { Wait.Until(() => Pings(dk, from, to), PingTimeout, $"{from} to ping {to}"); ok = true; }
        catch (TimeoutException) { }
        Assert.True(ok, $"{from} cannot ping {to}\n--- vswitchd:\n{d.Log}");
    }

    /// <summary>The container's address on a Docker network, as `docker inspect` says.</summary>
    private static string DockerIp(PrivateDockerd dk, string container, string network) =>
        dk.Check("inspect", "--format", "{{(index .NetworkSettings.Networks \"" + network + "\").IPAddress}}", container);

    private static JsonObject? Attachment(Vswitchd d, string name) =>
        d.Get("/v1/attachments").AsArray().OfType<JsonObject>().FirstOrDefault(a => (string?)a["name"] == name);

    [DockerFact]
    public void Docker_networks_containers_connect_disconnect_and_removal_go_through_the_switch()
    {
        string plugin = Names.Random("vsd");
        var dk = new PrivateDockerd();
        Vswitchd? d = null;
        try
        {
            d = Vswitchd.Start(null, SwitchArgs(plugin, dk));
            dk.Start();

            // Bad options are refused with the value named, before anything is made.
            var bad = dk.Run("network", "create", "-d", plugin, "-o", "colour=blue", "bad-net");
            Assert.True(bad.ExitCode != 0 && bad.Output.Contains("colour"), bad.Output);
            bad = dk.Run("network", "create", "-d", plugin, "-o", "vlan=5000", "bad-net");
            Assert.True(bad.ExitCode != 0 && bad.Output.Contains("vlan=5000"), bad.Output);
            Assert.Empty(d.Get("/v1/networks").AsArray());

            dk.Check("network", "create", "-d", plugin, "--subnet", "10.77.0.0/24", "my-net");
            dk.Check("network", "create", "-d", plugin, "--ipam-driver", plugin, "--subnet", "10.78.0.0/24", "other-net");
            // One IPAM with --ipam-driver: a namespace attached with vsctl to the same network takes the first address,
            // and Docker's container then gets the next one, not the same.
            Wait.Until(() => d.Send(HttpMethod.Get, "/v1/networks/other-net").Status == 200, TimeSpan.FromSeconds(30), "the switch to learn Docker's network names");
            using var ns = new TestNetns("vsdn-");
            var attached = AttachTests.Vsctl(d, "--json", "attach", ns.Name, "--network", (string)d.Get("/v1/networks/other-net")["name"]!);
            Assert.True(attached.ExitCode == 0, attached.Output);
            string nsIp = (string)JsonNode.Parse(attached.StdOut)!["ip"]!;
            Assert.Equal("10.78.0.2", nsIp);
            dk.Check("run", "-d", "--net", "my-net", "--name", "my-container", "--label", "app=web", "--label", "tier=front", PrivateDockerd.Image, "sleep", "600");
            dk.Check("run", "-d", "--net", "my-net", "--name", "c2", PrivateDockerd.Image, "sleep", "600");
            dk.Check("run", "-d", "--net", "other-net", "--name", "c3", PrivateDockerd.Image, "sleep", "600");

            // docker network inspect shows the container with its address, and the switch has the same one.
            var inspect = JsonNode.Parse(dk.Check("network", "inspect", "my-net"))!.AsArray()[0]!;
            var mine = inspect["Containers"]!.AsObject().Select(kv => kv.Value!).Single(c => (string?)c["Name"] == "my-container");
            string ip1 = ((string)mine["IPv4Address"]!).Split('/')[0];
            Assert.StartsWith("10.77.0.", ip1);
            // Container names and labels come from dockerd's API after the join: wait for them.
            Wait.Until(() => Attachment(d, "my-container") is { } a && a["labels"]?["app"] is not null && Attachment(d, "c2") is not null && Attachment(d, "c3") is not null,
                TimeSpan.FromSeconds(30), "the switch to learn the containers' names and labels");
            var att1 = Attachment(d, "my-container")!;
            Assert.Equal(ip1, (string)att1["ip"]!);
            Assert.Equal("web", (string)att1["labels"]!["app"]!);
            Assert.Equal("front", (string)att1["labels"]!["tier"]!);
            Assert.Equal("docker", (string)att1["source"]!);
            string ip2 = DockerIp(dk, "c2", "my-net"), ip3 = DockerIp(dk, "c3", "other-net");
            Assert.Equal(ip2, (string)Attachment(d, "c2")!["ip"]!);
            Assert.Equal(ip3, (string)Attachment(d, "c3")!["ip"]!);
            Assert.Equal("10.78.0.3", ip3);
            AssertPings(dk, "c3", nsIp, d);

            // vsctl port ls shows its port; vsctl network inspect (by Docker's name) shows the containers' names.
            string port1 = (string)att1["port"]!;
            Assert.Contains(port1, AttachTests.Vsctl(d, "port", "ls").StdOut);
            var vsInspect = AttachTests.Vsctl(d, "network", "inspect", "my-net");
            Assert.True(vsInspect.ExitCode == 0, vsInspect.Output);
            Assert.Contains("docker:     my-net", vsInspect.StdOut);
            Assert.Contains("my-container", vsInspect.StdOut);
            Assert.Contains("c2", vsInspect.StdOut);
            string vsNet = (string)d.Get("/v1/networks/my-net")["name"]!, vsOther = (string)d.Get("/v1/networks/other-net")["name"]!;

            // Two containers on one network ping each other; the third, on another network, does not reach them until the networks are connected.
            AssertPings(dk, "my-container", ip2, d);
            AssertPings(dk, "c2", ip1, d);
            Assert.False(Pings(dk, "c3", ip1), "c3 on other-net reached my-container on my-net, which is not connected to it");
            var connect = AttachTests.Vsctl(d, "network", "connect", "my-net", "other-net"); // Docker's names do, as well as the switch's
            Assert.True(connect.ExitCode == 0, connect.Output);
            AssertPings(dk, "c3", ip1, d);
            Assert.True(AttachTests.Vsctl(d, "network", "disconnect", vsNet, vsOther).ExitCode == 0);
            Assert.False(Pings(dk, "c3", ip1), "c3 still reaches my-container after the networks were disconnected");
            // The switch's router is each network's gateway: Docker added no docker_gwbridge network of its own.
            Assert.DoesNotContain("docker_gwbridge", dk.Check("network", "ls", "--format", "{{.Name}}"));

            // docker network connect of a running container: eth1 with an address on the second network; disconnect removes it and the port.
            dk.Check("network", "connect", "other-net", "my-container");
            string ip1b = DockerIp(dk, "my-container", "other-net");
            Assert.StartsWith("10.78.0.", ip1b);
            Assert.Contains($"inet {ip1b}/24", dk.Check("exec", "my-container", "ip", "addr", "show", "eth1"));
            var second = d.Get("/v1/attachments?network=" + vsOther).AsArray().OfType<JsonObject>().Single(a => (string?)a["ip"] == ip1b);
            string port1b = (string)second["port"]!;
            AssertPings(dk, "c3", ip1b, d);
            dk.Check("network", "disconnect", "other-net", "my-container");
            Assert.NotEqual(0, dk.Run("exec", "my-container", "ip", "link", "show", "eth1").ExitCode);
            Assert.DoesNotContain(port1b, AttachTests.Vsctl(d, "port", "ls").StdOut);
            Assert.DoesNotContain(d.Get("/v1/networks/" + vsOther)["allocations"]!.AsArray(), a => (string?)a!["address"] == ip1b);

            // docker rm -f removes the ports; docker network rm the networks; nothing is left in the switch or among the host's links.
            // (The namespace kept 10.78.0.2 until now: a reused address would leave c3 a stale ARP entry to wait out.)
            Assert.True(AttachTests.Vsctl(d, "detach", ns.Name).ExitCode == 0);
            var ports = d.Get("/v1/attachments").AsArray().Select(a => (string)a!["port"]!).ToList();
            dk.Check("rm", "-f", "my-container", "c2", "c3");
            Assert.Empty(d.Get("/v1/ports").AsArray());
            Assert.Empty(d.Get("/v1/attachments").AsArray());
            dk.Check("network", "rm", "my-net", "other-net");
            Assert.Empty(d.Get("/v1/networks").AsArray());
            string links = Proc.Check("ip", "-o", "link", "show");
            foreach (var p in ports.Append(port1b)) Assert.DoesNotContain(p + ":", links);
        }
        finally
        {
            dk.Dispose();
            d?.Dispose();
        }
    }

    [DockerFact]
    public void Containers_keep_connectivity_across_a_killed_vswitchd_and_a_killed_dockerd_and_deletions_meanwhile_are_cleaned_up()
    {
        string plugin = Names.Random("vsd");
        var dk = new PrivateDockerd();
        Vswitchd? d = null;
        string? dir = null;
        int? successor = null;
        try
        {
            d = Vswitchd.Start(null, SwitchArgs(plugin, dk));
            dir = d.Dir;
            dk.Start();
            dk.Check("network", "create", "-d", plugin, "--ipam-driver", plugin, "--subnet", "10.79.0.0/24", "rs-net");
            foreach (var c in new[] { "r1", "r2" }) dk.Check("run", "-d", "--net", "rs-net", "--name", c, PrivateDockerd.Image, "sleep", "600");
            string ip1 = DockerIp(dk, "r1", "rs-net"), ip2 = DockerIp(dk, "r2", "rs-net");
            AssertPings(dk, "r1", ip2, d);

            // vswitchd killed (SIGKILL) with the containers running: the TAPs stay in them, the new vswitchd opens them again.
            d.KeepDir = true;
            d.Kill();
            d.Dispose();
            d = Vswitchd.StartIn(dir, null, SwitchArgs(plugin, dk));
            Assert.Contains("restored docker endpoint", d.Log);
            AssertPings(dk, "r1", ip2, d);
            AssertPings(dk, "r2", ip1, d);

            // An endpoint Docker deletes while vswitchd is down (its calls fail after libnetwork's retries) is cleaned up when it returns.
            string port2 = (string)d.Get("/v1/attachments").AsArray().OfType<JsonObject>().Single(a => (string?)a["ip"] == ip2)["port"]!;
            d.KeepDir = true;
            d.Kill();
            d.Dispose();
            var rm = dk.Run(TimeSpan.FromSeconds(180), "rm", "-f", "r2");
            Assert.True(rm.ExitCode == 0, rm.Output);
            d = Vswitchd.StartIn(dir, null, SwitchArgs(plugin, dk));
            Assert.DoesNotContain(port2, AttachTests.Vsctl(d, "port", "ls").StdOut);
            Assert.DoesNotContain(port2 + ":", Proc.Check("ip", "-o", "link", "show"));
            Assert.Single(d.Get("/v1/attachments").AsArray());
            dk.Check("run", "-d", "--net", "rs-net", "--name", "r3", PrivateDockerd.Image, "sleep", "600");
            string ip3 = DockerIp(dk, "r3", "rs-net");
            AssertPings(dk, "r1", ip3, d);

            // dockerd killed and started again (live restore): the containers and their ports are as they were.
            dk.Kill();
            dk.Start();
            Assert.Contains("r1", dk.Check("ps", "--format", "{{.Names}}"));
            AssertPings(dk, "r1", ip3, d);
            AssertPings(dk, "r3", ip1, d);
            Assert.Equal(2, d.Get("/v1/attachments").AsArray().Count);

            // A hitless restart (vsctl restart): the successor takes the TAPs over and serves the plugin socket anew.
            var restart = AttachTests.Vsctl(d, "--json", "restart");
            Assert.True(restart.ExitCode == 0, restart.Output);
            successor = (int)JsonNode.Parse(restart.StdOut)!["newPid"]!;
            Wait.Until(() => d.HasExited, TimeSpan.FromSeconds(20), "the old vswitchd to exit");
            Assert.Equal(0, d.ExitCode);
            AssertPings(dk, "r1", ip3, d);
            dk.Check("run", "-d", "--net", "rs-net", "--name", "r4", PrivateDockerd.Image, "sleep", "600");
            AssertPings(dk, "r4", ip1, d);
        }
        finally
        {
            dk.Dispose();
            if (successor is int pid)
            {
                Proc.Run("kill", "-TERM", pid.ToString());
                try { Wait.Until(() => !Directory.Exists($"/proc/{pid}"), TimeSpan.FromSeconds(20), $"the successor vswitchd {pid} to stop"); }
                catch (TimeoutException) { Proc.Run("kill", "-KILL", pid.ToString()); }
            }
            if (d is not null) { d.KeepDir = false; d.Dispose(); }
            else if (dir is not null) try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }
}
