using System.Buffers.Binary;
using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Ports;
using VSwitch.Core.Tables;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Tests;

/// <summary>The router between two networks, through MemoryPorts: ARP, ping to the gateway, forwarding, ICMP errors.</summary>
public class RouterTests
{
    private const uint Gw1 = 0x0A010001, HostA = 0x0A010002, Gw2 = 0x0A020001, HostB = 0x0A020002;
    private static readonly ulong MacA = TestFrames.Mac(0xA), MacB = TestFrames.Mac(0xB);

    private sealed class Rig
    {
        public readonly Datapath Dp = new();
        public readonly PacketPool Pool = new(1024);
        public readonly DatapathContext Ctx;
        public readonly MemoryPort A = new("a"), B = new("b");
        public readonly int IdA, IdB;
        public readonly ulong R1, R2;
        public long Now = 1000;

        /// <param name="connected">Whether n1 and n2 are connected (routed networks are isolated from each other by default).</param>
        public Rig(int mtu2 = 1500, bool connected = true)
        {
            R1 = Dp.AddNetwork("n1", gateway: Gw1, prefixLength: 24).Router!.Mac;
            R2 = Dp.AddNetwork("n2", gateway: Gw2, prefixLength: 24, mtu: mtu2).Router!.Mac;
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
    }

    private static byte[] Arp(ushort op, ulong sha, uint spa, ulong tha, uint tpa, ulong dst)
    {
        var k = new FlowKey { DlSrc = sha, DlDst = dst, DlType = EtherTypes.Arp, NwProto = (byte)op, NwSrc = spa, NwDst = tpa, ArpSha = sha, ArpTha = tha };
        return FrameBuilder.FromKey(k);
    }

    private static byte[] Ip(ulong src, ulong dst, uint ipSrc, uint ipDst, byte ttl = 64, byte proto = IpProtocols.Udp, ushort tpSrc = 1000, int payload = 32)
    {
        var k = new FlowKey { DlSrc = src, DlDst = dst, DlType = EtherTypes.IPv4, NwSrc = ipSrc, NwDst = ipDst, NwTtl = ttl, NwProto = proto, TpSrc = tpSrc, TpDst = 2000 };
        return FrameBuilder.FromKey(k, payload);
    }

    private static FlowKey Parse(byte[] f)
    {
        var k = new FlowKey();
        Assert.Equal(DropReason.None, Classify.Extract(f.AsSpan(), 0, ref k));
        return k;
    }

    [Fact]
    public void Router_answers_arp_and_ping_for_its_gateway_address()
    {
        var r = new Rig();
        r.Send(r.A, Arp(1, MacA, HostA, 0, Gw1, MacAddress.Broadcast));
        var reply = Parse(Assert.Single(r.Take(r.A)));
        Assert.True(reply.IsArp);
        Assert.Equal(2, reply.NwProto);
        Assert.Equal(r.R1, reply.ArpSha);
        Assert.Equal(Gw1, (uint)reply.NwSrc);
        Assert.Equal(MacA, reply.DlDst);
        Assert.Empty(r.Take(r.B)); // not flooded to the other network
        Assert.Equal(MacA, r.Dp.Neighbors.Lookup(1, HostA)!.Mac); // the router learned the asker

        r.Send(r.A, Ip(MacA, r.R1, HostA, Gw1, proto: IpProtocols.Icmp, tpSrc: 8));
        var echo = Assert.Single(r.Take(r.A));
        var k = Parse(echo);
        Assert.Equal(0, k.TpSrc); // echo reply
        Assert.Equal(HostA, (uint)k.NwDst);
        Assert.Equal(Gw1, (uint)k.NwSrc);
        Assert.True(IPv4Header.TryCreate(echo.AsSpan(14), out var ip) && ip.VerifyChecksum());
        Assert.True(Checksum.Verify(echo.AsSpan(14 + 20, ip.TotalLength - 20)));
    }

