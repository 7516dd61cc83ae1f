using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Ports;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Tests;

/// <summary>The port-security stage, VLAN ingress of access and trunk ports, pinned MACs and MAC moves, through MemoryPorts.</summary>
public class PortSecurityTests
{
    private sealed class Rig
    {
        public readonly Datapath Dp = new();
        public readonly PacketPool Pool = new(1024);
        public readonly DatapathContext Ctx;
        public readonly Dictionary<string, (MemoryPort Io, SwitchPort Port)> Ports = [];
        public long Now = 1000;

        public Rig() => Ctx = Dp.CreateContext(Pool);

        public MemoryPort Add(string name, string net = "n1", VlanMode mode = VlanMode.Access, ushort? vlan = null, ushort[]? trunks = null)
        {
            if (Dp.Topology.NetworkByName(net) is null) Dp.AddNetwork(net);
            var io = new MemoryPort(name);
            Ports[name] = (io, Dp.AddPort(io, net, mode, vlan, trunks));
            return io;
        }

        public void Secure(string name, ulong mac, uint ip, bool pin = false, UInt128? ip6 = null) =>
            Ports[name] = (Ports[name].Io, Dp.SetPortSecurity(name, new PortSecurity(mac, [ip], ip6 is { } a ? [a] : []), mac, pin));

        public void Send(string port, byte[] frame)
        {
            var (io, sp) = Ports[port];
            io.Inject(frame);
            var batch = new PacketBatch();
            io.Receive(batch, Pool);
            Datapath.CountReceive(batch, Ctx, sp.Id);
            Dp.ProcessBatch(batch, Ctx, Now);
        }

        public List<byte[]> Take(string port)
        {
            var l = Ports[port].Io.Sent.ToList();
            Ports[port].Io.Sent.Clear();
            return l;
        }

        public long Drops(DropReason r) => Dp.ReadDropCounters()[(int)r];

        public long PortDrops(string port, DropReason r) => Dp.ReadPortDrops(Ports[port].Port.Id)[r.PerPortSlot()];
    }

    private static readonly ulong MacA = TestFrames.Mac(0xA), MacB = TestFrames.Mac(0xB), MacC = TestFrames.Mac(0xC);
    private const uint IpA = 0x0A010002, IpB = 0x0A010003, IpC = 0x0A010004;

    internal static byte[] Udp(ulong dst, ulong src, uint ipSrc, uint ipDst, ushort sport = 1000, ushort dport = 2000) =>
        FrameBuilder.FromKey(new FlowKey { DlDst = dst, DlSrc = src, DlType = EtherTypes.IPv4, NwSrc = ipSrc, NwDst = ipDst, NwProto = IpProtocols.Udp, TpSrc = sport, TpDst = dport });

    internal static byte[] Arp(ulong src, ulong sha, uint spa, uint tpa, ushort op = 1, ulong dst = MacAddress.Broadcast) =>
        FrameBuilder.FromKey(new FlowKey { DlDst = dst, DlSrc = src, DlType = EtherTypes.Arp, NwProto = (byte)op, ArpSha = sha, NwSrc = spa, NwDst = tpa });

    /// <summary>An NS or NA with one link-layer address option.</summary>
    internal static byte[] Nd(byte type, ulong src, UInt128 ipSrc, UInt128 ipDst, UInt128 target, ulong optionMac)
    {
        var f = FrameBuilder.FromKey(new FlowKey { DlDst = 0x3333_0000_0001UL, DlSrc = src, DlType = EtherTypes.IPv6, NwSrc = ipSrc, NwDst = ipDst,
            NwProto = IpProtocols.IcmpV6, TpSrc = type, NwTtl = 255 }, payload: 24);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(f.AsSpan(54 + 8), target);
        f[54 + 24] = type == IcmpV6Header.NeighborSolicitation ? NeighborDiscovery.SourceLinkLayerOption : NeighborDiscovery.TargetLinkLayerOption;
        f[54 + 25] = 1;
        MacAddress.Write(f.AsSpan(54 + 26), optionMac);
        return f;
    }

    private static Rig Three(bool secureA = true, bool pin = false)
    {
        var r = new Rig();
        r.Add("a"); r.Add("b"); r.Add("c");
        if (secureA) r.Secure("a", MacA, IpA, pin);
        r.Secure("b", MacB, IpB, pin);
        // b and c are known: unicast to them is not flooded.
        r.Send("b", Udp(MacC, MacB, IpB, IpC));
        r.Send("c", Udp(MacB, MacC, IpC, IpB));
        r.Take("a"); r.Take("b"); r.Take("c");
        return r;
    }

    [Fact]
    public void Legitimate_traffic_passes_a_secured_port()
    {
        var r = Three();
        r.Send("a", Udp(MacB, MacA, IpA, IpB));
        Assert.Single(r.Take("b"));
        r.Send("a", Arp(MacA, MacA, IpA, IpB));
        Assert.Single(r.Take("b"));
        Assert.Equal(0, r.Pool.InUse);
    }

