using System.Diagnostics;
using System.Text.Json.Nodes;

namespace VSwitch.Integration.Tests;

/// <summary>
/// Issue 16 as an attacker tries it: scapy frames sent from inside a container's namespace (MAC hijack,
/// gratuitous ARP for another's address, spoofed source IP, all-zero source MAC, VLAN tags, S-tags,
/// double tags) are dropped and counted per port and reason, while legitimate traffic, DHCP from
/// 0.0.0.0, IPv6 duplicate address detection from :: and 802.1p priority tags pass. What arrived
/// is read from tcpdump in the other namespaces.
/// </summary>
[Collection("netns")]
public class PortSecurityTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private static ProcessResult Vsctl(Vswitchd d, params string[] args) =>
        Proc.Run(TimeSpan.FromSeconds(60), Repo.Vsctl, ["--socket", d.Socket, .. args]);

    private static JsonNode Attach(Vswitchd d, TestNetns ns)
    {
        var r = Vsctl(d, "--json", "attach", ns.Name, "--network", "blue");
        Assert.True(r.ExitCode == 0, $"vsctl attach {ns.Name} failed: {r.Output}\n{d.Log}");
        return JsonNode.Parse(r.StdOut)!;
    }

    private static void Ping(TestNetns from, string to, int count = 2)
    {
        var r = from.TryExec(Timeout, "ping", "-c", count.ToString(), "-i", "0.2", "-W", "2", to);
        Assert.True(r.ExitCode == 0, $"ping {to} from {from.Name} failed: {r.Output}");
        Assert.Contains($"{count} received", r.StdOut);
    }

    /// <summary>Runs a scapy script in the namespace (Debian's python3-scapy: /usr/bin/python3).</summary>
    private static void Scapy(Vswitchd d, TestNetns ns, string body)
    {
        Assert.True(File.Exists("/usr/bin/python3"), "python3-scapy is installed by tools/test.sh");
        string script = "import logging\nlogging.getLogger('scapy').setLevel(logging.ERROR)\nfrom scapy.all import *\n" + body;
        string path = Path.Combine(d.Dir, Names.Random("frames-") + ".py");
        File.WriteAllText(path, script);
        var r = ns.TryExec(TimeSpan.FromSeconds(60), "/usr/bin/python3", path);
        Assert.True(r.ExitCode == 0, r.Output);
    }

    private static long SecurityDrops(Vswitchd d, string port, string reason) =>
        d.Port(port)["securityDrops"]?[reason] is JsonNode n ? (long)n : 0;

    [RootFact]
    public void Attached_containers_cannot_hijack_a_mac_spoof_addresses_or_send_from_a_zero_mac_and_legitimate_traffic_passes()
    {
        using var a = new TestNetns("vsps-");
        using var b = new TestNetns("vsps-");
        using var c = new TestNetns("vsps-");
        using var d = Vswitchd.Start(new JsonObject
        {
            ["networks"] = new JsonArray(new JsonObject { ["name"] = "blue", ["subnet"] = "10.71.0.0/24", ["gateway"] = "10.71.0.1" }),
        }.ToJsonString());
        var (ja, jb, jc) = (Attach(d, a), Attach(d, b), Attach(d, c));
        string macA = (string)ja["mac"]!, macB = (string)jb["mac"]!, macC = (string)jc["mac"]!;
        string ipA = (string)ja["ip"]!, ipB = (string)jb["ip"]!, ipC = (string)jc["ip"]!;
        string portA = (string)ja["port"]!, portB = (string)jb["port"]!;
        Assert.True((bool)ja["portSecurity"]! && (bool)ja["pinMac"]!, ja.ToJsonString());
        Assert.True((bool)d.Port(portA)["portSecurity"]!);

        // C knows B (neighbour entry with B's MAC), and the switch learned everyone's MAC.
        Ping(c, ipB);
        Ping(a, ipC);
        using (var cap = Capture.Start(c, "eth0", d.Dir))
        {
            Scapy(d, a, $$"""
                a, b, c, bc = "{{macA}}", "{{macB}}", "{{macC}}", "ff:ff:ff:ff:ff:ff"
                frames = [
                    Ether(src=b, dst=c) / IP(src="{{ipB}}", dst="{{ipC}}") / UDP(sport=5000, dport=7001) / Raw(b"hijack"),
                    Ether(src=a, dst=bc) / ARP(op=2, hwsrc=a, psrc="{{ipB}}", hwdst=bc, pdst="{{ipB}}"),
                    Ether(src=a, dst=c) / IP(src="10.71.0.200", dst="{{ipC}}") / UDP(sport=5000, dport=7003) / Raw(b"spoofed"),
                    Ether(src="00:00:00:00:00:00", dst=c) / IP(src="{{ipA}}", dst="{{ipC}}") / UDP(sport=5000, dport=7004) / Raw(b"zero"),
                    Ether(src=a, dst=bc) / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67) / Raw(b"d" * 240),
                    Ether(src=a, dst="33:33:ff:00:00:99") / IPv6(src="::", dst="ff02::1:ff00:99") / ICMPv6ND_NS(tgt="fe80::99"),
                    Ether(src=a, dst=c) / IP(src="{{ipA}}", dst="{{ipC}}") / UDP(sport=5000, dport=7007) / Raw(b"legit"),
                ]
                for f in frames:
                    sendp(f, iface="eth0", verbose=False)
                """);
            // The legitimate frame went last through the same TAP and thread: once it is there, the others were decided.
            cap.WaitFor(t => t.Contains(".7007:") && t.Contains(".67:") && t.Contains("who has fe80::99"), "the legitimate, DHCP and DAD frames at C");
            string seen = cap.Text();
            Assert.DoesNotContain(".7001:", seen);
            Assert.DoesNotContain(".7003:", seen);
            Assert.DoesNotContain(".7004:", seen);
            Assert.DoesNotContain($"Reply {ipB} is-at {macA.ToLowerInvariant()}", seen);
        }
        Assert.Equal(1, SecurityDrops(d, portA, "port-security-mac"));
        Assert.Equal(1, SecurityDrops(d, portA, "port-security-arp"));
        Assert.Equal(1, SecurityDrops(d, portA, "port-security-ip"));
        Assert.Equal(1, SecurityDrops(d, portA, "invalid-source-mac"));

        // B's MAC stayed on B's port, no zero MAC was learned, C's neighbour entry for B is still B's MAC.
        var fdb = d.Get("/v1/fdb?network=blue").AsArray();
        Assert.Equal(portB, (string)fdb.Single(e => string.Equals((string)e!["mac"]!, macB, StringComparison.OrdinalIgnoreCase))!["port"]!);
        Assert.DoesNotContain(fdb, e => (string)e!["mac"]! == "00:00:00:00:00:00");
        Assert.True(PortTestHelpers.NeighbourHasMac(c, ipB, VSwitch.Core.Wire.MacAddress.Parse(macB)), Proc.Run("ip", "-n", c.Name, "neigh").StdOut);
        Ping(c, ipB, count: 10);

        // Seen by an operator: the port table and its drop line, and Prometheus.
        var ls = Vsctl(d, "port", "ls");
        Assert.Contains("on,pin", ls.StdOut);
        Assert.Contains($"{portA}: invalid-source-mac 1, port-security-arp 1, port-security-ip 1, port-security-mac 1", ls.StdOut);
        string metrics = d.Http.GetStringAsync("/metrics").Result;
        Assert.Contains($"vswitch_port_drops_total{{port=\"{portA}\",reason=\"port-security-mac\"}} 1", metrics);

        // Turned off, A may send as anyone again (the attacker's frame now reaches C): the switch checked, not the kernel.
        Assert.Equal(0, Vsctl(d, "port", "set", portA, "--port-security", "off").ExitCode);
        Assert.False((bool)d.Port(portA)["portSecurity"]!);
        using (var cap = Capture.Start(c, "eth0", d.Dir))
        {
            Scapy(d, a, $$"""sendp(Ether(src="{{macA}}", dst="{{macC}}") / IP(src="10.71.0.200", dst="{{ipC}}") / UDP(sport=5000, dport=7013), iface="eth0", verbose=False)""");
            cap.WaitFor(t => t.Contains(".7013:"), "the spoofed frame at C with port security off");
        }
    }

    [RootFact]
    public void Cni_containers_have_port_security_unless_the_netconf_turns_it_off_and_vsctl_attach_can_too()
    {
        using var a = new TestNetns("vsps-");
        using var b = new TestNetns("vsps-");
        using var c = new TestNetns("vsps-");
        using var d = Vswitchd.Start(new JsonObject
        {
            ["networks"] = new JsonArray(new JsonObject { ["name"] = "blue", ["subnet"] = "10.75.0.0/24", ["gateway"] = "10.75.0.1" }),
        }.ToJsonString());
        var conf = new JsonObject { ["cniVersion"] = "1.0.0", ["name"] = "vsnet", ["type"] = "vswitch-cni", ["network"] = "blue", ["socket"] = d.Socket };
        var on = CniPlugin.Run("ADD", conf.ToJsonString(), "ctr" + Names.Random(""), a.Path);
        Assert.True(on.ExitCode == 0, on.ToString());
        conf["portSecurity"] = false;
        var off = CniPlugin.Run("ADD", conf.ToJsonString(), "ctr" + Names.Random(""), b.Path);
        Assert.True(off.ExitCode == 0, off.ToString());
        conf["portSecurity"] = "no";
        var bad = CniPlugin.Run("ADD", conf.ToJsonString(), "ctr" + Names.Random(""), c.Path);
        Assert.True(bad.ErrorCode == 7, bad.ToString());
        Assert.Contains("portSecurity", bad.StdOut);

        var atts = d.Get("/v1/attachments").AsArray();
        Assert.Equal(2, atts.Count);
        var byNetns = atts.ToDictionary(x => (string)x!["netns"]!, x => x!);
        Assert.True((bool)byNetns[a.Path]["portSecurity"]!);
        Assert.True((bool)d.Port((string)byNetns[a.Path]["port"]!)["portSecurity"]!);
        Assert.False((bool)byNetns[b.Path]["portSecurity"]!);
        Assert.False((bool)d.Port((string)byNetns[b.Path]["port"]!)["portSecurity"]!);

        var r = Vsctl(d, "--json", "attach", c.Name, "--network", "blue", "--port-security", "off", "--pin-mac", "off");
        Assert.True(r.ExitCode == 0, r.Output);
        var port = d.Port((string)JsonNode.Parse(r.StdOut)!["port"]!);
        Assert.False((bool)port["portSecurity"]!);
        Assert.False((bool)port["pinMac"]!);
        Assert.Equal(2, Vsctl(d, "attach", c.Name, "--network", "blue", "--port-security", "maybe").ExitCode);
    }

    [RootFact]
    public void A_pinned_mac_does_not_move_to_a_port_without_port_security_and_moves_are_counted_and_logged()
    {
        using var a = new TestNetns("vsps-");
        using var b = new TestNetns("vsps-");
        using var c = new TestNetns("vsps-");
        string s = Names.Random("");
        using var d = Vswitchd.Start(new JsonObject { ["networks"] = new JsonArray(new JsonObject { ["name"] = "blue" }) }.ToJsonString());
        // a: a plain port (no security, as the config default); b: pinned MAC; c: plain.
        foreach (var (name, ns, n, more) in new[] { ("vpa" + s, a, 2, Array.Empty<string>()), ("vpb" + s, b, 3, ["--pin-mac", "on"]), ("vpc" + s, c, 4, []) })
        {
            var r = Vsctl(d, ["port", "add", name, "--network", "blue", "--type", "tap", "--netns", ns.Name, "--ip", $"10.73.0.{n}/24", "--mac", $"02:00:00:73:00:0{n}", .. more]);
            Assert.True(r.ExitCode == 0, r.Output);
        }
        Assert.False((bool)d.Port("vpa" + s)["portSecurity"]!);
        Assert.True((bool)d.Port("vpb" + s)["pinMac"]!);
        Ping(c, "10.73.0.3");
        Ping(a, "10.73.0.4");
        Scapy(d, a, $$"""
            sendp(Ether(src="02:00:00:73:00:03", dst="02:00:00:73:00:04") / IP(src="10.73.0.3", dst="10.73.0.4") / UDP(dport=7101), iface="vpa{{s}}", verbose=False)
            sendp(Ether(src="02:00:00:73:00:04", dst="02:00:00:73:00:03") / IP(src="10.73.0.4", dst="10.73.0.3") / UDP(dport=7102), iface="vpa{{s}}", verbose=False)
            """);
        Wait.Until(() => SecurityDrops(d, "vpa" + s, "mac-move-refused") == 1 && (long?)d.Port("vpa" + s)["macMoves"] == 1, Timeout,
            "the pinned MAC's move refused and c's MAC move counted on port a");
        var fdb = d.Get("/v1/fdb?network=blue").AsArray();
        Assert.Equal("vpb" + s, (string)fdb.Single(e => (string)e!["mac"]! == "02:00:00:73:00:03")!["port"]!);
        Wait.Until(() => d.Log.Contains($"MAC move: 02:00:00:73:00:04 on network blue vlan 0 moved from port vpc{s} to port vpa{s}"), Timeout, "the MAC move in the log");
        Assert.Contains("vswitch_mac_moves_total{network=\"blue\",port=\"vpa" + s + "\"} 1", d.Http.GetStringAsync("/metrics").Result);
        Ping(c, "10.73.0.3", count: 5);
    }

    [RootFact]
    public void Ports_are_access_ports_unless_asked_and_drop_tagged_s_tagged_and_double_tagged_frames_but_strip_a_priority_tag()
    {
        using var a = new TestNetns("vsps-");
        using var b = new TestNetns("vsps-");
        using var v = new TestNetns("vsps-");
        using var t = new TestNetns("vsps-");
        string s = Names.Random("");
        using var d = Vswitchd.Start(new JsonObject { ["networks"] = new JsonArray(new JsonObject { ["name"] = "blue" }) }.ToJsonString());
        string pa = "vpa" + s, pb = "vpb" + s, pv = "vpv" + s, pt = "vpt" + s;
        foreach (var (name, ns, more) in new[] { (pa, a, Array.Empty<string>()), (pb, b, []), (pv, v, ["--vlan", "20"]), (pt, t, ["--trunks", "10,20,4094"]) })
        {
            var r = Vsctl(d, ["port", "add", name, "--network", "blue", "--type", "tap", "--netns", ns.Name, .. more]);
            Assert.True(r.ExitCode == 0, r.Output);
            ns.Exec("ip", "link", "set", name, "up");
        }
        // No --trunks: an access port of the network's VLAN, whatever System.CommandLine gives for an absent list.
        Assert.Equal("access", (string)d.Port(pa)["vlanMode"]!);
        Assert.Equal(0, (int)d.Port(pa)["vlan"]!);
        Assert.Equal("access", (string)d.Port(pv)["vlanMode"]!);
        Assert.Equal("trunk", (string)d.Port(pt)["vlanMode"]!);
        Assert.Equal("[10,20,4094]", d.Port(pt)["trunks"]!.ToJsonString());
        // Through the API, trunks without "vlanMode": "trunk" are refused rather than silently made an access port or a trunk.
        var (status, body) = d.Send(HttpMethod.Post, "/v1/ports", new JsonObject { ["name"] = "vpx" + s, ["network"] = "blue", ["trunks"] = new JsonArray(10) }.ToJsonString());
        Assert.Equal(400, status);
        Assert.Contains("trunks", body!.ToJsonString());
        Assert.False(Directory.Exists("/sys/class/net/vpx" + s));

        using var capB = Capture.Start(b, pb, d.Dir);
        using var capV = Capture.Start(v, pv, d.Dir);
        using var capT = Capture.Start(t, pt, d.Dir);
        Scapy(d, a, $$"""
            e = Ether(src="02:00:00:74:00:01", dst="ff:ff:ff:ff:ff:ff")
            ip = IP(src="10.74.0.1", dst="10.74.0.255")
            frames = [
                e / Dot1Q(vlan=10) / ip / UDP(dport=7010),
                e / Dot1Q(vlan=20) / ip / UDP(dport=7020),
                e / Dot1Q(vlan=4094) / ip / UDP(dport=7094),
                Ether(src="02:00:00:74:00:01", dst="ff:ff:ff:ff:ff:ff", type=0x88a8) / Dot1Q(vlan=10) / Dot1Q(vlan=20) / ip / UDP(dport=7100),
                e / Dot1Q(vlan=0) / Dot1Q(vlan=10) / ip / UDP(dport=7200),
                e / Dot1Q(vlan=0, prio=5) / ip / UDP(dport=7300),
            ]
            for f in frames:
                sendp(f, iface="{{pa}}", verbose=False)
            """);
        Scapy(d, t, $$"""
            e = Ether(src="02:00:00:74:00:04", dst="ff:ff:ff:ff:ff:ff")
            ip = IP(src="10.74.0.4", dst="10.74.0.255")
            sendp(Ether(src="02:00:00:74:00:04", dst="ff:ff:ff:ff:ff:ff", type=0x88a8) / Dot1Q(vlan=20) / Dot1Q(vlan=30) / ip / UDP(dport=7400), iface="{{pt}}", verbose=False)
            sendp(e / Dot1Q(vlan=20) / Dot1Q(vlan=30) / ip / UDP(dport=7401), iface="{{pt}}", verbose=False)
            sendp(e / Dot1Q(vlan=20) / ip / UDP(dport=7500), iface="{{pt}}", verbose=False)
            """);
        capB.WaitFor(x => x.Contains(".7300:"), "the priority-tagged frame at b");
        capT.WaitFor(x => x.Contains(".7300:"), "the priority-tagged frame at the trunk (native VLAN, untagged)");
        capV.WaitFor(x => x.Contains(".7500:"), "VLAN 20 from the trunk at the VLAN-20 access port");
        foreach (var (cap, where) in new[] { (capB, "b"), (capV, "the VLAN-20 port"), (capT, "the trunk") })
        {
            string seen = cap.Text();
            foreach (var port in new[] { ".7010:", ".7020:", ".7094:", ".7100:", ".7200:", ".7400:", ".7401:" })
                Assert.False(seen.Contains(port), $"{port} reached {where}:\n{seen}");
            // Whatever reached them did so without a tag: no VLAN leaks out of an access port's frame.
            if (cap != capT) Assert.DoesNotContain("802.1Q", seen);
        }
        Assert.DoesNotContain("802.1Q", capT.Lines().Single(l => l.Contains(".7300:")));
        Assert.Equal(5, SecurityDrops(d, pa, "tagged-on-access-port"));
        Assert.Equal(2, SecurityDrops(d, pt, "qinq-unsupported"));
        Assert.True(d.Drops("tagged-on-access-port") >= 5);
    }

    /// <summary>tcpdump in a namespace, writing a pcap; read back as text with link-level headers.</summary>
    private sealed class Capture : IDisposable
    {
        private readonly Process _p;
        private readonly string _file;

        private Capture(Process p, string file) { _p = p; _file = file; }

        public static Capture Start(TestNetns ns, string dev, string dir)
        {
            string file = Path.Combine(dir, Names.Random("cap-") + ".pcap");
            // -Z root: tcpdump would otherwise drop to its own user; --immediate-mode: packets as they come.
            // -Q in: what the switch delivered to the namespace, not what the namespace itself sent.
            var p = ns.Start("tcpdump", "-Z", "root", "--immediate-mode", "-Q", "in", "-i", dev, "-U", "-w", file);
            var cap = new Capture(p, file);
            try { Wait.Until(() => File.Exists(file) || p.HasExited, TimeSpan.FromSeconds(10), $"tcpdump on {dev} to start"); }
            catch { cap.Dispose(); throw; }
            if (p.HasExited) throw new InvalidOperationException("tcpdump exited: " + p.StandardError.ReadToEnd());
            return cap;
        }

        public string Text() => Proc.Run(TimeSpan.FromSeconds(30), "tcpdump", "-r", _file, "-n", "-e").StdOut;

        public string[] Lines() => Text().Split('\n');

        public void WaitFor(Func<string, bool> seen, string what)
        {
            try { Wait.Until(() => seen(Text()), Timeout, what); }
            catch (TimeoutException e) { throw new TimeoutException(e.Message + "; captured:\n" + Text(), e); }
        }

        public void Dispose()
        {
            Proc.Run("kill", "-INT", _p.Id.ToString());
            _p.WaitForExit(5000);
            Proc.KillQuietly(_p);
        }
    }
}
