using System.Buffers.Binary;
using VSwitch.Core.Ports.Offload;
using Xunit;

namespace VSwitch.Core.Tests;

public class OffloadTests
{
    // Reference ones-complement sum, written the slow obvious way, independent of Wire.Checksum.
    internal static ushort RefSum(params byte[][] parts)
    {
        uint sum = 0;
        foreach (var p in parts)
        {
            for (int i = 0; i < p.Length; i += 2)
                sum += (uint)(p[i] << 8 | (i + 1 < p.Length ? p[i + 1] : 0));
        }
        while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)sum;
    }

    internal static byte[] PseudoV4(ReadOnlySpan<byte> ip, byte proto, int l4Len)
    {
        var b = new byte[12];
        ip.Slice(12, 8).CopyTo(b);
        b[9] = proto;
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(10), (ushort)l4Len);
        return b;
    }

    private static byte[] PseudoV6(ReadOnlySpan<byte> ip, byte proto, int l4Len)
    {
        var b = new byte[40];
        ip.Slice(8, 32).CopyTo(b);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(32), (uint)l4Len);
        b[39] = proto;
        return b;
    }

    /// <summary>An Ethernet/IPv4/TCP frame with timestamps option, as a sender hands it to a TSO device.</summary>
    internal static byte[] TcpV4Frame(int payloadLen, byte flags, uint seq = 1_000_000, ushort ipId = 0x1234)
    {
        const int tcpLen = 32;
        var f = new byte[14 + 20 + tcpLen + payloadLen];
        f[0] = 0x02; f[5] = 0x02; f[6] = 0x02; f[11] = 0x01;
        f[12] = 0x08; f[13] = 0x00;
        var ip = f.AsSpan(14);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(20 + tcpLen + payloadLen));
        BinaryPrimitives.WriteUInt16BigEndian(ip[4..], ipId);
        ip[6] = 0x40; ip[8] = 64; ip[9] = 6;
        ip[12] = 10; ip[13] = 9; ip[14] = 1; ip[15] = 1;
        ip[16] = 10; ip[17] = 9; ip[18] = 1; ip[19] = 2;
        var tcp = f.AsSpan(34);
        BinaryPrimitives.WriteUInt16BigEndian(tcp, 40000);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], 5201);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], seq);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[8..], 777);
        tcp[12] = (tcpLen / 4) << 4;
        tcp[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], 502);
        tcp[20] = 1; tcp[21] = 1; tcp[22] = 8; tcp[23] = 10; // NOP NOP TS
        for (int i = 0; i < payloadLen; i++) f[66 + i] = (byte)(i * 7 + 3);
        // As the kernel leaves it: the pseudo-header sum (not complemented) in the checksum field.
        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], RefSum(PseudoV4(ip, 6, tcpLen + payloadLen)));
        return f;
    }

    internal static byte[] TcpV6Frame(int payloadLen, byte flags, uint seq)
    {
        const int tcpLen = 20;
        var f = new byte[14 + 40 + tcpLen + payloadLen];
        f[12] = 0x86; f[13] = 0xDD;
        var ip = f.AsSpan(14);
        ip[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)(tcpLen + payloadLen));
        ip[6] = 6; ip[7] = 64;
        ip[8] = 0xfd; ip[23] = 1; ip[24] = 0xfd; ip[39] = 2;
        var tcp = f.AsSpan(54);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], seq);
        tcp[12] = (tcpLen / 4) << 4;
        tcp[13] = flags;
        for (int i = 0; i < payloadLen; i++) f[74 + i] = (byte)(i * 13 + 1);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], RefSum(PseudoV6(ip, 6, tcpLen + payloadLen)));
        return f;
    }

    [Fact]
    public void Segments_10000_byte_TCPv4_frame_into_7_valid_segments()
    {
        const byte ACK = 0x10, PSH = 0x08, FIN = 0x01, CWR = 0x80;
        var frame = TcpV4Frame(10000, ACK | PSH | FIN | CWR);
        Assert.True(TcpSegmenter.TryParse(frame, 1448, out var g));
        Assert.Equal(7, g.SegmentCount);
        Assert.Equal(66, g.HeaderLength);

        var payload = new List<byte>();
        for (int i = 0; i < g.SegmentCount; i++)
        {
            var buf = new byte[2048];
            int n = TcpSegmenter.WriteSegment(frame, g, i, buf);
            int expectedPayload = i < 6 ? 1448 : 10000 - 6 * 1448;
            Assert.Equal(66 + expectedPayload, n);
            var seg = buf.AsSpan(0, n);
            var ip = seg[14..34];
            Assert.Equal(n - 14, BinaryPrimitives.ReadUInt16BigEndian(ip[2..]));
            Assert.Equal(0x1234 + i, BinaryPrimitives.ReadUInt16BigEndian(ip[4..]));
            Assert.Equal(0xFFFF, RefSum(ip.ToArray()));                      // IPv4 header checksum
            var tcp = seg[34..];
            Assert.Equal(0xFFFF, RefSum(PseudoV4(ip, 6, tcp.Length), tcp.ToArray())); // TCP checksum
            Assert.Equal(1_000_000u + (uint)(i * 1448), BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]));
            byte flags = tcp[13];
            Assert.True((flags & ACK) != 0);
            Assert.Equal(i == 6, (flags & FIN) != 0);
            Assert.Equal(i == 6, (flags & PSH) != 0);
            Assert.Equal(i == 0, (flags & CWR) != 0);
            Assert.True(seg[..14].SequenceEqual(frame.AsSpan(0, 14)));
            Assert.True(tcp[18..32].SequenceEqual(frame.AsSpan(34 + 18, 14))); // urgent ptr + options intact
            payload.AddRange(tcp[32..].ToArray());
        }
        Assert.Equal(frame.AsSpan(66).ToArray(), payload.ToArray());
    }

    [Fact]
    public void Segments_TCPv6_frame_with_payload_lengths_and_checksums()
    {
        var frame = TcpV6Frame(3000, 0x18, 5);
        Assert.True(TcpSegmenter.TryParse(frame, 1000, out var g));
        Assert.True(g.IsIPv6);
        Assert.Equal(3, g.SegmentCount);
        for (int i = 0; i < 3; i++)
        {
            var buf = new byte[2048];
            int n = TcpSegmenter.WriteSegment(frame, g, i, buf);
            Assert.Equal(74 + 1000, n);
            var ip = buf.AsSpan(14, 40);
            var tcp = buf.AsSpan(54, n - 54);
            Assert.Equal(tcp.Length, BinaryPrimitives.ReadUInt16BigEndian(ip[4..]));
            Assert.Equal(0xFFFF, RefSum(PseudoV6(ip, 6, tcp.Length), tcp.ToArray()));
            Assert.Equal(5u + (uint)(i * 1000), BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]));
            Assert.Equal(i == 2, (tcp[13] & 0x08) != 0);
        }
    }

    [Fact]
    public void Headers_alone_plus_the_payload_in_place_make_the_same_segment_with_an_independent_checksum()
    {
        // An odd payload length, so the last segment's payload ends on an odd byte.
        foreach (var frame in new[] { TcpV4Frame(5001, 0x18), TcpV6Frame(3001, 0x18, 5) })
        {
            Assert.True(TcpSegmenter.TryParse(frame, 1000, out var g));
            for (int i = 0; i < g.SegmentCount; i++)
            {
                var whole = new byte[2048];
                int n = TcpSegmenter.WriteSegment(frame, g, i, whole);
                var gathered = new byte[g.HeaderLength];
                TcpSegmenter.WriteSegmentHeaders(frame, g, i, gathered);
                var payload = TcpSegmenter.Payload(frame, g, i);
                Assert.Equal(n, gathered.Length + payload.Length);
                Assert.Equal(whole.AsSpan(0, g.HeaderLength).ToArray(), gathered);       // WriteSegment is built on it: the reference sum below is the real check
                Assert.Equal(whole.AsSpan(g.HeaderLength, payload.Length).ToArray(), payload.ToArray());
                var tcp = gathered.AsSpan(g.L4Offset).ToArray().Concat(payload.ToArray()).ToArray();
                var ip = gathered.AsSpan(g.L3Offset, g.L4Offset - g.L3Offset);
                var pseudo = g.IsIPv6 ? PseudoV6(ip, 6, tcp.Length) : PseudoV4(ip, 6, tcp.Length);
                Assert.Equal(0xFFFF, RefSum(pseudo, tcp));                              // checked by the reference sum
            }
        }
    }

    [Fact]
    public void Segment_that_does_not_fit_returns_minus_one()
    {
        var frame = TcpV4Frame(4000, 0x10);
        Assert.True(TcpSegmenter.TryParse(frame, 1448, out var g));
        Assert.Equal(-1, TcpSegmenter.WriteSegment(frame, g, 0, new byte[1000]));
    }

    [Fact]
    public void Refuses_non_TCP_and_truncated_frames()
    {
        var udp = TcpV4Frame(100, 0x10);
        udp[14 + 9] = 17;
        Assert.False(TcpSegmenter.TryParse(udp, 1448, out _));
        Assert.False(TcpSegmenter.TryParse(TcpV4Frame(100, 0x10).AsSpan(0, 40), 1448, out _));
        Assert.False(TcpSegmenter.TryParse(TcpV4Frame(100, 0x10), 0, out _));
    }

    [Fact]
    public void Completes_partial_TCP_checksum()
    {
        var frame = TcpV4Frame(1001, 0x18); // odd length on purpose
        Assert.True(ChecksumCompletion.TryComplete(frame, 34, 16));
        var ip = frame.AsSpan(14, 20);
        var tcp = frame.AsSpan(34);
        Assert.Equal(0xFFFF, RefSum(PseudoV4(ip, 6, tcp.Length), tcp.ToArray()));
    }

    [Fact]
    public void Completes_partial_UDP_checksum()
    {
        var f = new byte[14 + 20 + 8 + 333];
        f[12] = 0x08;
        var ip = f.AsSpan(14, 20);
        ip[0] = 0x45; ip[9] = 17; ip[12] = 192; ip[15] = 1; ip[16] = 192; ip[19] = 2;
        var udp = f.AsSpan(34);
        BinaryPrimitives.WriteUInt16BigEndian(udp, 1234);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], 4789);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], (ushort)udp.Length);
        for (int i = 8; i < udp.Length; i++) udp[i] = (byte)(i ^ 0x5a);
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], RefSum(PseudoV4(ip, 17, udp.Length)));
        Assert.True(ChecksumCompletion.TryComplete(f, 34, 6));
        Assert.NotEqual(0, BinaryPrimitives.ReadUInt16BigEndian(udp[6..]));
        Assert.Equal(0xFFFF, RefSum(PseudoV4(ip, 17, udp.Length), udp.ToArray()));
    }

    [Fact]
    public void Completion_refuses_offsets_outside_the_frame()
    {
        var f = new byte[60];
        Assert.False(ChecksumCompletion.TryComplete(f, 50, 16));
        Assert.False(ChecksumCompletion.TryComplete(f, -1, 0));
    }

    [Fact]
    public void Checksum_matches_reference_on_random_data()
    {
        var rnd = new Random(42);
        for (int len = 0; len < 300; len++)
        {
            var b = new byte[len];
            rnd.NextBytes(b);
            Assert.Equal(RefSum(b), VSwitch.Core.Wire.Checksum.Sum(b));
        }
    }

    [Fact]
    public void Checksum_of_long_and_all_ones_buffers_with_an_initial_sum_matches_reference()
    {
        var rnd = new Random(7);
        foreach (int len in new[] { 63, 64, 65, 95, 1500, 1501, 9001, 65535, 65536 + 512 })
        {
            var b = new byte[len];
            rnd.NextBytes(b);
            ushort init = (ushort)rnd.Next(0, 0x10000);
            var initBytes = new[] { (byte)(init >> 8), (byte)init };
            Assert.Equal(RefSum(initBytes, b), VSwitch.Core.Wire.Checksum.Sum(b, init));
            // All 0xFF: the worst case for carries in every lane.
            Array.Fill(b, (byte)0xFF);
            Assert.Equal(RefSum(b), VSwitch.Core.Wire.Checksum.Sum(b));
        }
    }
}
