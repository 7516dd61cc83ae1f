using System.Buffers.Binary;
using System.Net;
using CsCheck;
using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Ports;
using VSwitch.Core.Tables;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Tests;

/// <summary>
/// The IPv6 router between two dual-stack networks, through MemoryPorts: neighbour discovery (NS/NA,
/// RS/RA), ping to the gateway, forwarding with hop limit and neighbour resolution, ICMPv6 errors,
/// and ND input that must be refused and counted.
/// </summary>
public class Router6Tests
{
    private static UInt128 Ip6(string s) => BinaryPrimitives.ReadUInt128BigEndian(IPAddress.Parse(s).GetAddressBytes());

    private static readonly UInt128 Gw1 = Ip6("fd00:1::1"), HostA = Ip6("fd00:1::2"), Gw2 = Ip6("fd00:2::1"), HostB = Ip6("fd00:2::2");
    private static readonly ulong MacA = TestFrames.Mac(0xA), MacB = TestFrames.Mac(0xB);
    // The hosts' own "interfaces", so that the router's frame writers can write the hosts' ND messages too.
    private static readonly RouterInterface IfA = new(0x0A010002, 24, MacA, HostA, 64), IfB = new(0x0A020002, 24, MacB, HostB, 64);

    private sealed class Rig
    {
        public readonly Datapath Dp = new();
        public readonly PacketPool Pool = new(1024);
        public readonly DatapathContext Ctx;
        public readonly MemoryPort A = new("a"), B = new("b");
        public readonly int IdA, IdB;
        public readonly RouterInterface R1, R2;
        public long Now = 1000;

        public Rig(int mtu2 = 1500, bool connected = true)
        {
            R1 = Dp.AddNetwork("n1", gateway: 0x0A010001, prefixLength: 24, gateway6: Gw1, prefixLength6: 64).Router!;
            R2 = Dp.AddNetwork("n2", gateway: 0x0A020001, prefixLength: 24, mtu: mtu2, gateway6: Gw2, prefixLength6: 64).Router!;
            if (connected) Assert.True(Dp.ConnectNetworks("n1", "n2"));
            IdA = Dp.AddPort(A, "n1").Id;
            IdB = Dp.AddPort(B, "n2").Id;
            Ctx = Dp.CreateContext(Pool);
        }

        public void Send(MemoryPort port, byte[] frame)
        {
            port.Inject(frame);
            var batch = new PacketBatch();
            port.Receive(batch, Pool);
            Datapath.CountReceive(batch, Ctx, port == A ? IdA : IdB);
            Dp.ProcessBatch(batch, Ctx, Now);
        }

        public List<byte[]> Take(MemoryPort port)
        {
            var l = port.Sent.ToList();
            port.Sent.Clear();
            return l;
        }

        public byte[] Write(Action<Packet> write)
        {
            var p = Pool.TryRent()!;
            write(p);
            var f = p.Data.ToArray();
            p.Release();
            return f;
        }

        public long Drops(DropReason reason) => Dp.ReadDropCounters()[(int)reason];
    }

    private static byte[] Ip(ulong src, ulong dst, UInt128 ipSrc, UInt128 ipDst, byte hops = 64, byte proto = IpProtocols.Udp, ushort tpSrc = 1000, int payload = 32)
    {
        var k = new FlowKey { DlSrc = src, DlDst = dst, DlType = EtherTypes.IPv6, NwSrc = ipSrc, NwDst = ipDst, NwTtl = hops, NwProto = proto, TpSrc = tpSrc, TpDst = proto == IpProtocols.IcmpV6 ? (ushort)0 : (ushort)2000 };
        return FrameBuilder.FromKey(k, payload);
    }

    private static FlowKey Parse(byte[] f)
    {
        var k = new FlowKey();
        Assert.Equal(DropReason.None, Classify.Extract(f.AsSpan(), 0, ref k));
        return k;
    }

