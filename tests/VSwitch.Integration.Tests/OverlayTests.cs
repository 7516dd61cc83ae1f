using System.Text.Json.Nodes;

namespace VSwitch.Integration.Tests;

/// <summary>
/// An underlay for overlay tests: a Linux bridge in a namespace of its own, and "hosts" (namespaces)
/// attached to it by veth with addresses 10.200.X.i/24. Everything goes when disposed.
/// </summary>
public sealed class Underlay : IDisposable
{
    private readonly List<IDisposable> _owned = [];
    public TestNetns Switch { get; }
    public string Subnet { get; }

    /// <summary>The IPv6 prefix of the hosts' underlay addresses (PREFIX::index/64), or null for IPv4 only.</summary>
    public string? Subnet6 { get; }

    /// <param name="subnet">the first three octets of the hosts' IPv4 addresses</param>
    /// <param name="subnet6">e.g. "fd00:99:1": the hosts also get PREFIX::index/64, added nodad (usable at once, no DAD wait)</param>
    public Underlay(string subnet, string? subnet6 = null)
    {
        Subnet = subnet;
        Subnet6 = subnet6;
        Switch = Own(new TestNetns("vsu-"));
        Switch.Exec("ip", "link", "add", "br0", "type", "bridge");
        Switch.Exec("ip", "link", "set", "br0", "up");
    }

    private T Own<T>(T d) where T : IDisposable { _owned.Add(d); return d; }

    /// <summary>A host namespace with interface u0 = SUBNET.index/24 on the underlay.</summary>
    public TestNetns AddHost(int index)
    {
        var h = Own(new TestNetns("vsh-"));
        string outer = "u" + index + Names.Random("");
        Proc.Check("ip", "link", "add", "u0", "netns", h.Name, "type", "veth", "peer", "name", outer, "netns", Switch.Name);
        Switch.Exec("ip", "link", "set", outer, "master", "br0");
        Switch.Exec("ip", "link", "set", outer, "up");
        h.Exec("ip", "addr", "add", $"{Subnet}.{index}/24", "dev", "u0");
        if (Subnet6 is not null) h.Exec("ip", "-6", "addr", "add", $"{Subnet6}::{index}/64", "dev", "u0", "nodad");
        h.Exec("ip", "link", "set", "u0", "up");
        return h;
    }

    /// <summary>A container namespace without IPv6 (no router solicitations or MLD to muddy counts).</summary>
    public TestNetns AddContainer()
    {
        var c = Own(new TestNetns("vsc-"));
        c.Exec("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1");
        c.Exec("sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1");
        return c;
    }

    public void Dispose()
    {
        for (int i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
    }
}

/// <summary>
/// VXLAN between hosts: each host is a namespace with its own underlay veth and its own vswitchd,
/// and each host's containers are namespaces attached to it by TAP. Peers: the kernel's VXLAN
/// device, tcpdump and tshark.
/// </summary>
[Collection("netns")]
public class OverlayTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    internal static string L2Config(string local, string[] remotes, params (string Port, TestNetns Ns, string Ip)[] containers) =>
        new JsonObject
        {
            ["overlay"] = new JsonObject { ["local"] = local },
            ["networks"] = new JsonArray(new JsonObject { ["name"] = "ov", ["vni"] = 42, ["vteps"] = new JsonArray(remotes.Select(r => (JsonNode)r).ToArray()) }),
            ["ports"] = new JsonArray(containers.Select(c => (JsonNode)new JsonObject
            {
                ["name"] = c.Port, ["network"] = "ov", ["netns"] = c.Ns.Name, ["addresses"] = new JsonArray(c.Ip + "/24"),
            }).ToArray()),
        }.ToJsonString();

    internal static void Ping(TestNetns from, string to, string extra = "")
    {
        var args = new List<string> { "-c", "2", "-i", "0.2", "-W", "2" };
        if (extra.Length > 0) args.AddRange(extra.Split(' '));
        args.Add(to);
        var r = from.TryExec(Timeout, "ping", [.. args]);
        Assert.True(r.ExitCode == 0, $"ping {to} from {from.Name}: {r.Output}");
    }

    internal static string MacOf(TestNetns ns, string dev) =>
        (string)JsonNode.Parse(ns.Exec("ip", "-j", "link", "show", "dev", dev))!.AsArray()[0]!["address"]!;

