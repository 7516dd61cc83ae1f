using System.Buffers.Binary;
using CsCheck;
using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Wire;
using VSwitch.Overlay.Wire;
using Xunit;

namespace VSwitch.Core.Tests;

public class ClassifyTests
{
    private static FlowKey Key(byte[] frame, out DropReason reason, int inPort = 3)
    {
        var key = new FlowKey { TpSrc = 999, InPort = 77 }; // stale values must be cleared
        reason = Classify.Extract(frame, inPort, ref key);
        return key;
    }

    private static FlowKey Ok(byte[] frame)
    {
        var key = Key(frame, out var reason);
        Assert.Equal(DropReason.None, reason);
        return key;
    }

    private static DropReason Reason(byte[] frame)
    {
        Key(frame, out var reason);
        return reason;
    }

    [Fact]
    public void Arp()
    {
        var k = Ok(Frames.Arp());
        Assert.Equal(3, k.InPort);
        Assert.Equal(Frames.Src, k.DlSrc);
        Assert.Equal(Frames.Dst, k.DlDst);
        Assert.Equal(EtherTypes.Arp, k.DlType);
        Assert.False(k.HasVlan);
        Assert.Equal(ArpPacket.OpRequest, k.NwProto);
        Assert.Equal((UInt128)Frames.Ip1, k.NwSrc);
        Assert.Equal((UInt128)Frames.Ip2, k.NwDst);
        Assert.Equal(Frames.Src, k.ArpSha);
        Assert.Equal(0UL, k.ArpTha);
        Assert.Equal(0, k.TpSrc);
        Assert.Equal("in_port=3,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,arp,arp_op=1,arp_spa=10.0.0.1,arp_tpa=10.0.0.2,arp_sha=02:00:00:00:00:01,arp_tha=00:00:00:00:00:00",
            FlowKeyFormat.Format(k));
    }

    [Fact]
    public void VlanTagged()
    {
        var k = Ok(Frames.Arp(tags: 1));
        Assert.True(k.HasVlan);
        Assert.Equal(100, k.VlanId);
        Assert.Equal(5 | FlowKey.VlanPresentBit, k.VlanPcp);
        Assert.Equal(0, k.VlanQinQ);
        Assert.Equal(EtherTypes.Arp, k.DlType);
        Assert.Equal((UInt128)Frames.Ip1, k.NwSrc);
    }

    [Fact]
    public void QinQKeepsOuterTag()
    {
        var k = Ok(Frames.Arp(tags: 2, qinq: true));
        Assert.Equal(100, k.VlanId);
        Assert.Equal(5 | FlowKey.VlanPresentBit, k.VlanPcp);
        Assert.Equal(FlowKey.STagBit | FlowKey.InnerTagBit, k.VlanQinQ);
        Assert.Equal(EtherTypes.Arp, k.DlType);
        Assert.Equal(ArpPacket.OpRequest, k.NwProto);
    }

    [Fact]
    public void Tcp4WithOptions()
    {
        var k = Ok(Frames.Tcp4(options: true));
        Assert.Equal(EtherTypes.IPv4, k.DlType);
        Assert.Equal((UInt128)Frames.Ip1, k.NwSrc);
        Assert.Equal((UInt128)Frames.Ip2, k.NwDst);
        Assert.Equal(IpProtocols.Tcp, k.NwProto);
        Assert.Equal(0xB8, k.NwTos);
        Assert.Equal(64, k.NwTtl);
        Assert.Equal(0, k.NwFrag);
        Assert.Equal(1234, k.TpSrc);
        Assert.Equal(80, k.TpDst);
        Assert.Equal(TcpFlags.Syn, k.TcpFlags);
        Assert.Equal("in_port=3,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,ip,nw_src=10.0.0.1,nw_dst=10.0.0.2,nw_proto=6,nw_tos=184,nw_ttl=64,tp_src=1234,tp_dst=80,tcp_flags=0x002",
            FlowKeyFormat.Format(k));
    }

    [Fact]
    public void Udp4AndIcmp4()
    {
        var u = Ok(Frames.Udp4());
        Assert.Equal(IpProtocols.Udp, u.NwProto);
        Assert.Equal(5353, u.TpSrc);
        Assert.Equal(53, u.TpDst);
        Assert.Equal(0, u.TcpFlags);

        var i = Ok(Frames.Icmp4());
        Assert.Equal(IpProtocols.Icmp, i.NwProto);
        Assert.Equal(IcmpHeader.EchoRequest, i.TpSrc);
        Assert.Equal(0, i.TpDst);
        Assert.Contains("icmp_type=8,icmp_code=0", FlowKeyFormat.Format(i));
    }