    private static void AssertIcmp6Checksum(byte[] f)
    {
        Assert.True(IPv6Header.TryCreate(f.AsSpan(14), out var ip));
        Assert.True(IcmpV6Header.TryCreate(ip.Payload, out var icmp) && icmp.VerifyChecksum(ip.Source, ip.Destination), "ICMPv6 checksum");
    }

    [Fact]
    public void Router_answers_a_solicitation_for_its_gateway_with_router_solicited_override_and_learns_the_sender_stale()
    {
        var r = new Rig();
        r.Send(r.A, r.Write(p => Router6Packets.NeighborSolicitation(p, IfA, Gw1, 0)));
        var na = Assert.Single(r.Take(r.A));
        var k = Parse(na);
        Assert.Equal(Ndp.NeighborAdvertisement, k.TpSrc);
        Assert.Equal(MacA, k.DlDst);
        Assert.Equal(r.R1.Mac, k.DlSrc);
        Assert.Equal(Gw1, k.NwSrc);
        Assert.Equal(HostA, k.NwDst);
        Assert.Equal(255, k.NwTtl);
        AssertIcmp6Checksum(na);
        Assert.True(NdMessage.TryCreate(na.AsSpan(54), out var msg));
        Assert.True(msg.IsRouterFlag && msg.Solicited && msg.Override);
        Assert.Equal(Gw1, msg.Target);
        Assert.Equal(r.R1.Mac, msg.LinkLayer);
        Assert.Empty(r.Take(r.B));
        var e = r.Dp.Neighbors6.Lookup(1, HostA)!;
        Assert.Equal(NeighborState.Stale, e.State);
        Assert.Equal(MacA, e.Mac);

        // The link-local address (from the router's MAC) is answered too.
        r.Send(r.A, r.Write(p => Router6Packets.NeighborSolicitation(p, IfA, r.R1.LinkLocal6, 0)));
        Assert.Equal(r.R1.LinkLocal6, Parse(Assert.Single(r.Take(r.A))).NwSrc);
        Assert.Equal(0, r.Pool.InUse);
    }

    [Fact]
    public void Bad_nd_input_is_dropped_and_counted_and_does_not_poison_the_table()
    {
        var r = new Rig();
        // Hop limit 64: crossed a router, not from this link.
        var ns = r.Write(p => Router6Packets.NeighborSolicitation(p, IfA, Gw1, 0));
        ns[14 + 7] = 64;
        r.Send(r.A, ns);
        Assert.Empty(r.Take(r.A));
        Assert.Equal(1, r.Drops(DropReason.NdBadHopLimit));
        Assert.Null(r.Dp.Neighbors6.Lookup(1, HostA));
        // An option whose length runs past the message (length 2 = 16 bytes, 8 present), checksum made good.
        ns = r.Write(p => Router6Packets.NeighborSolicitation(p, IfA, Gw1, 0));
        ns[14 + 40 + 24 + 1] = 2;
        RefillChecksum(ns);
        r.Send(r.A, ns);
        Assert.Empty(r.Take(r.A));
        Assert.Equal(1, r.Drops(DropReason.NdMalformed));
        // A bad checksum.
        ns = r.Write(p => Router6Packets.NeighborSolicitation(p, IfA, Gw1, 0));
        ns[14 + 40 + 2] ^= 0x55;
        r.Send(r.A, ns);
        Assert.Equal(2, r.Drops(DropReason.NdMalformed));
        // An NA nobody asked for: nothing learned, counted.
        r.Send(r.B, r.Write(p => Router6Packets.NeighborAdvertisement(p, IfB, HostB, Gw2, r.R2.Mac, solicited: true)));
        Assert.Equal(1, r.Drops(DropReason.NdUnsolicitedNa));
        Assert.Null(r.Dp.Neighbors6.Lookup(2, HostB));
        // An NA claiming the router's own address.
        r.Send(r.B, r.Write(p => Router6Packets.NeighborAdvertisement(p, IfB, Gw2, Ndp.AllNodes, Ndp.MulticastMac(Ndp.AllNodes), solicited: false)));
        Assert.Equal(2, r.Drops(DropReason.NdUnsolicitedNa));
        Assert.Equal(0, r.Dp.Neighbors6.Count);
        Assert.Equal(0, r.Pool.InUse);
    }