    [RootFact]
    public void Two_hosts_two_containers_each_on_one_vni_all_ping_and_tcp_crosses()
    {
        using var u = new Underlay("10.201.0");
        var ha = u.AddHost(1);
        var hb = u.AddHost(2);
        var a1 = u.AddContainer(); var a2 = u.AddContainer();
        var b1 = u.AddContainer(); var b2 = u.AddContainer();
        string s = Names.Random("");
        using var da = Vswitchd.StartInNetns(ha.Name, L2Config("10.201.0.1", ["10.201.0.2"], ("oa1" + s, a1, "10.42.0.11"), ("oa2" + s, a2, "10.42.0.12")));
        using var db = Vswitchd.StartInNetns(hb.Name, L2Config("10.201.0.2", ["10.201.0.1"], ("ob1" + s, b1, "10.42.0.21"), ("ob2" + s, b2, "10.42.0.22")));

        Assert.Contains("mtu 1450", a1.Exec("ip", "link", "show", "oa1" + s)); // room for the 50 bytes of VXLAN
        var all = new[] { (a1, "10.42.0.11"), (a2, "10.42.0.12"), (b1, "10.42.0.21"), (b2, "10.42.0.22") };
        foreach (var (from, _) in all)
            foreach (var (to, ip) in all)
                if (from != to) Ping(from, ip);

        var (sent, received) = Iperf.Run(a1, b1, "10.42.0.21", seconds: 3);
        Iperf.AssertIntact(sent, received);
        // TCP crossed as super-frames: host A sent them as UDP GSO trains, host B joined them again.
        var txA = da.Port("vxlan0")["details"]!;
        var rxB = db.Port("vxlan0")["details"]!;
        Assert.True((long)txA["tx-gso-sends"]! > 0, txA.ToJsonString());
        Assert.True((long)rxB["rx-gro-super-frames"]! > 0, rxB.ToJsonString());
        Assert.Equal(0, (long)rxB["rx-gro-bad-checksum"]!);

        // Host A's FDB lists host B's containers behind host B's VTEP.
        var fdb = da.Get("/v1/fdb?network=ov").AsArray();
        foreach (var (ns, dev) in new[] { (b1, "ob1" + s), (b2, "ob2" + s) })
        {
            string mac = MacOf(ns, dev);
            Assert.Contains(fdb, e => (string)e!["mac"]! == mac && (string?)e["vtep"] == "10.201.0.2" && (string)e["port"]! == "vxlan0");
        }
        var overlay = da.Get("/v1/overlay");
        Assert.Contains(overlay["vteps"]!.AsArray(), v => (string)v!["address"]! == "10.201.0.2" && (long)v["txPackets"]! > 0);
        Assert.Contains(da.Get("/v1/flows").AsArray(), f => ((string)f!["actions"]!).Contains("vxlan vni=42,remote=10.201.0.2"));
    }