    [Fact]
    public void Routed_packet_waits_for_arp_then_leaves_rewritten_with_ttl_minus_one()
    {
        var r = new Rig();
        r.Send(r.A, Ip(MacA, r.R1, HostA, HostB, ttl: 64));
        Assert.Equal(1, r.Ctx.HeldPackets);
        var req = Parse(Assert.Single(r.Take(r.B))); // ARP request on n2 only
        Assert.Equal(1, req.NwProto);
        Assert.Equal(HostB, (uint)req.NwDst);
        Assert.Equal(Gw2, (uint)req.NwSrc);
        Assert.Empty(r.Take(r.A));

        r.Send(r.B, Arp(2, MacB, HostB, r.R2, Gw2, r.R2));
        r.Ctx.Housekeeping(r.Now);
        Assert.Equal(0, r.Ctx.HeldPackets);
        var fwd = Assert.Single(r.Take(r.B));
        var k = Parse(fwd);
        Assert.Equal(MacB, k.DlDst);
        Assert.Equal(r.R2, k.DlSrc);
        Assert.Equal(63, k.NwTtl);
        Assert.True(IPv4Header.TryCreate(fwd.AsSpan(14), out var ip) && ip.VerifyChecksum());

        // The next packet of the flow goes straight through, from the cache.
        r.Send(r.A, Ip(MacA, r.R1, HostA, HostB, ttl: 64));
        Assert.Single(r.Take(r.B));
        Assert.True(r.Ctx.FlowCache.Hits >= 1);
        Assert.Equal(0, r.Pool.InUse);
    }

    [Fact]
    public void Ttl_expiry_and_missing_routes_get_icmp_errors_back()
    {
        var r = new Rig();
        r.Send(r.A, Ip(MacA, r.R1, HostA, HostB, ttl: 1));
        var te = Parse(Assert.Single(r.Take(r.A)));
        Assert.Equal(IpProtocols.Icmp, te.NwProto);
        Assert.Equal(Router.IcmpTimeExceeded, te.TpSrc);
        Assert.Equal(Gw1, (uint)te.NwSrc);
        Assert.Equal(HostA, (uint)te.NwDst);
        Assert.Equal(1, r.Dp.ReadDropCounters()[(int)DropReason.TtlExpired]);

        r.Send(r.A, Ip(MacA, r.R1, HostA, 0x08080808));
        var un = Parse(Assert.Single(r.Take(r.A)));
        Assert.Equal(Router.IcmpUnreachable, un.TpSrc);
        Assert.Equal(Router.CodeNet, un.TpDst);
        Assert.Equal(0, r.Pool.InUse);
    }

    [Fact]
    public void Too_big_with_df_gets_fragmentation_needed_with_the_mtu()
    {
        var r = new Rig(mtu2: 1000);
        r.Dp.Neighbors.AddStatic(2, HostB, MacB);
        r.Send(r.A, Ip(MacA, r.R1, HostA, HostB, payload: 1200)); // FrameBuilder sets DF
        var f = Assert.Single(r.Take(r.A));
        var k = Parse(f);
        Assert.Equal(Router.IcmpUnreachable, k.TpSrc);
        Assert.Equal(Router.CodeFragNeeded, k.TpDst);
        Assert.Equal(1000, BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(14 + 20 + 6)));
        Assert.Empty(r.Take(r.B));
        r.Send(r.A, Ip(MacA, r.R1, HostA, HostB, payload: 500));
        Assert.Single(r.Take(r.B));
    }

    [Fact]
    public void Unanswered_arp_fails_and_held_packets_get_host_unreachable()
    {
        var r = new Rig();
        r.Send(r.A, Ip(MacA, r.R1, HostA, HostB));
        r.Take(r.B);
        for (int i = 0; i < 5; i++)
        {
            r.Now += 1000;
            r.Dp.Neighbors.Tick(r.Now, (e, _) => r.Dp.ArpRequests.Enqueue((e.Network, e.Address)));
            r.Ctx.Housekeeping(r.Now);
        }
        Assert.Equal(2, r.Take(r.B).Count); // two retransmissions, three requests in all
        var un = Parse(Assert.Single(r.Take(r.A)));
        Assert.Equal(Router.CodeHost, un.TpDst);
        Assert.Equal(0, r.Ctx.HeldPackets);
        Assert.Equal(0, r.Pool.InUse);
    }

