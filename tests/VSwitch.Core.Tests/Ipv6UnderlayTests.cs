using System.Net;
using System.Net.Sockets;
using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Tables.Rules;
using VSwitch.Core.Wire;
using VSwitch.Overlay;
using VSwitch.Overlay.Wire;

namespace VSwitch.Core.Tests;

/// <summary>
/// VXLAN over an IPv6 underlay without root: the remote VTEP handle (<see cref="VtepRemote"/>) and an endpoint on ::1
/// that sends to itself, so encapsulation, the AF_INET6 sockets (the kernel writes and checks the outer IPv6 and UDP
/// headers, checksum included) and decapsulation run for real.
/// </summary>
public class Ipv6UnderlayTests
{
    private static readonly IPAddress Loopback6 = IPAddress.IPv6Loopback;

    private static ushort FreeUdp6Port()
    {
        using var probe = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
        probe.Bind(new IPEndPoint(Loopback6, 0));
        return (ushort)((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    [Fact]
    public void An_ipv4_remote_is_its_address_and_an_ipv6_remote_a_handle_in_0_0_0_0_8_named_by_its_address()
    {
        uint v4 = VtepRemote.FromAddress(IPAddress.Parse("192.168.50.2"));
        Assert.Equal(0xC0A83202u, v4);
        Assert.False(VtepRemote.IsIPv6(v4));
        Assert.False(VtepRemote.IsIPv6(0));

        uint h = VtepRemote.FromAddress(IPAddress.Parse("fd00:99:77::2"));
        Assert.True(VtepRemote.IsIPv6(h));
        Assert.True(h >> 24 == 0, $"handle {h:x} is outside 0.0.0.0/8");
        Assert.Equal(h, VtepRemote.FromAddress(IPAddress.Parse("fd00:99:77:0::2"))); // the same address, the same handle
        Assert.NotEqual(h, VtepRemote.FromAddress(IPAddress.Parse("fd00:99:77::3")));
        Assert.Equal("fd00:99:77::2", VtepRemote.Format(h));
        Assert.Equal("192.168.50.2", VtepRemote.Format(v4));
        Assert.Equal(IPAddress.Parse("fd00:99:77::2"), VtepRemote.ToAddress(h));

        // What an engineer reads: flow keys, tunnel actions, rules.
        var key = new FlowKey { TunId = 42, TunRemote = h };
        Assert.Contains("tun_src=fd00:99:77::2", FlowKeyFormat.Format(key));
        Assert.Contains("remote=fd00:99:77::2", FlowAction.Tunnel(3, 42, h).Format());
        var m = RuleParser.ParseMatch("tun_src=fd00:99:77::2", _ => 1).Match;
        Assert.Equal(h, m.Value.TunRemote);
        Assert.Equal(uint.MaxValue, m.Mask.TunRemote);
        Assert.Contains("tun_src=fd00:99:77::2", m.Format());
        var bad = Assert.Throws<RuleSyntaxException>(() => RuleParser.ParseMatch("tun_src=fd00::zz", _ => 1));
        Assert.Contains("fd00::zz", bad.Message);

        // Never a VTEP: 0.0.0.0/8 (where the handles live), multicast, v4-mapped.
        Assert.Contains("0.0.0.0/8", Assert.Throws<ArgumentException>(() => VtepRemote.FromAddress(IPAddress.Parse("0.0.0.5"))).Message);
        Assert.Throws<ArgumentException>(() => VtepRemote.FromAddress(IPAddress.Parse("ff02::1")));
        Assert.Throws<ArgumentException>(() => VtepRemote.FromAddress(IPAddress.Parse("::ffff:10.0.0.1")));
    }

    [Fact]
    public void The_table_of_ipv6_remotes_is_bounded_and_counts_what_it_refused()
    {
        var t = new VtepRemoteTable(2);
        Assert.True(t.TryIntern(1, out uint a));
        Assert.True(t.TryIntern(2, out uint b));
        Assert.True(t.TryIntern(1, out uint again));
        Assert.Equal(a, again);
        Assert.False(t.TryIntern(3, out uint none));
        Assert.Equal(0u, none);
        Assert.Equal(1, t.Refused);
        Assert.Equal((UInt128)2, t.Address6(b));
        Assert.Equal(UInt128.Zero, t.Address6(3));
        Assert.Equal(UInt128.Zero, t.Address6(0));
        Assert.Equal("vtep-table-full", DropReason.VtepTableFull.Name());
        Assert.Throws<ArgumentOutOfRangeException>(() => new VtepRemoteTable(VtepRemote.Capacity + 1));
    }

    [Fact]
    public void Encapsulated_over_ipv6_and_decapsulated_with_the_sources_handle_and_a_bad_header_is_a_counted_drop()
    {
        ushort udp = FreeUdp6Port();
        using var port = VxlanPort.Open("vx6", Loopback6, udp);
        Assert.True(port.IsIPv6);
        Assert.Equal(70, port.Overhead);
        uint self = VtepRemote.FromAddress(Loopback6);
        var pool = new PacketPool(64);
        var frame = TestFrames.Eth(TestFrames.Mac(2), TestFrames.Mac(1), payload: 300);

        // Out: the VXLAN header into the headroom, to [::1]:udp (the endpoint itself).
        var tx = new PacketBatch(8);
        for (int i = 0; i < 3; i++)
        {
            var p = pool.TryRent()!;
            p.CopyFrom(frame);
            p.TunnelRemote = self;
            p.TunnelId = 4242;
            tx.Add(p);
        }
        Assert.Equal(3, port.Transmit(tx));

        // In: the frame again, with the VNI and the source's handle.
        var rx = new PacketBatch(8);
        WaitFor(() => { port.Receive(rx, pool); return rx.Count >= 3; }, "3 frames back over ::1");
        for (int i = 0; i < rx.Count; i++)
        {
            Assert.Equal(DropReason.None, rx[i].Drop);
            Assert.Equal(4242u, rx[i].TunnelId);
            Assert.Equal(self, rx[i].TunnelRemote);
            Assert.True(rx[i].Data.SequenceEqual(frame));
        }
        rx.ReleaseAll();
        Assert.Equal(3, port.Vteps()[self].RxPackets);
        Assert.Equal(3, port.Vteps()[self].TxPackets);

        // Bad input from an IPv6 peer: a datagram shorter than the VXLAN header, and one without the I flag.
        using (var peer = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp))
        {
            var to = new IPEndPoint(Loopback6, udp);
            peer.SendTo(new byte[] { 0x08, 0, 0, 0, 0 }, to);
            var noFlag = new byte[8 + 60];
            VxlanHeader.Write(noFlag, 7);
            noFlag[0] = 0;
            peer.SendTo(noFlag, to);
        }
        WaitFor(() => { port.Receive(rx, pool); return rx.Count >= 2; }, "2 bad datagrams");
        Assert.Equal(DropReason.TruncatedTunnelHeader, rx[0].Drop);
        Assert.Equal(DropReason.BadTunnelHeader, rx[1].Drop);
        Assert.Equal(self, rx[0].TunnelRemote);
        Assert.Equal(2, port.RxBadHeader);
        rx.ReleaseAll();
        Assert.Equal(0, pool.InUse);
    }

    [Fact]
    public void An_ipv6_source_is_dropped_as_unknown_vtep_unless_learned_and_as_vtep_table_full_when_the_table_is_full()
    {
        ushort udp = FreeUdp6Port();
        // A table of its own, of one address: the process's shared one is not filled by a test.
        var table = new VtepRemoteTable(1);
        using var port = VxlanPort.Open("vx6u", Loopback6, udp, table);
        var pool = new PacketPool(16);
        var rx = new PacketBatch(8);
        var datagram = new byte[8 + 60];
        VxlanHeader.Write(datagram, 9);
        using var peer = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
        var to = new IPEndPoint(Loopback6, udp);
        DropReason Next()
        {
            peer.SendTo(datagram, to);
            WaitFor(() => { port.Receive(rx, pool); return rx.Count >= 1; }, "a datagram from ::1");
            var d = rx[0].Drop;
            rx.ReleaseAll();
            return d;
        }

        // ::1 is no configured VTEP, and no network learns unknown ones: dropped, and no room taken.
        Assert.Equal(DropReason.UnknownVtep, Next());
        Assert.Equal(0, table.Count);

        // Learning unknown VTEPs, but the table is full (another address holds its one place): dropped, counted.
        Assert.True(table.TryIntern(UInt128.Parse("12345"), out _));
        port.LearnsUnknownVteps = true;
        Assert.Equal(DropReason.VtepTableFull, Next());
        Assert.Equal(1, table.Refused);
        Assert.Contains(port.Diagnostics(), kv => kv.Key == "rx-vtep-table-full" && kv.Value == 1);

        // With room, ::1 gets a handle and its frame goes on.
        var roomy = new VtepRemoteTable(4);
        ushort udp2 = FreeUdp6Port();
        using var port2 = VxlanPort.Open("vx6v", Loopback6, udp2, roomy);
        port2.LearnsUnknownVteps = true;
        peer.SendTo(datagram, new IPEndPoint(Loopback6, udp2));
        WaitFor(() => { port2.Receive(rx, pool); return rx.Count >= 1; }, "a datagram once unknown VTEPs are learned");
        Assert.Equal(DropReason.None, rx[0].Drop);
        Assert.True(roomy.TryGet(AddressFormat.ToKey(Loopback6), out uint h));
        Assert.Equal(h, rx[0].TunnelRemote);
        rx.ReleaseAll();
        Assert.Equal(0, pool.InUse);
    }

    [Fact]
    public void An_ipv4_remote_from_an_ipv6_endpoint_is_a_counted_transmit_drop()
    {
        // The endpoint's sockets are of its family: an IPv4 remote cannot be reached from them, and the send is a counted drop.
        using var port = VxlanPort.Open("vx6m", Loopback6, FreeUdp6Port());
        var pool = new PacketPool(8);
        var tx = new PacketBatch(2);
        var p = pool.TryRent()!;
        p.CopyFrom(TestFrames.Eth(TestFrames.Mac(2), TestFrames.Mac(1)));
        p.TunnelRemote = 0x7F000001;
        p.TunnelId = 1;
        tx.Add(p);
        Assert.Equal(0, port.Transmit(tx));
        Assert.Equal(1, port.TxDropped);
        Assert.Equal(0, pool.InUse);
    }

    internal static void WaitFor(Func<bool> done, string what)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (!done())
        {
            if (DateTime.UtcNow > until) throw new TimeoutException("timed out waiting for " + what);
            Thread.Sleep(5);
        }
    }
}

/// <summary>The configuration of an IPv6 underlay: one family per endpoint, errors that name the bad value, the MTU it leaves.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class Ipv6UnderlayConfigTests
{
    private static List<string> Errors(string local, params string[] vteps) => new VSwitchd.Config.VSwitchConfig
    {
        Overlay = new VSwitchd.Config.OverlayConfig { Local = local },
        Networks = [new VSwitchd.Config.NetworkConfig { Name = "ov", Vni = 42, Vteps = [.. vteps] }],
    }.Validate().ToList();

    [Fact]
    public void Ipv6_vteps_on_an_ipv6_endpoint_are_valid_and_a_mix_of_families_is_refused_naming_both()
    {
        Assert.Empty(Errors("fd00:99::1", "fd00:99::2", "fd00:99::3"));
        Assert.Empty(Errors("192.168.50.1", "192.168.50.2"));

        var mixed = Assert.Single(Errors("fd00:99::1", "192.168.50.2"));
        Assert.Contains("networks[0].vteps[0]", mixed);
        Assert.Contains("'192.168.50.2' is IPv4", mixed);
        Assert.Contains("'fd00:99::1' is IPv6", mixed);
        Assert.Contains("'fd00:99::2' is IPv6", Assert.Single(Errors("192.168.50.1", "fd00:99::2")));

        Assert.Contains("overlay.local: 'fe80::1'", Assert.Single(Errors("fe80::1")));
        Assert.Contains("overlay.local: 'nonsense'", Assert.Single(Errors("nonsense")));
        Assert.Contains("'ff02::1'", Assert.Single(Errors("fd00:99::1", "ff02::1")));
        Assert.Contains("'0.1.2.3' is in 0.0.0.0/8", Assert.Single(Errors("192.168.50.1", "0.1.2.3")));
    }

    [Fact]
    public void A_vxlan_network_over_ipv6_defaults_to_mtu_1430_and_over_ipv4_to_1450()
    {
        var n = new VSwitchd.Config.NetworkConfig { Name = "ov", Vni = 42 };
        Assert.Equal(1430, VSwitchd.Runtime.SwitchRuntime.NetworkMtu(n, ipv6Underlay: true));
        Assert.Equal(1450, VSwitchd.Runtime.SwitchRuntime.NetworkMtu(n, ipv6Underlay: false));
        Assert.Equal(1500, VSwitchd.Runtime.SwitchRuntime.NetworkMtu(new VSwitchd.Config.NetworkConfig { Name = "plain" }, ipv6Underlay: true));
        Assert.True(VSwitchd.Config.OverlayConfig.IsIPv6(new VSwitchd.Config.OverlayConfig { Local = "fd00:99::1" }));
        Assert.Equal(1452, VxlanHeader.MaxDatagram(ipv6: true));
        Assert.Equal(1472, VxlanHeader.MaxDatagram(ipv6: false));
    }
}