    [Fact]
    public void Mac_hijack_is_dropped_counted_and_does_not_move_the_mac()
    {
        var r = Three();
        r.Send("a", Udp(MacC, MacB, IpB, IpC));
        Assert.Empty(r.Take("c"));
        Assert.Equal(1, r.PortDrops("a", DropReason.PortSecurityMac));
        Assert.Equal(1, r.Drops(DropReason.PortSecurityMac));
        Assert.Equal(r.Ports["b"].Port.Id, r.Dp.MacTable.Lookup(1, 0, MacB, r.Now));
        r.Send("c", Udp(MacB, MacC, IpC, IpB));
        Assert.Single(r.Take("b"));
        Assert.Empty(r.Take("a"));
    }

    [Fact]
    public void Spoofed_source_ip_is_dropped_and_dhcp_from_0_0_0_0_passes()
    {
        var r = Three();
        r.Send("a", Udp(MacB, MacA, IpC, IpB));
        Assert.Empty(r.Take("b"));
        Assert.Equal(1, r.PortDrops("a", DropReason.PortSecurityIp));
        r.Send("a", Udp(MacAddress.Broadcast, MacA, 0, 0xFFFF_FFFF, 68, 67));
        Assert.Single(r.Take("b"));
        // 0.0.0.0 is only for DHCP: to another port it is a spoofed source.
        r.Send("a", Udp(MacB, MacA, 0, IpB));
        Assert.Equal(2, r.PortDrops("a", DropReason.PortSecurityIp));
    }

    [Fact]
    public void Arp_claiming_another_ip_or_mac_is_dropped_and_a_probe_passes()
    {
        var r = Three();
        r.Send("a", Arp(MacA, MacA, IpB, IpB)); // gratuitous ARP for B's address
        r.Send("a", Arp(MacA, MacB, IpA, IpC)); // sender MAC not the port's
        Assert.Empty(r.Take("c"));
        Assert.Equal(2, r.PortDrops("a", DropReason.PortSecurityArp));
        r.Send("a", Arp(MacA, MacA, 0, IpA)); // RFC 5227 probe
        Assert.Single(r.Take("c"));
    }

    [Fact]
    public void Neighbor_discovery_options_and_targets_must_be_the_ports()
    {
        var r = Three();
        r.Secure("a", MacA, IpA, ip6: (UInt128)0xFD00 << 112 | 2);
        UInt128 ll = PortSecurity.LinkLocal(MacA), mine = (UInt128)0xFD00 << 112 | 2, theirs = (UInt128)0xFD00 << 112 | 3;
        UInt128 solicited = (UInt128)0xFF02 << 112 | 1;
        r.Send("a", Nd(IcmpV6Header.NeighborSolicitation, MacA, ll, solicited, theirs, MacA));
        r.Send("a", Nd(IcmpV6Header.NeighborAdvertisement, MacA, mine, solicited, mine, MacA));
        r.Send("a", Nd(IcmpV6Header.NeighborSolicitation, MacA, UInt128.Zero, solicited, mine, MacA)); // DAD
        Assert.Equal(3, r.Take("c").Count);
        r.Send("a", Nd(IcmpV6Header.NeighborSolicitation, MacA, ll, solicited, theirs, MacB)); // another's link-layer address
        r.Send("a", Nd(IcmpV6Header.NeighborAdvertisement, MacA, mine, solicited, theirs, MacA)); // advertises another's address
        r.Send("a", Nd(IcmpV6Header.NeighborAdvertisement, MacA, mine, solicited, mine, MacB));
        Assert.Equal(3, r.PortDrops("a", DropReason.PortSecurityNd));
        r.Send("a", Nd(IcmpV6Header.NeighborAdvertisement, MacA, theirs, solicited, theirs, MacA)); // spoofed source
        Assert.Equal(1, r.PortDrops("a", DropReason.PortSecurityIp));
        Assert.Empty(r.Take("c"));
    }

    [Fact]
    public void Invalid_source_macs_are_dropped_on_every_port_and_never_learned()
    {
        var r = Three(secureA: false);
        r.Send("a", Udp(MacB, 0, IpA, IpB));
        r.Send("a", Udp(MacB, MacAddress.Broadcast, IpA, IpB));
        r.Send("a", Udp(MacB, 0x0100_5E00_0001UL, IpA, IpB));
        Assert.Empty(r.Take("b"));
        Assert.Equal(3, r.PortDrops("a", DropReason.InvalidSourceMac));
        Assert.Equal(-1, r.Dp.MacTable.Lookup(1, 0, 0, r.Now));
    }