    private static void RefillChecksum(byte[] f)
    {
        Assert.True(IPv6Header.TryCreate(f.AsSpan(14), out var ip));
        Assert.True(IcmpV6Header.TryCreate(ip.Payload, out var icmp));
        icmp.FillChecksum(ip.Source, ip.Destination);
    }

    [Fact]
    public void Random_nd_messages_never_throw_leak_or_create_neighbours_from_advertisements()
    {
        var r = new Rig();
        // Any type among RS, RA, NS, NA, redirect; any code, flags, target and options; to the router's MAC or a group; hop limit mostly 255.
        Gen.Select(Gen.Byte[133, 137], Gen.Byte[0, 1], Gen.Byte.Array[0, 80], Gen.Bool, Gen.Int[0, 9]).Sample((type, code, body, toGroup, hop) =>
        {
            var f = new byte[14 + 40 + 4 + body.Length];
            UInt128 dst = toGroup ? Ndp.SolicitedNode(Gw1) : Gw1;
            EthernetHeader.Write(f, new EthernetFields(toGroup ? Ndp.MulticastMac(dst) : r.R1.Mac, MacA, EtherTypes.IPv6));
            IPv6Header.Write(f.AsSpan(14), new IPv6Fields(0, 0, IpProtocols.IcmpV6, hop == 0 ? (byte)64 : (byte)255, HostA, dst), 4 + body.Length);
            f[54] = type;
            f[55] = code;
            body.CopyTo(f, 58);
            // A good checksum half the time, so that the option and field checks are reached.
            if (hop % 2 == 1 && IcmpV6Header.TryCreate(f.AsSpan(54), out var icmp)) icmp.FillChecksum(HostA, dst);
            r.Send(r.A, f);
            r.Take(r.A);
            r.Take(r.B);
            Assert.Equal(0, r.Pool.InUse);
        }, iter: 3000, threads: 1); // one rig, one datapath thread: samples in sequence
        // Only solicitations (from fd00:1::2) may have taught the router anything: never an advertisement's target.
        Assert.All(r.Dp.Neighbors6.Entries(), e => Assert.Equal(HostA, e.Address));
    }

    [Fact]
    public void Router_answers_ping_to_its_gateway()
    {
        var r = new Rig();
        r.Send(r.A, Ip(MacA, r.R1.Mac, HostA, Gw1, proto: IpProtocols.IcmpV6, tpSrc: IcmpV6Header.EchoRequest));
        var echo = Assert.Single(r.Take(r.A));
        var k = Parse(echo);
        Assert.Equal(IcmpV6Header.EchoReply, k.TpSrc);
        Assert.Equal(Gw1, k.NwSrc);
        Assert.Equal(HostA, k.NwDst);
        AssertIcmp6Checksum(echo);
    }