    [RootFact]
    public void Interoperates_with_the_kernel_vxlan_device_and_tshark_dissects_it()
    {
        using var u = new Underlay("10.202.0");
        var ha = u.AddHost(1);
        var hb = u.AddHost(2);
        var a1 = u.AddContainer();
        var b1 = u.AddContainer();
        string s = Names.Random("");
        // Host B: the kernel's VXLAN device bridged to a container, as Docker's overlay or Flannel would.
        hb.Exec("ip", "link", "add", "vx0", "type", "vxlan", "id", "42", "dstport", "4789", "local", "10.202.0.2", "remote", "10.202.0.1", "dev", "u0");
        hb.Exec("ip", "link", "add", "br0", "type", "bridge");
        hb.Exec("ip", "link", "set", "vx0", "master", "br0");
        Proc.Check("ip", "link", "add", "kb0", "netns", hb.Name, "type", "veth", "peer", "name", "eth0", "netns", b1.Name);
        hb.Exec("ip", "link", "set", "kb0", "master", "br0");
        foreach (var dev in new[] { "vx0", "br0", "kb0" }) hb.Exec("ip", "link", "set", dev, "up");
        b1.Exec("ip", "link", "set", "eth0", "mtu", "1450");
        // The known trap (see PEERS.md): with transmit checksum offload on, the kernel's VXLAN
        // sends inner TCP segments whose checksum is left to an offload a UDP socket never does.
        b1.Exec("ethtool", "-K", "eth0", "tx", "off");
        b1.Exec("ip", "addr", "add", "10.42.0.21/24", "dev", "eth0");
        b1.Exec("ip", "link", "set", "eth0", "up");

        using var da = Vswitchd.StartInNetns(ha.Name, L2Config("10.202.0.1", ["10.202.0.2"], ("oa1" + s, a1, "10.42.0.11")));
        string pcap = Path.Combine(da.Dir, "underlay.pcap");
        // -Z root: tcpdump would otherwise drop to its own user, who cannot write in the test's folder.
        // --immediate-mode: libpcap's ring otherwise hands packets over only when a block times out.
        var dump = ha.Start("tcpdump", "-Z", "root", "--immediate-mode", "-i", "u0", "-U", "-w", pcap, "udp", "port", "4789");
        try
        {
            Wait.Until(() => File.Exists(pcap), TimeSpan.FromSeconds(10), "tcpdump to start");
            Ping(a1, "10.42.0.21");
            Ping(b1, "10.42.0.11");
            // 8 echo packets of ~150 bytes each on the underlay, written as they come.
            Wait.Until(() => new FileInfo(pcap).Length > 1000, TimeSpan.FromSeconds(10), "tcpdump to write the captured packets");
        }
        finally
        {
            Proc.Run("kill", "-INT", dump.Id.ToString());
            dump.WaitForExit(5000);
            Proc.KillQuietly(dump);
        }
        var (sent, received) = Iperf.Run(a1, b1, "10.42.0.21", seconds: 3);
        Iperf.AssertIntact(sent, received);
        // The kernel's VXLAN socket takes our UDP GSO trains (it segments them itself).
        Assert.True((long)da.Port("vxlan0")["details"]!["tx-gso-sends"]! > 0, da.Port("vxlan0")["details"]!.ToJsonString());
        (sent, received) = Iperf.Run(b1, a1, "10.42.0.11", seconds: 3);
        Iperf.AssertIntact(sent, received);

        var tshark = Proc.Run(TimeSpan.FromSeconds(60), "tshark", "-r", pcap, "-V", "-Y", "vxlan && icmp");
        string text = tshark.StdOut;
        Assert.True(text.Length > 0, $"tshark printed nothing (pcap {new FileInfo(pcap).Length} bytes): {tshark.StdErr}");
        Assert.Contains("Virtual eXtensible Local Area Network", text);
        Assert.Contains("VXLAN Network Identifier (VNI): 42", text);
        Assert.Contains(".... 1... .... .... = VXLAN Network ID (VNI): True", text); // the I flag
        Assert.Contains("Internet Control Message Protocol", text);
        Assert.Contains("Src: 10.42.0.11", text);
    }

    [RootFact]
    public void Three_hosts_a_broadcast_reaches_each_other_host_exactly_once()
    {
        using var u = new Underlay("10.203.0");
        var h = new[] { u.AddHost(1), u.AddHost(2), u.AddHost(3) };
        var c = new[] { u.AddContainer(), u.AddContainer(), u.AddContainer() };
        string s = Names.Random("");
        var d = new Vswitchd[3];
        try
        {
            for (int i = 0; i < 3; i++)
            {
                var remotes = Enumerable.Range(1, 3).Where(j => j != i + 1).Select(j => $"10.203.0.{j}").ToArray();
                d[i] = Vswitchd.StartInNetns(h[i].Name, L2Config($"10.203.0.{i + 1}", remotes, ($"ot{i}{s}", c[i], $"10.42.0.{i + 1}")));
            }
            Dictionary<string, (long Rx, long Tx)> Counters(Vswitchd v) =>
                v.Get("/v1/overlay")["vteps"]!.AsArray().ToDictionary(x => (string)x!["address"]!, x => ((long)x!["rxPackets"]!, (long)x["txPackets"]!));
            var before = d.Select(Counters).ToArray();
            // One broadcast frame from container 0 (an experimental ethertype nobody answers). The source MAC is
            // given: scapy left alone may send from 00:00:00:00:00:00, which the switch drops (invalid-source-mac).
            string script = $"from scapy.all import Ether, Raw, sendp\nsendp(Ether(dst='ff:ff:ff:ff:ff:ff', src='02:00:00:42:00:01', type=0x88b5)/Raw(b'x'*46), iface='ot0{s}', verbose=False)\n";
            string path = Path.Combine(d[0].Dir, "bcast.py");
            File.WriteAllText(path, script);
            var r = c[0].TryExec(Timeout, "/usr/bin/python3", path);
            Assert.True(r.ExitCode == 0, r.Output);
            long Delta(int host, string vtep, bool rx)
            {
                var now = Counters(d[host]);
                var a = now.GetValueOrDefault(vtep);
                var b = before[host].GetValueOrDefault(vtep);
                return rx ? a.Rx - b.Rx : a.Tx - b.Tx;
            }
            Wait.Until(() => Delta(1, "10.203.0.1", rx: true) >= 1 && Delta(2, "10.203.0.1", rx: true) >= 1, TimeSpan.FromSeconds(10), "the broadcast at hosts 2 and 3");
            Thread.Sleep(500); // let any (wrong) re-flooding show up before counting
            Assert.Equal(1, Delta(0, "10.203.0.2", rx: false));
            Assert.Equal(1, Delta(0, "10.203.0.3", rx: false));
            Assert.Equal(1, Delta(1, "10.203.0.1", rx: true));
            Assert.Equal(1, Delta(2, "10.203.0.1", rx: true));
            Assert.Equal(0, Delta(1, "10.203.0.3", rx: false)); // split horizon: no tunnel to tunnel
            Assert.Equal(0, Delta(2, "10.203.0.2", rx: false));
        }
        finally
        {
            foreach (var v in d) v?.Dispose();
        }
    }