    [Fact]
    public void Trace_shows_the_route_and_the_neighbour()
    {
        var r = new Rig();
        r.Dp.Neighbors.AddStatic(2, HostB, MacB);
        var t = Tracer.Trace(r.Dp, Ip(MacA, r.R1, HostA, HostB), r.IdA, r.Now);
        string all = string.Join("\n", t.Steps.Select(s => s.Detail));
        Assert.Contains("connected on n2", all);
        Assert.Contains("02:00:00:00:00:0b (permanent)", all);
        Assert.Contains("dec_ttl", t.Actions);
    }

    private long Drops(Rig r, DropReason reason) => r.Dp.ReadDropCounters()[(int)reason];

    [Fact]
    public void Isolated_networks_drop_routed_packets_and_pings_to_the_other_gateway_and_count_why()
    {
        var r = new Rig(connected: false);
        r.Dp.Neighbors.AddStatic(2, HostB, MacB);
        r.Send(r.A, Ip(MacA, r.R1, HostA, HostB));
        Assert.Empty(r.Take(r.B));
        Assert.Empty(r.Take(r.A)); // dropped silently (as Docker's isolation does): no ICMP error
        Assert.Equal(1, Drops(r, DropReason.NetworkIsolated));
        // Without a static neighbour, an isolated packet does not make the router ARP into n2 either.
        r.Send(r.A, Ip(MacA, r.R1, HostA, HostB + 1));
        Assert.Empty(r.Take(r.B));
        Assert.Equal(0, r.Ctx.HeldPackets);
        Assert.Equal(2, Drops(r, DropReason.NetworkIsolated));

        // n2's gateway address is n2's: no echo reply from it for n1 ...
        r.Send(r.A, Ip(MacA, r.R1, HostA, Gw2, proto: IpProtocols.Icmp, tpSrc: 8));
        Assert.Empty(r.Take(r.A));
        Assert.Equal(3, Drops(r, DropReason.NetworkIsolated));
        // ... while n1's own gateway always answers.
        r.Send(r.A, Ip(MacA, r.R1, HostA, Gw1, proto: IpProtocols.Icmp, tpSrc: 8));
        Assert.Single(r.Take(r.A));
        Assert.Equal(0, r.Pool.InUse);
    }

    [Fact]
    public void Connect_lets_flows_through_and_disconnect_cuts_the_cached_flow_at_its_next_packet()
    {
        var r = new Rig(connected: false);
        r.Dp.Neighbors.AddStatic(2, HostB, MacB);
        r.Dp.Neighbors.AddStatic(1, HostA, MacA);
        r.Send(r.A, Ip(MacA, r.R1, HostA, HostB));
        Assert.Empty(r.Take(r.B));

        Assert.True(r.Dp.ConnectNetworks("n2", "n1")); // symmetric: either order
        Assert.False(r.Dp.ConnectNetworks("n1", "n2"));
        Assert.True(r.Dp.Topology.Connections.Connected(1, 2));
        r.Send(r.A, Ip(MacA, r.R1, HostA, HostB));
        Assert.Single(r.Take(r.B));
        r.Send(r.B, Ip(MacB, r.R2, HostB, HostA)); // and back
        Assert.Single(r.Take(r.A));
        r.Send(r.A, Ip(MacA, r.R1, HostA, HostB)); // (n2 learned MacB above: decided once more)
        Assert.Single(r.Take(r.B));
        long hits = r.Ctx.FlowCache.Hits;
        r.Send(r.A, Ip(MacA, r.R1, HostA, HostB));
        Assert.Single(r.Take(r.B));
        Assert.Equal(hits + 1, r.Ctx.FlowCache.Hits); // the allowed flow runs from the cache

        Assert.True(r.Dp.DisconnectNetworks("n1", "n2"));
        Assert.False(r.Dp.DisconnectNetworks("n2", "n1"));
        r.Send(r.A, Ip(MacA, r.R1, HostA, HostB));
        Assert.Empty(r.Take(r.B));
        r.Send(r.B, Ip(MacB, r.R2, HostB, HostA));
        Assert.Empty(r.Take(r.A));
        Assert.Equal(3, Drops(r, DropReason.NetworkIsolated));
        Assert.Equal(0, r.Pool.InUse);
    }

