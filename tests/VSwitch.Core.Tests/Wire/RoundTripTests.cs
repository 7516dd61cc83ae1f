using CsCheck;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Wire;
using VSwitch.Overlay.Wire;
using Xunit;

namespace VSwitch.Core.Tests;

/// <summary>Every view: write random fields with its writer, parse the bytes back, get the same fields.</summary>
public class RoundTripTests
{
    private const long Iter = 2000;
    private static readonly Gen<ulong> Mac = Gen.ULong[0, MacAddress.Mask];
    private static readonly Gen<UInt128> Ip6 = Gen.Select(Gen.ULong, Gen.ULong, (h, l) => new UInt128(h, l));
    private static readonly Gen<byte[]> Options = Gen.Int[0, 10].SelectMany(n => Gen.Byte.Array[n * 4]);

    [Fact]
    public void Ethernet() =>
        Gen.Select(Mac, Mac, Gen.UShort, (d, s, t) => new EthernetFields(d, s, t)).Sample(f =>
        {
            var b = new byte[EthernetHeader.HeaderLength + 3];
            EthernetHeader.Write(b, f);
            Assert.True(EthernetHeader.TryCreate(b, out var v));
            Assert.Equal(f, v.ToFields());
            Assert.Equal(3, v.Payload.Length);
        }, iter: Iter);

    [Fact]
    public void Vlan() =>
        Gen.Select(Gen.Byte[0, 7], Gen.Bool, Gen.UShort[0, 4095], Gen.UShort, (p, d, id, t) => new VlanFields(p, d, id, t)).Sample(f =>
        {
            var b = new byte[VlanTag.HeaderLength];
            VlanTag.Write(b, f);
            Assert.True(VlanTag.TryCreate(b, out var v));
            Assert.Equal(f, v.ToFields());
        }, iter: Iter);

    [Fact]
    public void Arp() =>
        Gen.Select(Gen.UShort, Mac, Gen.UInt, Mac, Gen.UInt, (op, sha, spa, tha, tpa) => new ArpFields(op, sha, spa, tha, tpa)).Sample(f =>
        {
            var b = new byte[ArpPacket.PacketLength];
            ArpPacket.Write(b, f);
            Assert.True(ArpPacket.TryCreate(b, out var v));
            Assert.Equal(f, v.ToFields());
        }, iter: Iter);

    private static readonly Gen<IPv4Fields> IPv4Gen =
        Gen.Select(Gen.Byte, Gen.UShort, Gen.Bool, Gen.Bool, Gen.UShort[0, 0x1FFF], Gen.Byte, Gen.Byte, Gen.Select(Gen.UInt, Gen.UInt))
           .Select(t => new IPv4Fields(t.Item1, t.Item2, t.Item3, t.Item4, t.Item5, t.Item6, t.Item7, t.Item8.Item1, t.Item8.Item2));

    [Fact]
    public void IPv4() =>
        Gen.Select(IPv4Gen, Options, Gen.Int[0, 64]).Sample((f, options, payload) =>
        {
            var b = new byte[20 + options.Length + payload + 6]; // + Ethernet-style padding
            IPv4Header.Write(b, f, payload, options);
            Assert.True(IPv4Header.TryCreate(b, out var v));
            Assert.Equal(f, v.ToFields());
            Assert.Equal(options, v.Options.ToArray());
            Assert.Equal(payload, v.Payload.Length);
            Assert.Equal(5 + options.Length / 4, v.Ihl);
            Assert.True(v.VerifyChecksum());
        }, iter: Iter);

    [Fact]
    public void IPv6() =>
        Gen.Select(Gen.Byte, Gen.UInt[0, 0xFFFFF], Gen.Byte, Gen.Byte, Ip6, Ip6, Gen.Int[0, 64])
           .Sample((tc, flow, nh, hl, s, d, payload) =>
        {
            var f = new IPv6Fields(tc, flow, nh, hl, s, d);
            var b = new byte[40 + payload + 2];
            IPv6Header.Write(b, f, payload);
            Assert.True(IPv6Header.TryCreate(b, out var v));
            Assert.Equal(f, v.ToFields());
            Assert.Equal(payload, v.Payload.Length);
        }, iter: Iter);