    [Fact]
    public void VxlanOuterHeaders()
    {
        var k = Ok(Frames.Vxlan());
        Assert.Equal(IpProtocols.Udp, k.NwProto);
        Assert.Equal(VxlanHeader.UdpPort, k.TpDst);
    }

    [Fact]
    public void Fragments()
    {
        var first = Ok(Frames.FirstFragment());
        Assert.Equal(1, first.NwFrag);
        Assert.Equal(7, first.TpSrc);

        var later = Frames.IPv4(IpProtocols.Udp, 16, (b, o) => b.AsSpan(o, 16).Fill(0xFF), fragOffset: 3);
        var k = Ok(later); // garbage where a UDP header would be: not parsed
        Assert.Equal(2, k.NwFrag);
        Assert.Equal(IpProtocols.Udp, k.NwProto);
        Assert.Equal(0, k.TpSrc);
        Assert.Contains("nw_frag=later", FlowKeyFormat.Format(k));
    }

    [Fact]
    public void Tcp6ThroughHopByHop()
    {
        var k = Ok(Frames.Tcp6(hopByHop: true));
        Assert.Equal(EtherTypes.IPv6, k.DlType);
        Assert.Equal(Frames.Ip6a, k.NwSrc);
        Assert.Equal(Frames.Ip6b, k.NwDst);
        Assert.Equal(IpProtocols.Tcp, k.NwProto);
        Assert.Equal(0xB8, k.NwTos);
        Assert.Equal(64, k.NwTtl);
        Assert.Equal(1234, k.TpSrc);
        Assert.Equal(443, k.TpDst);
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, k.TcpFlags);
        Assert.Contains("ipv6,ipv6_src=2001:db8::1,ipv6_dst=2001:db8::2,nw_proto=6", FlowKeyFormat.Format(k));
    }

    [Fact]
    public void Udp6AndIcmp6()
    {
        var u = Ok(Frames.Udp6());
        Assert.Equal(IpProtocols.Udp, u.NwProto);
        Assert.Equal(546, u.TpSrc);
        Assert.Equal(547, u.TpDst);

        var i = Ok(Frames.Icmp6());
        Assert.Equal(IpProtocols.IcmpV6, i.NwProto);
        Assert.Equal(IcmpV6Header.EchoRequest, i.TpSrc);
        Assert.Contains("icmpv6_type=128,icmpv6_code=0", FlowKeyFormat.Format(i));
    }

    [Fact]
    public void IPv6LaterFragmentStopsAtFragmentHeader()
    {
        var b = Frames.IPv6(IPv6Extensions.Fragment, 8 + 8, (f, o) =>
        {
            f[o] = IpProtocols.Udp;
            BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(o + 2), 100 << 3);
        });
        var k = Ok(b);
        Assert.Equal(2, k.NwFrag);
        Assert.Equal(IpProtocols.Udp, k.NwProto);
        Assert.Equal(0, k.TpSrc);
    }

    [Fact]
    public void UnknownEtherTypeFillsL2Only()
    {
        var b = new byte[60];
        EthernetHeader.Write(b, new(Frames.Dst, Frames.Src, 0x88CC));
        var k = Ok(b);
        Assert.Equal(0x88CC, k.DlType);
        Assert.Equal(Frames.Src, k.DlSrc);
        Assert.Equal((UInt128)0, k.NwSrc);
        Assert.EndsWith("dl_type=0x88cc", FlowKeyFormat.Format(k));
    }

    [Fact]
    public void PacketOverloadUsesInPort()
    {
        var pool = new PacketPool(4, 2048, 64);
        var p = pool.TryRent()!;
        var frame = Frames.Udp4();
        p.CopyFrom(frame);
        p.InPort = 9;
        Assert.Equal(DropReason.None, Classify.Extract(p));
        Assert.Equal(9, p.Key.InPort);
        Assert.Equal(53, p.Key.TpDst);
        p.Release();
    }

    [Fact]
    public void ExtractAllocatesNothing()
    {
        var frames = Frames.All();
        var key = default(FlowKey);
        foreach (var f in frames) Classify.Extract(f, 1, ref key); // warm up
        SteadyStateAllocations.AssertNone(SteadyStateAllocations.Measure(rounds =>
        {
            for (int i = 0; i < rounds; i++)
                foreach (var f in frames) Classify.Extract(f, 1, ref key);
        }, 1000));
    }

    // --- each drop reason from a crafted frame ---

    private static byte[] Patch(byte[] frame, int at, params byte[] bytes)
    {
        bytes.CopyTo(frame, at);
        return frame;
    }

    private static byte[] Cut(byte[] frame, int length) => frame.AsSpan(0, length).ToArray();

    [Fact]
    public void DropReasonsFromCraftedFrames()
    {
        Assert.Equal(DropReason.RuntFrame, Reason(new byte[10]));
        Assert.Equal(DropReason.TruncatedVlan, Reason(Cut(Frames.Arp(tags: 1), 16)));
        Assert.Equal(DropReason.TruncatedVlan, Reason(Cut(Frames.Arp(tags: 2, qinq: true), 20)));
        Assert.Equal(DropReason.TruncatedArp, Reason(Cut(Frames.Arp(), 14 + 27)));
        Assert.Equal(DropReason.BadArp, Reason(Patch(Frames.Arp(), 14 + 4, 8)));          // hardware length 8
        Assert.Equal(DropReason.TruncatedIPv4, Reason(Cut(Frames.Udp4(), 14 + 19)));
        Assert.Equal(DropReason.BadIpVersion, Reason(Patch(Frames.Udp4(), 14, 0x65)));
        Assert.Equal(DropReason.BadIhl, Reason(Patch(Frames.Udp4(), 14, 0x44)));
        Assert.Equal(DropReason.TruncatedIPv4, Reason(Cut(Patch(Frames.Udp4(), 14, 0x4F), 14 + 40)));
        Assert.Equal(DropReason.BadIpTotalLength, Reason(Patch(Frames.Udp4(), 14 + 2, 0x05, 0xDC)));  // 1500 > frame
        Assert.Equal(DropReason.BadIpTotalLength, Reason(Patch(Frames.Udp4(), 14 + 2, 0x00, 0x10)));  // 16 < IHL*4
        Assert.Equal(DropReason.TruncatedIPv6, Reason(Cut(Frames.Udp6(), 14 + 39)));
        Assert.Equal(DropReason.BadIpVersion, Reason(Patch(Frames.Udp6(), 14, 0x40)));
        Assert.Equal(DropReason.BadIPv6PayloadLength, Reason(Patch(Frames.Udp6(), 14 + 4, 0x01, 0x00)));
        Assert.Equal(DropReason.TruncatedIPv6, Reason(Patch(Frames.Udp6(), 14 + 6, IPv6Extensions.Routing))); // ext header claims 8*(len+1) > payload
        Assert.Equal(DropReason.TruncatedTcp, Reason(Patch(Frames.Tcp4(), 14 + 2, 0x00, 20 + 19)));
        Assert.Equal(DropReason.BadTcpOffset, Reason(Patch(Frames.Tcp4(), 14 + 20 + 12, 0x40)));
        Assert.Equal(DropReason.TruncatedTcp, Reason(Patch(Frames.Tcp4(), 14 + 20 + 12, 0xF0)));  // 60-byte header in 20
        Assert.Equal(DropReason.TruncatedUdp, Reason(Patch(Frames.Udp4(), 14 + 2, 0x00, 20 + 7)));
        Assert.Equal(DropReason.BadUdpLength, Reason(Patch(Frames.Udp4(), 14 + 20 + 4, 0x00, 0x04)));
        Assert.Equal(DropReason.BadUdpLength, Reason(Patch(Frames.Udp4(), 14 + 20 + 4, 0x00, 0x40)));
        Assert.Equal(DropReason.TruncatedIcmp, Reason(Patch(Frames.Icmp4(), 14 + 2, 0x00, 20 + 7)));
        Assert.Equal(DropReason.TruncatedIcmp, Reason(Patch(Frames.Icmp6(), 14 + 4, 0x00, 0x07)));
    }

    [Fact]
    public void EthernetPaddingAfterDatagramIsFine()
    {
        var b = Frames.Udp4(payload: 0); // 42 bytes of headers in a 60-byte minimum frame
        Assert.Equal(60, b.Length);
        Assert.Equal(53, Ok(b).TpDst);
    }

    // --- robustness: nothing throws, whatever the bytes ---

    [Fact]
    public void RandomBytesNeverThrow() =>
        Gen.Byte.Array[0, 2048].Sample(b => ExtractAndViewAll(b), iter: 3000);

    [Fact]
    public void TruncationsOfValidFramesNeverThrow()
    {
        foreach (var frame in Frames.All())
            for (int n = 0; n <= frame.Length; n++)
                ExtractAndViewAll(Cut(frame, n));
    }

    [Fact]
    public void MutationsOfValidFramesNeverThrow()
    {
        var frames = Frames.All();
        Gen.Select(Gen.Int[0, frames.Length - 1], Gen.Int[0, 8].SelectMany(n => Gen.Select(Gen.Int[0, 127], Gen.Byte).Array[n]), Gen.Int[0, 2048])
           .Sample((which, edits, length) =>
        {
            var b = (byte[])frames[which].Clone();
            foreach (var (at, value) in edits) if (at < b.Length) b[at] = value;
            ExtractAndViewAll(Cut(b, Math.Min(length, b.Length)));
        }, iter: 20000);
    }

    private static void ExtractAndViewAll(byte[] b)
    {
        var key = default(FlowKey);
        var reason = Classify.Extract(b, 1, ref key);
        Assert.True(reason < DropReason.Count);
        var s = b.AsSpan();
        // Each view at a few offsets: every checked factory must reject, not throw.
        for (int o = 0; o <= Math.Min(s.Length, 64); o += 2)
        {
            var t = s[o..];
            if (EthernetHeader.TryCreate(t, out var eth)) _ = eth.Payload.Length + eth.EtherType;
            if (VlanTag.TryCreate(t, out var vlan)) _ = vlan.Payload.Length + vlan.VlanId;
            if (ArpPacket.TryCreate(t, out var arp)) _ = arp.ToFields();
            if (IPv4Header.TryCreate(t, out var v4)) _ = v4.Payload.Length + v4.Options.Length + v4.ToFields().Ttl;
            if (IPv6Header.TryCreate(t, out var v6)) _ = v6.Payload.Length + v6.ToFields().HopLimit;
            if (IcmpHeader.TryCreate(t, out var icmp)) _ = icmp.Payload.Length + icmp.ToFields().Type;
            if (IcmpV6Header.TryCreate(t, out var icmp6)) _ = icmp6.Payload.Length + icmp6.ToFields().Type;
            if (UdpHeader.TryCreate(t, out var udp)) _ = udp.Payload.Length + udp.Length;
            if (TcpHeader.TryCreate(t, out var tcp)) _ = tcp.Payload.Length + tcp.Options.Length + tcp.ToFields().Flags;
            if (VxlanHeader.TryCreate(t, out var vx)) _ = vx.Payload.Length + (int)vx.Vni;
            IPv6Extensions.Walk(t, (byte)(o % 3 == 0 ? IPv6Extensions.HopByHop : IPv6Extensions.Fragment), out _, out int off, out _);
            Assert.InRange(off, 0, t.Length);
        }
    }
}

public class FlowKeyLayoutTests
{
    [Fact]
    public void Flow_key_is_96_bytes_as_equals_and_hash_assume()
    {
        Assert.Equal(VSwitch.Core.Flow.FlowKey.Size, System.Runtime.CompilerServices.Unsafe.SizeOf<VSwitch.Core.Flow.FlowKey>());
    }

    [Fact]
    public void Equal_keys_hash_alike_and_one_changed_field_changes_both()
    {
        var a = new VSwitch.Core.Flow.FlowKey { InPort = 1, DlSrc = 2, DlDst = 3, NwSrc = 4, NwDst = 5, TpSrc = 6, TpDst = 7 };
        var b = a;
        Assert.True(a.Equals(in b));
        Assert.Equal(a.Hash64(), b.Hash64());
        var seen = new HashSet<ulong>();
        for (int i = 0; i < 96 * 8; i++)
        {
            var c = a;
            var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(new Span<VSwitch.Core.Flow.FlowKey>(ref c));
            bytes[i / 8] ^= (byte)(1 << (i % 8));
            Assert.False(a.Equals(in c));
            seen.Add(c.Hash64());
        }
        Assert.Equal(96 * 8, seen.Count); // every single-bit change gives a different hash
    }
}