    [Fact]
    public void A_static_route_opens_its_prefix_to_every_network_and_the_way_back_but_not_the_other_subnet()
    {
        var r = new Rig(connected: false);
        const uint NextRouter = 0x0A0200FE, Remote = 0x0A090101; // 10.2.0.254 on n2, 10.9.1.1 behind it
        r.Dp.Routes.Add(0x0A090000, 16, new NextHop(RouteKind.Via, 2, NextRouter));
        r.Dp.Neighbors.AddStatic(2, NextRouter, MacB);
        r.Dp.Neighbors.AddStatic(1, HostA, MacA);
        r.Send(r.A, Ip(MacA, r.R1, HostA, Remote));
        Assert.Equal(MacB, Parse(Assert.Single(r.Take(r.B))).DlDst);
        r.Send(r.B, Ip(MacB, r.R2, Remote, HostA)); // the reply, from behind the route, arriving on n2
        Assert.Equal(MacA, Parse(Assert.Single(r.Take(r.A))).DlDst);
        r.Send(r.B, Ip(MacB, r.R2, HostB, HostA)); // n2's own hosts stay isolated from n1
        Assert.Empty(r.Take(r.A));
        Assert.Equal(1, Drops(r, DropReason.NetworkIsolated));
        var t = Tracer.Trace(r.Dp, Ip(MacA, r.R1, HostA, Remote), r.IdA, r.Now);
        Assert.Contains("behind a static route: every network may reach it", string.Join("\n", t.Steps.Select(x => x.Detail)));
        t = Tracer.Trace(r.Dp, Ip(MacB, r.R2, Remote, HostA), r.IdB, r.Now);
        Assert.Contains("source 10.9.1.1 is behind a static route through n2: allowed into n1", string.Join("\n", t.Steps.Select(x => x.Detail)));
    }

    [Fact]
    public void Trace_says_the_networks_are_isolated_and_how_to_connect_them()
    {
        var r = new Rig(connected: false);
        r.Dp.Neighbors.AddStatic(2, HostB, MacB);
        var t = Tracer.Trace(r.Dp, Ip(MacA, r.R1, HostA, HostB), r.IdA, r.Now);
        string all = string.Join("\n", t.Steps.Select(s => s.Detail));
        Assert.Contains("network n1 is isolated from n2", all);
        Assert.Contains("vsctl network connect n1 n2", all);
        Assert.Contains("drop(network-isolated)", t.Actions.Replace(" ", ""));
        r.Dp.ConnectNetworks("n1", "n2");
        t = Tracer.Trace(r.Dp, Ip(MacA, r.R1, HostA, HostB), r.IdA, r.Now);
        Assert.Contains("networks n1 and n2 are connected", string.Join("\n", t.Steps.Select(s => s.Detail)));
    }

    [Fact]
    public void Connections_name_existing_different_networks_and_go_with_a_removed_network()
    {
        var dp = new Datapath();
        dp.AddNetwork("a", gateway: Gw1, prefixLength: 24);
        dp.AddNetwork("b", gateway: Gw2, prefixLength: 24);
        Assert.Throws<KeyNotFoundException>(() => dp.ConnectNetworks("a", "nope"));
        Assert.Throws<ArgumentException>(() => dp.ConnectNetworks("a", "a"));
        long v = dp.Topology.Version;
        Assert.True(dp.ConnectNetworks("a", "b"));
        Assert.True(dp.Topology.Version > v); // cached flows are decided again
        Assert.Equal([(ushort)2], dp.Topology.Connections.Of(1));
        dp.RemoveNetwork("b");
        Assert.Equal(0, dp.Topology.Connections.Count);
        dp.AddNetwork("c", gateway: Gw2, prefixLength: 24); // takes b's id: not connected to a
        Assert.False(dp.Topology.Connections.Connected(1, 2));
    }
}
