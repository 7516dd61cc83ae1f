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

        public Rig(int mtu2 = 1500)
        {
            R1 = Dp.AddNetwork("n1", gateway: Gw1, prefixLength: 24).Router!.Mac;
            R2 = Dp.AddNetwork("n2", gateway: Gw2, prefixLength: 24, mtu: mtu2).Router!.Mac;
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
            r.Dp.Neighbors.Tick(r.Now, e => r.Dp.ArpRequests.Enqueue((e.Network, e.Address)));
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
}