    [Fact]
    public void Routed_packet_waits_for_neighbour_discovery_then_leaves_rewritten_with_hop_limit_minus_one()
    {
        var r = new Rig();
        r.Send(r.A, Ip(MacA, r.R1.Mac, HostA, HostB, hops: 64));
        Assert.Equal(1, r.Ctx.HeldPackets);
        var ns = Assert.Single(r.Take(r.B));
        var k = Parse(ns);
        Assert.Equal(Ndp.NeighborSolicitation, k.TpSrc);
        Assert.Equal(Ndp.SolicitedNode(HostB), k.NwDst);
        Assert.Equal(Ndp.MulticastMac(Ndp.SolicitedNode(HostB)), k.DlDst);
        Assert.Equal(Gw2, k.NwSrc);
        Assert.Equal(255, k.NwTtl);
        AssertIcmp6Checksum(ns);
        Assert.Equal(NeighborState.Incomplete, r.Dp.Neighbors6.Lookup(2, HostB)!.State);

        r.Send(r.B, r.Write(p => Router6Packets.NeighborAdvertisement(p, IfB, HostB, Gw2, r.R2.Mac, solicited: true)));
        Assert.Equal(NeighborState.Reachable, r.Dp.Neighbors6.Lookup(2, HostB)!.State);
        r.Ctx.Housekeeping(r.Now);
        Assert.Equal(0, r.Ctx.HeldPackets);
        var fwd = Assert.Single(r.Take(r.B));
        k = Parse(fwd);
        Assert.Equal(MacB, k.DlDst);
        Assert.Equal(r.R2.Mac, k.DlSrc);
        Assert.Equal(63, k.NwTtl);

        r.Send(r.A, Ip(MacA, r.R1.Mac, HostA, HostB));
        Assert.Single(r.Take(r.B));
        Assert.True(r.Ctx.FlowCache.Hits >= 1);
        Assert.Equal(0, r.Pool.InUse);
    }

    [Fact]
    public void Hop_limit_expiry_no_route_and_unanswered_neighbours_get_icmpv6_errors()
    {
        var r = new Rig();
        r.Send(r.A, Ip(MacA, r.R1.Mac, HostA, HostB, hops: 1));
        var te = Assert.Single(r.Take(r.A));
        var k = Parse(te);
        Assert.Equal(IpProtocols.IcmpV6, k.NwProto);
        Assert.Equal(Router6.IcmpTimeExceeded, k.TpSrc);
        Assert.Equal(Gw1, k.NwSrc);
        Assert.Equal(HostA, k.NwDst);
        AssertIcmp6Checksum(te);
        Assert.Equal(1, r.Drops(DropReason.TtlExpired));

        r.Send(r.A, Ip(MacA, r.R1.Mac, HostA, Ip6("2001:db8::1")));
        k = Parse(Assert.Single(r.Take(r.A)));
        Assert.Equal(Router6.IcmpUnreachable, k.TpSrc);
        Assert.Equal(Router6.CodeNoRoute, k.TpDst);

        // Nobody answers for fd00:2::77: three solicitations, then address unreachable.
        r.Send(r.A, Ip(MacA, r.R1.Mac, HostA, Ip6("fd00:2::77")));
        for (int i = 0; i < 5; i++)
        {
            r.Now += 1000;
            r.Dp.Neighbors6.Tick(r.Now, (e, unicast) => r.Dp.NdRequests.Enqueue((e.Network, e.Address, unicast ? e.Mac : 0)));
            r.Ctx.Housekeeping(r.Now);
        }
        Assert.Equal(3, r.Take(r.B).Count);
        k = Parse(Assert.Single(r.Take(r.A)));
        Assert.Equal(Router6.IcmpUnreachable, k.TpSrc);
        Assert.Equal(Router6.CodeAddressUnreachable, k.TpDst);
        Assert.Equal(0, r.Ctx.HeldPackets);
        Assert.Equal(0, r.Pool.InUse);
    }

    [Fact]
    public void Icmpv6_errors_share_the_rate_limit_of_100_per_second()
    {
        var r = new Rig();
        for (int i = 0; i < 150; i++) r.Send(r.A, Ip(MacA, r.R1.Mac, HostA, HostB, hops: 1, tpSrc: (ushort)(1000 + i)));
        Assert.Equal(IcmpRateLimiter.PerSecond, r.Take(r.A).Count);
        Assert.Equal(150, r.Drops(DropReason.TtlExpired));
        Assert.Equal(50, r.Drops(DropReason.IcmpRateLimited));
        r.Now += 1000; // a second later the budget is back
        r.Send(r.A, Ip(MacA, r.R1.Mac, HostA, HostB, hops: 1));
        Assert.Single(r.Take(r.A));
        Assert.Equal(0, r.Pool.InUse);
    }