    private static string RoutedConfig(string local, string remote, string transitGw, string subnet, string remoteSubnet, string remoteGw,
        string port, TestNetns container, string ip) => $$"""
        { "overlay": { "local": "{{local}}" },
          "networks": [ { "name": "local", "subnet": "{{subnet}}" },
                        { "name": "transit", "vni": 100, "subnet": "10.99.0.0/24", "gateway": "{{transitGw}}", "vteps": ["{{remote}}"] } ],
          "ports": [ { "name": "{{port}}", "network": "local", "netns": "{{container.Name}}", "addresses": ["{{ip}}"] } ] }
        """;

    [RootFact]
    public void Routed_overlay_between_subnets_pings_passes_tcp_and_sends_frag_needed()
    {
        using var u = new Underlay("10.204.0");
        var ha = u.AddHost(1);
        var hb = u.AddHost(2);
        var a1 = u.AddContainer();
        var b1 = u.AddContainer();
        string s = Names.Random("");
        using var da = Vswitchd.StartInNetns(ha.Name, RoutedConfig("10.204.0.1", "10.204.0.2", "10.99.0.1", "10.51.0.0/24", "10.52.0.0/24", "10.99.0.2", "ra" + s, a1, "10.51.0.2/24"));
        using var db = Vswitchd.StartInNetns(hb.Name, RoutedConfig("10.204.0.2", "10.204.0.1", "10.99.0.2", "10.52.0.0/24", "10.51.0.0/24", "10.99.0.1", "rb" + s, b1, "10.52.0.2/24"));
        Assert.Equal(201, da.Send(HttpMethod.Post, "/v1/routes", new { prefix = "10.52.0.0/24", via = "10.99.0.2" }).Status);
        Assert.Equal(201, db.Send(HttpMethod.Post, "/v1/routes", new { prefix = "10.51.0.0/24", via = "10.99.0.1" }).Status);

        Ping(a1, "10.52.0.2");
        Ping(b1, "10.51.0.2");
        var r = a1.TryExec(Timeout, "ping", "-c", "1", "-W", "2", "10.52.0.2");
        Assert.Contains("ttl=62", r.StdOut); // two routers on the way
        var (sent, received) = Iperf.Run(a1, b1, "10.52.0.2", seconds: 3);
        Iperf.AssertIntact(sent, received);

        // The transit network's MTU is 1450: a 1500-byte packet with DF gets "frag needed" from host
        // A's router (TCP above already met it: its path MTU discovery is why it completed). Once the
        // kernel knows the path MTU, ping reports it locally ("mtu=1450"); the first time, from the
        // router's ICMP ("mtu = 1450").
        r = a1.TryExec(Timeout, "ping", "-c", "1", "-M", "do", "-s", "1472", "-W", "2", "10.52.0.2");
        Assert.Matches(@"mtu ?= ?1450", r.Output);
        Assert.True(da.Drops("fragmentation-needed") >= 1);

        // A live trace of such a packet shows the drop in the action stage. Each ping goes to a new
        // address: once the kernel knows an address's path MTU it refuses the big ping itself.
        var live = Task.Run(() => da.Send(HttpMethod.Post, "/v1/trace/live", new { filter = "icmp,nw_src=10.51.0.2", count = 1, timeoutSeconds = 30 }));
        for (int i = 60; i < 90 && !live.IsCompleted; i++)
            a1.TryExec(Timeout, "ping", "-c", "1", "-M", "do", "-s", "1472", "-W", "1", $"10.52.0.{i}");
        var traced = live.Result;
        Assert.Equal(200, traced.Status);
        var trace = traced.Body!["packets"]!.AsArray().Single()!;
        Assert.Equal("fragmentation-needed", (string?)trace["dropReason"]);
        Assert.Contains(trace["steps"]!.AsArray(), x => (string)x!["stage"]! == "actions" && (string)x["detail"]! == "drop (fragmentation-needed)");
    }

