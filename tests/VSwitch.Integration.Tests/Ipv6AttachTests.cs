using System.Text.Json.Nodes;

namespace VSwitch.Integration.Tests;

/// <summary>
/// Dual-stack containers: <c>vsctl attach</c> and the CNI plugin give a container an IPv6 address
/// from the network's subnet6 and a default route via its gateway6, port security lets that address
/// through (and not another), and the CNI result lists both families.
/// </summary>
[Collection("netns")]
public class Ipv6AttachTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static string Config() => """
        { "networks": [ { "name": "red",  "subnet": "10.170.1.0/24", "subnet6": "fd00:170:1::/64" },
                        { "name": "blue", "subnet": "10.170.2.0/24", "subnet6": "fd00:170:2::/64" } ] }
        """;

    [RootFact]
    public void Vsctl_attach_and_cni_add_give_dual_stack_addresses_that_route_across_and_port_security_holds()
    {
        using var a = new TestNetns("v6at-");
        using var b = new TestNetns("v6at-");
        using var d = Vswitchd.Start(Config());
        VsctlHarness.Ok("--socket", d.Socket, "network", "connect", "red", "blue");

        // vsctl attach: the first free IPv6 address after the gateway (::1), nodad, default route via ::1.
        var att = VsctlHarness.Ok("--socket", d.Socket, "attach", a.Name, "--network", "red").Stdout;
        Assert.Contains("fd00:170:1::2/64 via fd00:170:1::1", att);
        string addrA = a.Exec("ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global");
        Assert.Contains("inet6 fd00:170:1::2/64", addrA);
        Assert.Contains("default via fd00:170:1::1 dev eth0", a.Exec("ip", "-6", "route"));
        var list = JsonNode.Parse(VsctlHarness.Ok("--socket", d.Socket, "--json", "attach", "ls").Stdout)!.AsArray();
        Assert.Contains(list, x => (string?)x!["address6"] == "fd00:170:1::2/64" && (string?)x["gateway6"] == "fd00:170:1::1");

        // CNI ADD on blue: the result lists the IPv4 and the IPv6 address, and both default routes.
        string conf = new JsonObject { ["cniVersion"] = "1.0.0", ["name"] = "v6net", ["type"] = "vswitch-cni", ["network"] = "blue", ["socket"] = d.Socket }.ToJsonString();
        string id = "ctr" + Names.Random("");
        var add = CniPlugin.Run("ADD", conf, id, b.Path);
        Assert.True(add.ExitCode == 0, add.ToString());
        var ips = add.Json!["ips"]!.AsArray();
        Assert.Equal(2, ips.Count);
        Assert.Equal("10.170.2.2/24", (string)ips[0]!["address"]!);
        Assert.Equal("fd00:170:2::2/64", (string)ips[1]!["address"]!);
        Assert.Equal("fd00:170:2::1", (string)ips[1]!["gateway"]!);
        var routes = add.Json!["routes"]!.AsArray();
        Assert.Contains(routes, r => (string)r!["dst"]! == "::/0" && (string)r["gw"]! == "fd00:170:2::1");
        // CHECK with that result passes.
        var prev = JsonNode.Parse(conf)!.AsObject();
        prev["prevResult"] = add.Json!.DeepClone();
        var check = CniPlugin.Run("CHECK", prev.ToJsonString(), id, b.Path);
        Assert.True(check.ExitCode == 0, check.ToString());

        // IPv6 across the router between the two containers, both ways (port security on both ports allows their addresses).
        var r1 = a.TryExec(Timeout, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "fd00:170:2::2");
        Assert.True(r1.ExitCode == 0, "a -> b: " + r1.Output);
        Assert.Contains("ttl=63", r1.StdOut);
        var r2 = b.TryExec(Timeout, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "fd00:170:1::2");
        Assert.True(r2.ExitCode == 0, "b -> a: " + r2.Output);
        // The router saw the containers by neighbour discovery.
        Assert.Contains(d.Get("/v1/neighbors").AsArray(), x => (string)x!["ip"]! == "fd00:170:2::2");

        // An address the switch did not give is refused by port security.
        long before = d.Drops("port-security-ip");
        a.Exec("ip", "-6", "addr", "add", "fd00:170:1::99/64", "dev", "eth0", "nodad");
        var spoof = a.TryExec(Timeout, "ping", "-6", "-c", "1", "-W", "1", "-I", "fd00:170:1::99", "fd00:170:2::2");
        Assert.True(spoof.ExitCode != 0, "a spoofed source got through: " + spoof.Output);
        Assert.True(d.Drops("port-security-ip") > before, "port-security-ip did not count the spoofed packet");

        var del = CniPlugin.Run("DEL", conf, id, b.Path);
        Assert.True(del.ExitCode == 0, del.ToString());
        // The address went back to the pool: the next container gets it again.
        using var c = new TestNetns("v6at-");
        var again = CniPlugin.Run("ADD", conf, "ctr" + Names.Random(""), c.Path);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Equal("fd00:170:2::2/64", (string)again.Json!["ips"]![1]!["address"]!);
    }
}