    [Fact]
    public void Too_big_gets_packet_too_big_with_the_egress_mtu_and_is_never_fragmented()
    {
        var r = new Rig(mtu2: 1280);
        r.Dp.Neighbors6.AddStatic(2, HostB, MacB);
        r.Send(r.A, Ip(MacA, r.R1.Mac, HostA, HostB, payload: 1400));
        var f = Assert.Single(r.Take(r.A));
        var k = Parse(f);
        Assert.Equal(Router6.IcmpPacketTooBig, k.TpSrc);
        Assert.Equal(1280u, BinaryPrimitives.ReadUInt32BigEndian(f.AsSpan(14 + 40 + 4)));
        Assert.True(f.Length - 14 <= 1280, "the error fits the minimum MTU");
        AssertIcmp6Checksum(f);
        Assert.Empty(r.Take(r.B));
        Assert.Equal(1, r.Drops(DropReason.PacketTooBig));
        r.Send(r.A, Ip(MacA, r.R1.Mac, HostA, HostB, payload: 1000));
        Assert.Single(r.Take(r.B));
    }

    [Fact]
    public void Router_solicitation_gets_an_advertisement_with_prefix_mtu_and_lifetime()
    {
        var r = new Rig();
        var rs = r.Write(p =>
        {
            // An RS from A's link-local address to all-routers, with its source link-layer option.
            var d = p.ReceiveBuffer();
            EthernetHeader.Write(d, new EthernetFields(Ndp.MulticastMac(Ndp.AllRouters), MacA, EtherTypes.IPv6));
            var m = d.Slice(54, 16);
            var icmp = IcmpV6Header.Write(m, new IcmpV6Fields(Ndp.RouterSolicitation, 0, 0));
            Ndp.WriteLinkLayerOption(m[8..], Ndp.OptSourceLinkLayer, MacA);
            IPv6Header.Write(d[14..], new IPv6Fields(0, 0, IpProtocols.IcmpV6, 255, IfA.LinkLocal6, Ndp.AllRouters), 16);
            icmp.FillChecksum(IfA.LinkLocal6, Ndp.AllRouters);
            p.SetLength(70);
        });
        r.Send(r.A, rs);
        var ra = Assert.Single(r.Take(r.A));
        var k = Parse(ra);
        Assert.Equal(Ndp.RouterAdvertisement, k.TpSrc);
        Assert.Equal(r.R1.LinkLocal6, k.NwSrc);
        Assert.Equal(IfA.LinkLocal6, k.NwDst);
        AssertIcmp6Checksum(ra);
        var m = ra.AsSpan(54);
        Assert.Equal(64, m[4]);
        Assert.Equal(1800, BinaryPrimitives.ReadUInt16BigEndian(m[6..]));
        // Options: source link-layer, MTU, prefix.
        Assert.Equal(Ndp.OptMtu, m[24]);
        Assert.Equal(1500u, BinaryPrimitives.ReadUInt32BigEndian(m[28..]));
        Assert.Equal(Ndp.OptPrefixInformation, m[32]);
        Assert.Equal(64, m[34]);
        Assert.Equal(0xC0, m[35]); // on-link, autonomous
        Assert.Equal(Ip6("fd00:1::"), BinaryPrimitives.ReadUInt128BigEndian(m[48..]));
        Assert.Equal(NeighborState.Stale, r.Dp.Neighbors6.Lookup(1, IfA.LinkLocal6)!.State);
        Assert.Equal(0, r.Pool.InUse);
    }