    [RootFact]
    public void Garbage_on_udp_4789_is_counted_and_dropped_and_forwarding_continues()
    {
        using var u = new Underlay("10.205.0");
        var ha = u.AddHost(1);
        var hb = u.AddHost(2);
        var hx = u.AddHost(3); // an unknown VTEP
        var a1 = u.AddContainer();
        var b1 = u.AddContainer();
        string s = Names.Random("");
        using var da = Vswitchd.StartInNetns(ha.Name, L2Config("10.205.0.1", ["10.205.0.2"], ("ga" + s, a1, "10.42.0.11")));
        using var db = Vswitchd.StartInNetns(hb.Name, L2Config("10.205.0.2", ["10.205.0.1"], ("gb" + s, b1, "10.42.0.21")));
        Ping(a1, "10.42.0.21");
        string frame = "ff ff ff ff ff ff 02 00 00 00 00 99 88 b5" + string.Concat(Enumerable.Repeat(" 00", 46));
        string script = $$"""
            import socket
            inner = bytes.fromhex("{{frame}}")
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            a = ("10.205.0.1", 4789)
            s.sendto(b"\x08\x00", a)                                        # shorter than a VXLAN header
            s.sendto(b"\x00\x00\x00\x00\x00\x00\x2a\x00" + inner, a)        # I flag clear
            s.sendto(b"\x08\x00\x00\x00\x00\x03\x09\x00" + inner, a)        # VNI 777 nobody has
            """;
        string path = Path.Combine(da.Dir, "garbage.py");
        File.WriteAllText(path, script);
        var r = hb.TryExec(Timeout, "python3", path);
        Assert.True(r.ExitCode == 0, r.Output);
        r = hx.TryExec(Timeout, "python3", "-c",
            $"import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.sendto(b'\\x08\\x00\\x00\\x00\\x00\\x00\\x2a\\x00'+bytes.fromhex('{frame}'), ('10.205.0.1', 4789))");
        Assert.True(r.ExitCode == 0, r.Output);
        Wait.Until(() => da.Drops("truncated-tunnel-header") + da.Drops("bad-tunnel-header") >= 2 && da.Drops("unknown-vni") >= 1 && da.Drops("unknown-vtep") >= 1,
            TimeSpan.FromSeconds(10), "garbage counted: " + da.Get("/v1/stats")["drops"]);
        Assert.False(da.HasExited);
        Ping(a1, "10.42.0.21");

        // Per stage: the tunnel's refusals are the classify stage's, and the stages add up to the total.
        var stats = da.Get("/v1/stats");
        var classify = stats["stages"]!.AsArray().Single(x => (string)x!["name"]! == "classify")!;
        var classifyDrops = classify["drops"]!.AsArray().ToDictionary(d => (string)d!["reason"]!, d => (long)d!["packets"]!);
        Assert.True(classifyDrops.GetValueOrDefault("unknown-vtep") >= 1, classify.ToJsonString());
        Assert.True(classifyDrops.GetValueOrDefault("unknown-vni") >= 1, classify.ToJsonString());
        foreach (var d in stats["drops"]!.AsArray())
        {
            string reason = (string)d!["reason"]!;
            long perStage = stats["stages"]!.AsArray().Sum(st => st!["drops"]!.AsArray().Where(x => (string)x!["reason"]! == reason).Sum(x => (long)x!["packets"]!));
            Assert.Equal((long)d["packets"]!, perStage);
        }
        var table = VsctlHarness.Vsctl("--socket", da.Socket, "stats");
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.Matches(@"(?m)^classify\s+unknown-vtep\s+\d+", table.Stdout);
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(table.Stdout, @"(?m)^total\s+\(all\)\s+\d+$"), table.Stdout);

        // A synthetic trace of a frame from the unknown VTEP says why it would be refused.
        string tunnel = (string)da.Get("/v1/overlay")["tunnelPort"]!;
        var t = da.Send(HttpMethod.Post, "/v1/trace",
            new { spec = $"in_port={tunnel},tun_id=42,tun_src=10.205.0.3,udp,dl_src=02:00:00:00:00:99,dl_dst=ff:ff:ff:ff:ff:ff,nw_dst=10.42.0.11" });
        Assert.Equal(200, t.Status);
        Assert.Equal("unknown-vtep", (string?)t.Body!["dropReason"]);
        Assert.Contains(t.Body!["steps"]!.AsArray(), x => (string)x!["stage"]! == "classify" && ((string)x["detail"]!).Contains("unknown-vtep"));
    }
}
