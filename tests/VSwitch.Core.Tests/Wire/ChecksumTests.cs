using System.Buffers.Binary;
using CsCheck;
using VSwitch.Core.Wire;
using Xunit;

namespace VSwitch.Core.Tests;

public class ChecksumTests
{
    [Fact]
    public void Rfc1071Example()
    {
        byte[] data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        Assert.Equal(0xddf2, Checksum.Sum(data));
        Assert.Equal(0x220d, Checksum.Compute(data));
    }

    [Fact]
    public void OddLengthPadsWithZero()
    {
        byte[] odd = [0x12, 0x34, 0x56];
        byte[] even = [0x12, 0x34, 0x56, 0x00];
        Assert.Equal(Checksum.Sum(even), Checksum.Sum(odd));
    }

    // A real IPv4 header (UDP, 192.168.0.1 -> 192.168.0.199), checksum 0xb861.
    private static readonly byte[] RealIPv4 =
        [0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7];

    [Fact]
    public void RealIPv4Header()
    {
        Assert.Equal(0xb861, Checksum.IPv4Header(RealIPv4));
        Assert.True(Checksum.VerifyIPv4Header(RealIPv4));
        var broken = (byte[])RealIPv4.Clone();
        broken[8] = 0x3f;
        Assert.False(Checksum.VerifyIPv4Header(broken));
    }

    // smoltcp's UDP test vector: 192.168.1.1:48896 -> 192.168.1.2:53, payload aa 00 00 ff, checksum 0x124d.
    [Fact]
    public void KnownUdpDatagram()
    {
        byte[] udp = [0xbf, 0x00, 0x00, 0x35, 0x00, 0x0c, 0x12, 0x4d, 0xaa, 0x00, 0x00, 0xff];
        const uint src = 0xC0A80101, dst = 0xC0A80102;
        Assert.True(UdpHeader.TryCreate(udp, out var v));
        Assert.True(v.VerifyChecksum(src, dst));
        v.FillChecksum(src, dst);
        Assert.Equal(0x124d, v.Checksum);
        v.Payload[0] ^= 1;
        Assert.False(v.VerifyChecksum(src, dst));
    }

    private static readonly Gen<byte[]> Header = Gen.Select(Gen.Byte.Array[20], Gen.Int[0, 10]).Select((b, opts) =>
    {
        var h = new byte[20 + opts * 4];
        b.CopyTo(h, 0);
        h[0] = (byte)(0x45 + opts);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(10), Checksum.IPv4Header(h));
        return h;
    });

    [Fact]
    public void IncrementalTtlDecrementEqualsRecompute() =>
        Header.Where(h => h[8] > 1).Sample(h =>
        {
            Assert.True(IPv4Header.TryCreate(WithTotalLength(h), out var ip));
            Assert.True(ip.DecrementTtl());
            Assert.Equal(Checksum.IPv4Header(ip.Buffer[..ip.HeaderLength]), ip.HeaderChecksum);
            Assert.True(ip.VerifyChecksum());
        }, iter: 5000);

    [Fact]
    public void Incremental16BitChangeEqualsRecompute() =>
        Gen.Select(Header, Gen.Int[0, 9], Gen.UShort).Sample((h, word, value) =>
        {
            if (word == 5) return; // the checksum field itself
            var at = h.AsSpan(word * 2);
            ushort old = BinaryPrimitives.ReadUInt16BigEndian(at);
            BinaryPrimitives.WriteUInt16BigEndian(at, value);
            ushort incremental = Checksum.Update(BinaryPrimitives.ReadUInt16BigEndian(h.AsSpan(10)), old, value);
            Assert.Equal(Checksum.IPv4Header(h), incremental);
        }, iter: 5000);

    [Fact]
    public void IncrementalAddressRewriteEqualsRecompute() =>
        Gen.Select(Header, Gen.Bool, Gen.UInt).Sample((h, source, addr) =>
        {
            var at = h.AsSpan(source ? 12 : 16);
            uint old = BinaryPrimitives.ReadUInt32BigEndian(at);
            BinaryPrimitives.WriteUInt32BigEndian(at, addr);
            ushort incremental = Checksum.Update(BinaryPrimitives.ReadUInt16BigEndian(h.AsSpan(10)), old, addr);
            Assert.Equal(Checksum.IPv4Header(h), incremental);
        }, iter: 5000);

    [Fact]
    public void IncrementalTransportRewriteVerifies() =>
        Gen.Select(Gen.UInt, Gen.UInt, Gen.UInt, Gen.Byte.Array[0, 64]).Sample((src, dst, newSrc, payload) =>
        {
            // NAT-style: the pseudo-header's source changes, the TCP checksum is patched, it still verifies.
            var b = new byte[20 + payload.Length];
            payload.CopyTo(b, 20);
            var tcp = TcpHeader.Write(b, new(1, 2, 3, 4, TcpFlags.Ack, 5, 0));
            tcp.FillChecksum(src, dst);
            tcp.Checksum = Checksum.Update(tcp.Checksum, src, newSrc);
            Assert.True(tcp.VerifyChecksum(newSrc, dst));
        }, iter: 2000);

    [Fact]
    public void PseudoHeaderIPv6MatchesByteLayout() =>
        Gen.Select(Gen.ULong, Gen.ULong, Gen.ULong, Gen.ULong, Gen.Int[0, 70000]).Sample((a, b, c, d, len) =>
        {
            UInt128 s = new(a, b), t = new(c, d);
            var ph = new byte[40];
            BinaryPrimitives.WriteUInt128BigEndian(ph, s);
            BinaryPrimitives.WriteUInt128BigEndian(ph.AsSpan(16), t);
            BinaryPrimitives.WriteUInt32BigEndian(ph.AsSpan(32), (uint)len);
            ph[39] = 6;
            Assert.Equal(Checksum.Sum(ph), Checksum.PseudoHeaderIPv6(s, t, 6, len));
        }, iter: 2000);

    private static byte[] WithTotalLength(byte[] h)
    {
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(2), (ushort)h.Length);
        h[0] = (byte)(0x40 | (h.Length / 4));
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(10), 0);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(10), Checksum.IPv4Header(h));
        return h;
    }
}