    [Fact]
    public void Neighbour_goes_stale_then_delay_probe_and_reachable_again_when_used()
    {
        var t = new NeighborTable6();
        var e = t.Resolve(1, HostB, 0, out bool created)!;
        Assert.True(created);
        Assert.True(t.OnAdvertisement(1, HostB, MacB, solicited: true, overrideFlag: true, 10));
        Assert.Equal(NeighborState.Reachable, e.State);
        var sent = new List<(UInt128, bool)>();
        t.Tick(10 + NeighborTable6.ReachableMs, (x, u) => sent.Add((x.Address, u)));
        Assert.Equal(NeighborState.Stale, e.State);
        t.Used(e, 40_000);
        Assert.Equal(NeighborState.Delay, e.State);
        t.Tick(40_000 + NeighborTable6.DelayMs, (x, u) => sent.Add((x.Address, u)));
        Assert.Equal(NeighborState.Probe, e.State);
        Assert.Equal((HostB, true), Assert.Single(sent)); // a unicast probe
        Assert.True(t.OnAdvertisement(1, HostB, MacB, solicited: true, overrideFlag: false, 46_000));
        Assert.Equal(NeighborState.Reachable, e.State);
        // An unsolicited NA with another MAC and no override flag is not believed.
        Assert.True(t.OnAdvertisement(1, HostB, MacA, solicited: false, overrideFlag: false, 47_000));
        Assert.Equal(MacB, e.Mac);
        Assert.False(t.OnAdvertisement(1, HostA, MacA, solicited: true, overrideFlag: true, 47_000));
        Assert.Null(t.Lookup(1, HostA));
    }

    [Fact]
    public void Isolated_networks_drop_routed_ipv6_without_soliciting_into_the_other()
    {
        var r = new Rig(connected: false);
        r.Send(r.A, Ip(MacA, r.R1.Mac, HostA, HostB));
        Assert.Empty(r.Take(r.B));
        Assert.Empty(r.Take(r.A));
        Assert.Equal(1, r.Drops(DropReason.NetworkIsolated));
        Assert.Equal(0, r.Ctx.HeldPackets);
    }

    [Fact]
    public void Trace_shows_the_ipv6_route_and_neighbour()
    {
        var r = new Rig();
        r.Dp.Neighbors6.AddStatic(2, HostB, MacB);
        var t = Tracer.Trace(r.Dp, Ip(MacA, r.R1.Mac, HostA, HostB), r.IdA, r.Now);
        string all = string.Join("\n", t.Steps.Select(s => s.Detail));
        Assert.Contains("route to fd00:2::2: connected on n2", all);
        Assert.Contains("(permanent)", all);
        Assert.Contains("dec_ttl", t.Actions);
    }

    [Fact]
    public void Static_ipv6_routes_via_a_gateway_with_ecmp()
    {
        var r = new Rig();
        var gwB2 = Ip6("fd00:2::3");
        Assert.True(r.Dp.Routes.Add6(Ip6("fd00:9::"), 64, new NextHop(RouteKind.Via, 2, 0, HostB)));
        Assert.True(r.Dp.Routes.Add6(Ip6("fd00:9::"), 64, new NextHop(RouteKind.Via, 2, 0, gwB2)));
        Assert.False(r.Dp.Routes.Add6(Ip6("fd00:9::"), 64, new NextHop(RouteKind.Via, 2, 0, gwB2)));
        Assert.Equal(2, r.Dp.Routes.Paths6(Ip6("fd00:9::42"))!.Length);
        r.Dp.Neighbors6.AddStatic(2, HostB, MacB);
        r.Dp.Neighbors6.AddStatic(2, gwB2, MacA);
        var seen = new HashSet<ulong>();
        for (ushort port = 1000; port < 1064; port++)
        {
            r.Send(r.A, Ip(MacA, r.R1.Mac, HostA, Ip6("fd00:9::42"), tpSrc: port));
            seen.Add(Parse(Assert.Single(r.Take(r.B))).DlDst);
        }
        Assert.Equal(2, seen.Count); // both paths carry flows
        Assert.True(r.Dp.Routes.Remove6(Ip6("fd00:9::"), 64));
        Assert.Null(r.Dp.Routes.Paths6(Ip6("fd00:9::42")));
    }
}