    [Fact]
    public void Icmp() =>
        Gen.Select(Gen.Byte, Gen.Byte, Gen.UInt, Gen.Byte.Array[0, 40]).Sample((t, c, rest, data) =>
        {
            var b = new byte[8 + data.Length];
            data.CopyTo(b, 8);
            var w = IcmpHeader.Write(b, new(t, c, rest));
            w.FillChecksum();
            Assert.True(IcmpHeader.TryCreate(b, out var v));
            Assert.Equal(new IcmpFields(t, c, rest), v.ToFields());
            Assert.True(v.VerifyChecksum());
        }, iter: Iter);

    [Fact]
    public void IcmpV6() =>
        Gen.Select(Gen.Byte, Gen.Byte, Gen.UInt, Ip6, Ip6).Sample((t, c, rest, s, d) =>
        {
            var b = new byte[12];
            IcmpV6Header.Write(b, new(t, c, rest)).FillChecksum(s, d);
            Assert.True(IcmpV6Header.TryCreate(b, out var v));
            Assert.Equal(new IcmpV6Fields(t, c, rest), v.ToFields());
            Assert.True(v.VerifyChecksum(s, d));
        }, iter: Iter);

    [Fact]
    public void Udp() =>
        Gen.Select(Gen.UShort, Gen.UShort, Gen.Int[0, 64], Gen.UInt, Gen.UInt, Ip6, Ip6).Sample((sp, dp, payload, s4, d4, s6, d6) =>
        {
            var b = new byte[8 + payload + 4];
            var w = UdpHeader.Write(b, new(sp, dp), payload);
            w.FillChecksum(s4, d4);
            Assert.True(UdpHeader.TryCreate(b, out var v));
            Assert.Equal(new UdpFields(sp, dp), v.ToFields());
            Assert.Equal(payload, v.Payload.Length);
            Assert.True(v.VerifyChecksum(s4, d4));
            v.FillChecksum(s6, d6);
            Assert.True(v.VerifyChecksum(s6, d6));
        }, iter: Iter);

    [Fact]
    public void Tcp() =>
        Gen.Select(Gen.Select(Gen.UShort, Gen.UShort, Gen.UInt, Gen.UInt, Gen.UShort[0, TcpFlags.Mask], Gen.UShort, Gen.UShort), Options, Gen.UInt, Gen.UInt)
           .Sample((t, options, s, d) =>
        {
            var f = new TcpFields(t.Item1, t.Item2, t.Item3, t.Item4, t.Item5, t.Item6, t.Item7);
            var b = new byte[20 + options.Length + 5];
            TcpHeader.Write(b, f, options).FillChecksum(s, d);
            Assert.True(TcpHeader.TryCreate(b, out var v));
            Assert.Equal(f, v.ToFields());
            Assert.Equal(options, v.Options.ToArray());
            Assert.Equal(5, v.Payload.Length);
            Assert.True(v.VerifyChecksum(s, d));
        }, iter: Iter);

    [Fact]
    public void Vxlan() =>
        Gen.UInt[0, VxlanHeader.MaxVni].Sample(vni =>
        {
            var b = new byte[VxlanHeader.HeaderLength];
            VxlanHeader.Write(b, vni);
            Assert.True(VxlanHeader.TryCreate(b, out var v));
            Assert.Equal(vni, v.Vni);
            Assert.Equal(VxlanHeader.FlagVniValid, v.Flags);
        }, iter: Iter);

    [Fact]
    public void VxlanWithoutIFlagIsRejected()
    {
        var b = new byte[8];
        Assert.False(VxlanHeader.TryCreate(b, out _, out var reason));
        Assert.Equal(DropReason.BadTunnelHeader, reason);
        Assert.False(VxlanHeader.TryCreate(b.AsSpan(0, 7), out _, out reason));
        Assert.Equal(DropReason.TruncatedTunnelHeader, reason);
    }
}
