using System.Text.Json.Nodes;
using Xunit.Abstractions;
using static VSwitch.Integration.Tests.OverlayTests;

namespace VSwitch.Integration.Tests;

/// <summary>
/// VXLAN over an IPv6 underlay (issue 18, item 6): hosts are namespaces on a bridged underlay with IPv6 addresses
/// (the <see cref="Underlay"/> rig of <see cref="OverlayTests"/>), VTEP addresses are IPv6. Between two vswitchd hosts
/// (with a hitless restart in the middle), and against the kernel's VXLAN device: ping and TCP both ways.
/// </summary>
[Collection("netns")]
public class Ipv6UnderlayTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [RootFact]
    public void Two_hosts_over_an_ipv6_underlay_ping_and_tcp_both_ways_and_learned_macs_survive_a_restart()
    {
        using var u = new Underlay("10.211.0", "fd00:99:11");
        var ha = u.AddHost(1);
        var hb = u.AddHost(2);
        var a1 = u.AddContainer();
        var b1 = u.AddContainer();
        string s = Names.Random("");
        using var da = Vswitchd.StartInNetns(ha.Name, L2Config("fd00:99:11::1", ["fd00:99:11::2"], ("xa1" + s, a1, "10.43.0.11")));
        using var db = Vswitchd.StartInNetns(hb.Name, L2Config("fd00:99:11::2", ["fd00:99:11::1"], ("xb1" + s, b1, "10.43.0.21")));
        int? successor = null;
        try
        {
            Assert.Contains("mtu 1430", a1.Exec("ip", "link", "show", "xa1" + s)); // room for the 70 bytes of VXLAN over IPv6
            BothWays(a1, b1);
            Assert.Equal(0, (long)db.Port("vxlan0")["details"]!["rx-gro-bad-checksum"]!);

            // The IPv6 VTEP, shown as an address wherever a remote is shown.
            string bMac = MacOf(b1, "xb1" + s);
            Assert.Contains(da.Get("/v1/fdb?network=ov").AsArray(), e => (string)e!["mac"]! == bMac && (string?)e["vtep"] == "fd00:99:11::2");
            Assert.Contains(da.Get("/v1/overlay")["vteps"]!.AsArray(), v => (string)v!["address"]! == "fd00:99:11::2" && (long)v["rxPackets"]! > 0 && (long)v["txPackets"]! > 0);
            Assert.Contains(da.Get("/v1/flows").AsArray(), f => ((string)f!["actions"]!).Contains("vxlan vni=42,remote=fd00:99:11::2"));
            var fdb = VsctlHarness.Ok("--socket", da.Socket, "fdb", "show");
            Assert.Contains("fd00:99:11::2", fdb.Stdout);
            var vteps = VsctlHarness.Ok("--socket", da.Socket, "vtep", "ls");
            Assert.Contains("[fd00:99:11::1]:4789", vteps.Stdout);
            var trace = VsctlHarness.Ok("--socket", da.Socket, "trace",
                "in_port=vxlan0,tun_id=42,tun_src=fd00:99:11::2,udp,dl_src=02:00:00:00:00:99,dl_dst=ff:ff:ff:ff:ff:ff,nw_dst=10.43.0.11");
            Assert.Contains("VTEP fd00:99:11::2", trace.Stdout);
            // Configured through vsctl as IPv4 ones are: a third VTEP and a static MAC behind it; the other family is refused, naming it.
            Assert.Contains("vtep fd00:99:11::3 added to network ov", VsctlHarness.Ok("--socket", da.Socket, "vtep", "add", "ov", "fd00:99:11:0::3").Stdout);
            VsctlHarness.Ok("--socket", da.Socket, "fdb", "add", "ov", "02:00:00:00:00:77", "--vtep", "fd00:99:11::3");
            Assert.Contains(da.Get("/v1/fdb?network=ov").AsArray(), e => (string)e!["mac"]! == "02:00:00:00:00:77" && (string?)e["vtep"] == "fd00:99:11::3" && (bool)e["static"]!);
            var mixed = VsctlHarness.Vsctl("--socket", da.Socket, "vtep", "add", "ov", "10.211.0.3");
            Assert.NotEqual(0, mixed.ExitCode);
            Assert.Contains("'10.211.0.3' is IPv4 but this host's VTEP address (overlay.local) 'fd00:99:11::1' is IPv6", mixed.Stderr);

            // Hitless restart of host A: the MAC learned behind the IPv6 VTEP comes over (by address: handles are each process's own).
            var r = VsctlHarness.Vsctl("--socket", da.Socket, "--json", "restart");
            Assert.True(r.ExitCode == 0, r.ToString());
            successor = (int)JsonNode.Parse(r.Stdout)!["newPid"]!;
            output.WriteLine($"restart: {r.Stdout}");
            Wait.Until(() => da.HasExited, TimeSpan.FromSeconds(20), "the old vswitchd to exit");
            var after = da.Get("/v1/fdb?network=ov").AsArray();
            Assert.Contains(after, e => (string)e!["mac"]! == bMac && (string?)e["vtep"] == "fd00:99:11::2" && !(bool)e["static"]!);
            Assert.Contains(after, e => (string)e!["mac"]! == "02:00:00:00:00:77" && (string?)e["vtep"] == "fd00:99:11::3" && (bool)e["static"]!);
            Assert.Contains("fd00:99:11::3", da.Get("/v1/overlay")["networks"]!.ToJsonString());
            Assert.Contains("VXLAN endpoint: took over the predecessor's sockets", da.Log);
            Ping(a1, "10.43.0.21");
            Ping(b1, "10.43.0.11");
        }
        finally
        {
            if (successor is int pid) RestartTests.StopByPid(pid);
        }
    }

    [RootFact]
    public void An_unlisted_ipv6_vtep_is_dropped_as_unknown_vtep_and_learned_where_unknown_vteps_are_accepted()
    {
        using var u = new Underlay("10.214.0", "fd00:99:14");
        var ha = u.AddHost(1);
        var hb = u.AddHost(2);
        var hc = u.AddHost(3);
        var a1 = u.AddContainer();
        var b1 = u.AddContainer();
        var c1 = u.AddContainer();
        string s = Names.Random("");
        // A lists B only; B lists nobody but accepts (and learns) unknown VTEPs; C lists A, which does not list C.
        var bConfig = JsonNode.Parse(L2Config("fd00:99:14::2", [], ("xb1" + s, b1, "10.43.0.21")))!;
        bConfig["networks"]![0]!["acceptUnknownVteps"] = true;
        using var da = Vswitchd.StartInNetns(ha.Name, L2Config("fd00:99:14::1", ["fd00:99:14::2"], ("xa1" + s, a1, "10.43.0.11")));
        using var db = Vswitchd.StartInNetns(hb.Name, bConfig.ToJsonString());
        using var dc = Vswitchd.StartInNetns(hc.Name, L2Config("fd00:99:14::3", ["fd00:99:14::1"], ("xc1" + s, c1, "10.43.0.31")));

        // B learns A's VTEP from its first datagram and answers it.
        Ping(a1, "10.43.0.21");
        Assert.Contains(db.Get("/v1/fdb?network=ov").AsArray(), e => (string?)e!["vtep"] == "fd00:99:14::1" && (string)e["mac"]! == MacOf(a1, "xa1" + s));
        Assert.Contains(db.Get("/v1/overlay")["vteps"]!.AsArray(), v => (string)v!["address"]! == "fd00:99:14::1" && (long)v["txPackets"]! > 0);

        // A drops what C sends: counted by reason, and nothing reaches a1.
        var r = c1.TryExec(Timeout, "ping", "-c", "2", "-i", "0.2", "-W", "1", "10.43.0.11");
        Assert.NotEqual(0, r.ExitCode);
        Wait.Until(() => da.Drops("unknown-vtep") > 0, TimeSpan.FromSeconds(10), "A to count C's frames as unknown-vtep");
        Assert.DoesNotContain(da.Get("/v1/fdb?network=ov").AsArray(), e => (string?)e!["vtep"] == "fd00:99:14::3");
    }

    /// <summary>
    /// Between container A (10.43.0.11) and container B (10.43.0.21), each way: ping, a full 1430-byte packet with DF
    /// (1500 bytes on the underlay), iperf3, and 16 MiB counted and hashed to EOF.
    /// </summary>
    private static void BothWays(TestNetns a1, TestNetns b1)
    {
        foreach (var (from, to, ip) in new[] { (a1, b1, "10.43.0.21"), (b1, a1, "10.43.0.11") })
        {
            Ping(from, ip);
            Ping(from, ip, "-s 1402 -M do");
            var (sent, received) = Iperf.Run(from, to, ip, seconds: 3);
            Iperf.AssertIntact(sent, received);
            Iperf.ExactTransfer(from, to, ip);
        }
    }

    /// <summary>The kernel's VXLAN device on host B (IPv6 local and remote), bridged to a container.</summary>
    private static TestNetns KernelVtep(Underlay u, TestNetns hb, string local, string remote, string ip, params string[] vxlanOptions)
    {
        var b1 = u.AddContainer();
        hb.Exec("ip", ["link", "add", "vx0", "type", "vxlan", "id", "42", "dstport", "4789", "local", local, "remote", remote, "dev", "u0", .. vxlanOptions]);
        hb.Exec("ip", "link", "add", "br0", "type", "bridge");
        hb.Exec("ip", "link", "set", "vx0", "master", "br0");
        Proc.Check("ip", "link", "add", "kb0", "netns", hb.Name, "type", "veth", "peer", "name", "eth0", "netns", b1.Name);
        hb.Exec("ip", "link", "set", "kb0", "master", "br0");
        foreach (var dev in new[] { "vx0", "br0", "kb0" }) hb.Exec("ip", "link", "set", dev, "up");
        // The kernel gives its VXLAN device over IPv6 1430 (70 bytes of encapsulation), as we give our TAPs.
        Assert.Contains("mtu 1430", hb.Exec("ip", "link", "show", "vx0"));
        b1.Exec("ip", "link", "set", "eth0", "mtu", "1430");
        // The known trap (PEERS.md): inner TCP checksums left to an offload a UDP socket never does.
        b1.Exec("ethtool", "-K", "eth0", "tx", "off");
        b1.Exec("ip", "addr", "add", ip + "/24", "dev", "eth0");
        b1.Exec("ip", "link", "set", "eth0", "up");
        return b1;
    }

    [RootFact]
    public void Interoperates_with_the_kernel_vxlan_device_over_ipv6_ping_and_tcp_both_ways()
    {
        using var u = new Underlay("10.212.0", "fd00:99:12");
        var ha = u.AddHost(1);
        var hb = u.AddHost(2);
        var a1 = u.AddContainer();
        var b1 = KernelVtep(u, hb, "fd00:99:12::2", "fd00:99:12::1", "10.43.0.21");
        string s = Names.Random("");
        using var da = Vswitchd.StartInNetns(ha.Name, L2Config("fd00:99:12::1", ["fd00:99:12::2"], ("xa1" + s, a1, "10.43.0.11")));

        BothWays(a1, b1);
        // The kernel took our datagrams with its default (udp6zerocsumrx off): their UDP checksums were there and right.
        Assert.Contains(da.Get("/v1/fdb?network=ov").AsArray(), e => (string?)e!["vtep"] == "fd00:99:12::2" && (string)e["mac"]! == MacOf(b1, "eth0"));
        Assert.True(Udp6(hb, "Udp6InDatagrams") > 1000, "the kernel's VXLAN saw no IPv6 datagrams");
        Assert.Equal(0, Udp6(hb, "Udp6InCsumErrors"));
        output.WriteLine($"host B: Udp6InDatagrams {Udp6(hb, "Udp6InDatagrams")}, Udp6InCsumErrors {Udp6(hb, "Udp6InCsumErrors")}");
    }

    /// <summary>A counter of the namespace's UDP over IPv6 (/proc/net/snmp6).</summary>
    private static long Udp6(TestNetns ns, string name) =>
        long.Parse(ns.Exec("cat", "/proc/net/snmp6").Split('\n').Select(l => l.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
            .First(w => w.Length == 2 && w[0] == name)[1]);

    [RootFact]
    public void A_zero_udp_checksum_over_ipv6_is_refused_unless_configured()
    {
        using var u = new Underlay("10.213.0", "fd00:99:13");
        var ha = u.AddHost(1);
        var hb = u.AddHost(2);
        var a1 = u.AddContainer();
        // The kernel's VXLAN device sending zero checksums (RFC 6935), and taking them.
        var b1 = KernelVtep(u, hb, "fd00:99:13::2", "fd00:99:13::1", "10.43.0.21", "udp6zerocsumtx", "udp6zerocsumrx");
        string s = Names.Random("");
        using var da = Vswitchd.StartInNetns(ha.Name, L2Config("fd00:99:13::1", ["fd00:99:13::2"], ("xa1" + s, a1, "10.43.0.11")));

        // By default, as the kernel: a datagram without a checksum never reaches the endpoint.
        var r = b1.TryExec(Timeout, "ping", "-c", "2", "-i", "0.2", "-W", "1", "10.43.0.11");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Equal(0, (long)da.Port("vxlan0")["details"]!["rx-packets"]!);
        Assert.True(Udp6(ha, "Udp6InCsumErrors") > 0, "host A's kernel did not count the zero checksums");

        // Configured: taken (vsctl overlay set --udp6-zero-csum-rx; the networks keep their VTEPs).
        VsctlHarness.Ok("--socket", da.Socket, "overlay", "set", "--local", "fd00:99:13::1", "--udp6-zero-csum-rx");
        Assert.True((bool)da.Get("/v1/overlay")["udp6ZeroChecksumRx"]!);
        Assert.Contains("(takes zero UDP checksums)", VsctlHarness.Ok("--socket", da.Socket, "vtep", "ls").Stdout);
        Ping(b1, "10.43.0.11");
        Ping(a1, "10.43.0.21");
        Assert.True((long)da.Port("vxlan0")["details"]!["rx-packets"]! > 0);
    }
}