    [Fact]
    public void A_pinned_mac_does_not_move_to_an_unsecured_port_and_other_moves_are_counted()
    {
        var r = Three(secureA: false, pin: true);
        r.Send("a", Udp(MacC, MacB, IpB, IpC));
        Assert.Empty(r.Take("c"));
        Assert.Equal(1, r.PortDrops("a", DropReason.MacMoveRefused));
        Assert.Equal(r.Ports["b"].Port.Id, r.Dp.MacTable.Lookup(1, 0, MacB, r.Now));
        // C is not pinned: its move to a is learned, counted and queued for the log.
        r.Send("a", Udp(MacB, MacC, IpC, IpB));
        Assert.Equal(r.Ports["a"].Port.Id, r.Dp.MacTable.Lookup(1, 0, MacC, r.Now));
        Assert.Equal(1, r.Dp.MacTable.Moves.ToPort(r.Ports["a"].Port.Id));
        var moves = r.Dp.MacTable.Moves.Drain(out long notQueued);
        Assert.Equal(0, notQueued);
        Assert.Equal(new[] { (MacC, r.Ports["c"].Port.Id, r.Ports["a"].Port.Id) }, moves.Select(m => (m.Mac, m.FromPort, m.ToPort)));
    }

    [Fact]
    public void A_storm_of_mac_moves_is_counted_whole_but_queues_at_most_the_limit_for_the_log()
    {
        var macs = new Tables.MacTable();
        macs.Learn(1, 0, MacA, 1, 0);
        int moves = Tables.MacMoves.QueueLimit + 44;
        for (int i = 0; i < moves; i++) Assert.Equal(Tables.LearnResult.Moved, macs.Learn(1, 0, MacA, i % 2 == 0 ? 2 : 1, i));
        Assert.Equal(moves, macs.Moves.ToPort(1) + macs.Moves.ToPort(2));
        var queued = macs.Moves.Drain(out long notQueued);
        Assert.Equal(Tables.MacMoves.QueueLimit, queued.Count);
        Assert.Equal(44, notQueued);
        Assert.Empty(macs.Moves.Drain(out notQueued));
        Assert.Equal(0, notQueued);
    }

    [Theory]
    [InlineData(10)]
    [InlineData(20)]
    [InlineData(4094)]
    public void An_access_port_drops_tagged_frames(ushort vid)
    {
        var r = new Rig();
        r.Add("a"); r.Add("v", vlan: vid); r.Add("t", mode: VlanMode.Trunk);
        r.Send("a", TestFrames.Eth(MacAddress.Broadcast, MacA, vlan: vid));
        Assert.Empty(r.Take("v"));
        Assert.Empty(r.Take("t"));
        Assert.Equal(1, r.PortDrops("a", DropReason.TaggedOnAccessPort));
    }

    /// <summary>Two tags: outer, inner (TPIDs given), then a payload.</summary>
    private static byte[] DoubleTagged(ushort outerTpid, ushort outerVid, ushort innerVid, ulong src)
    {
        var f = new byte[64];
        MacAddress.Write(f, MacAddress.Broadcast);
        MacAddress.Write(f.AsSpan(6), src);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), outerTpid);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(14), outerVid);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(16), EtherTypes.Vlan);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(18), innerVid);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(20), 0x88B5);
        return f;
    }

    [Fact]
    public void S_tags_and_double_tags_are_refused_on_access_and_trunk_ports_and_a_priority_tag_is_stripped()
    {
        var r = new Rig();
        r.Add("a"); r.Add("b"); r.Add("v10", vlan: 10); r.Add("t", mode: VlanMode.Trunk);
        r.Send("a", DoubleTagged(EtherTypes.QinQ, 10, 20, MacA));
        r.Send("a", DoubleTagged(EtherTypes.Vlan, 0, 10, MacA)); // VID 0 + VID 10
        Assert.Equal(2, r.PortDrops("a", DropReason.TaggedOnAccessPort));
        r.Send("t", DoubleTagged(EtherTypes.QinQ, 10, 20, MacC));
        r.Send("t", DoubleTagged(EtherTypes.Vlan, 10, 20, MacC));
        Assert.Equal(2, r.PortDrops("t", DropReason.QinqUnsupported));
        Assert.Empty(r.Take("b")); Assert.Empty(r.Take("v10")); Assert.Empty(r.Take("t")); Assert.Empty(r.Take("a"));
        // 802.1p: a lone VID-0 tag is untagged traffic with a priority; it leaves untagged.
        r.Send("a", TestFrames.Eth(MacAddress.Broadcast, MacA, vlan: 0, pcp: 5));
        var got = Assert.Single(r.Take("b"));
        Assert.Null(TestFrames.VlanOf(got));
        Assert.Empty(r.Take("v10"));
    }

    [Fact]
    public void Changing_a_ports_security_keeps_the_networks_connections()
    {
        // A regression: the snapshot published for new security settings left the connections out, so every
        // attachment (whose security is applied once it is addressed) isolated connected networks again.
        var r = new Rig();
        r.Dp.AddNetwork("n1", gateway: 0x0a010001, prefixLength: 24);
        r.Dp.AddNetwork("n2", gateway: 0x0a020001, prefixLength: 24);
        r.Add("a", "n1");
        Assert.True(r.Dp.ConnectNetworks("n1", "n2"));
        r.Secure("a", 0x020000000001, 0x0a010002);
        var t = r.Dp.Topology;
        Assert.True(t.Connections.Connected(t.NetworkByName("n1")!.Id, t.NetworkByName("n2")!.Id));
    }
}
