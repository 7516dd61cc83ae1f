using System.Buffers.Binary;
using VSwitch.Core.Buffers;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Ports;
using VSwitch.Core.Ports.Linux;
using VSwitch.Core.Ports.Offload;
using Xunit;

namespace VSwitch.Core.Tests;

/// <summary>
/// TCP super-frames kept whole through the pipeline: passed whole to a port that takes GSO,
/// segmented in software (valid checksums, payload intact) for one that does not, and no buffer
/// of either pool leaked.
/// </summary>
public class GsoTests
{
    private const byte Ack = 0x10, Psh = 0x08;

    private sealed class Rig
    {
        public readonly Datapath Dp = new();
        public readonly PacketPool Pool = new(1024);
        public readonly DatapathContext Ctx;

        public Rig()
        {
            Pool.Large = new PacketPool(8, PacketPool.LargeFrameSize);
            Ctx = Dp.CreateContext(Pool);
            Dp.AddNetwork("n");
        }

        public (MemoryPort Io, int Id) Add(string name, bool acceptsGso)
        {
            var io = new MemoryPort(name) { AcceptsGso = acceptsGso };
            return (io, Dp.AddPort(io, "n").Id);
        }

        public void Receive((MemoryPort Io, int Id) port)
        {
            var batch = new PacketBatch();
            port.Io.Receive(batch, Pool);
            Datapath.CountReceive(batch, Ctx, port.Id);
            Dp.ProcessBatch(batch, Ctx, 0);
        }
    }

    /// <summary>A small frame from b (MAC 02:..:02) so that the switch learns where the super-frame's destination is.</summary>
    private static byte[] FromB()
    {
        var f = OffloadTests.TcpV4Frame(10, Ack);
        f.AsSpan(0, 6).CopyTo(f.AsSpan(6, 6));
        f[5] = 0x01; // dst 02:00:00:00:00:01, src 02:00:00:00:00:02
        f[11] = 0x02;
        return f;
    }

    [Fact]
    public void Super_frame_passes_whole_to_a_port_that_takes_GSO()
    {
        var rig = new Rig();
        var a = rig.Add("a", acceptsGso: true);
        var b = rig.Add("b", acceptsGso: true);
        b.Io.Inject(FromB());
        rig.Receive(b);
        a.Io.Sent.Clear();

        var frame = OffloadTests.TcpV4Frame(60000, Ack | Psh);
        a.Io.InjectGso(frame, 1448);
        rig.Receive(a);

        var sent = Assert.Single(b.Io.Sent);
        Assert.Equal(frame, sent);
        Assert.Equal((ushort)1448, b.Io.SentGsoSizes.Single());
        Assert.Equal(rig.Pool.Capacity, rig.Pool.Available);
        Assert.Equal(rig.Pool.Large!.Capacity, rig.Pool.Large.Available);
    }

    [Fact]
    public void Super_frame_is_segmented_for_a_port_without_GSO_and_its_virtio_header_is_rebuilt_for_one_with()
    {
        var rig = new Rig();
        var a = rig.Add("a", acceptsGso: true);
        var b = rig.Add("b", acceptsGso: false);
        var c = rig.Add("c", acceptsGso: true);
        // Unknown destination: flooded to b (segments) and c (whole copy from the large pool).
        var frame = OffloadTests.TcpV4Frame(10000, Ack | Psh);
        a.Io.InjectGso(frame, 1448);
        rig.Receive(a);

        Assert.Equal(7, b.Io.Sent.Count);
        Assert.All(b.Io.SentGsoSizes, s => Assert.Equal((ushort)0, s));
        var payload = new List<byte>();
        for (int i = 0; i < 7; i++)
        {
            var seg = b.Io.Sent[i];
            Assert.True(seg.Length <= 1514, $"segment {i} is {seg.Length} bytes");
            var ip = seg.AsSpan(14, 20);
            Assert.Equal(0xFFFF, OffloadTests.RefSum(ip.ToArray()));
            var tcp = seg.AsSpan(34);
            Assert.Equal(0xFFFF, OffloadTests.RefSum(OffloadTests.PseudoV4(ip, 6, tcp.Length), tcp.ToArray()));
            Assert.Equal(1_000_000u + (uint)(i * 1448), BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]));
            payload.AddRange(tcp[32..].ToArray());
        }
        Assert.Equal(frame.AsSpan(66).ToArray(), payload.ToArray());

        var whole = Assert.Single(c.Io.Sent);
        Assert.Equal(frame, whole);
        Assert.Equal((ushort)1448, c.Io.SentGsoSizes.Single());

        // What a TAP or AF_PACKET port writes in front of it.
        var p = rig.Pool.Large!.TryRent()!;
        p.CopyFrom(frame);
        p.GsoSize = 1448;
        p.GsoType = VirtioNetHdr.GSO_TCPV4;
        Assert.True(GsoFrame.TryBuildHeader(p, out var h));
        Assert.Equal(VirtioNetHdr.F_NEEDS_CSUM, h.Flags);
        Assert.Equal(VirtioNetHdr.GSO_TCPV4, h.GsoType);
        Assert.Equal((ushort)1448, h.GsoSize);
        Assert.Equal((ushort)66, h.HdrLen);
        Assert.Equal((ushort)34, h.CsumStart);
        Assert.Equal((ushort)16, h.CsumOffset);
        Assert.Equal(1500, GsoFrame.NetworkLength(p, 14));
        p.Release();

        Assert.Equal(rig.Pool.Capacity, rig.Pool.Available);
        Assert.Equal(rig.Pool.Large.Capacity, rig.Pool.Large.Available);
    }

    [Fact]
    public void Delivery_keeps_a_TCP_super_frame_whole_only_when_there_is_a_large_pool()
    {
        var frame = OffloadTests.TcpV4Frame(20000, Ack);
        var vnet = new VirtioNetHdr
        {
            Flags = VirtioNetHdr.F_NEEDS_CSUM, GsoType = VirtioNetHdr.GSO_TCPV4, GsoSize = 1448,
            HdrLen = 66, CsumStart = 34, CsumOffset = 16,
        };
        var pool = new PacketPool(64);
        var batch = new PacketBatch(64);
        var d = new VnetDelivery();
        Assert.True(d.Deliver(in vnet, 34, frame, batch, pool));
        Assert.Equal(14, batch.Count);                      // no large pool: segmented
        Assert.All(batch.AsSpan().ToArray(), p => Assert.Equal((ushort)0, p.GsoSize));
        batch.ReleaseAll();

        pool.Large = new PacketPool(2, PacketPool.LargeFrameSize);
        Assert.True(d.Deliver(in vnet, 34, frame, batch, pool));
        var whole = Assert.Single(batch.AsSpan().ToArray());
        Assert.Same(pool.Large, whole.Pool);
        Assert.Equal((ushort)1448, whole.GsoSize);
        Assert.Equal(frame, whole.Data.ToArray());
        Assert.Equal(1, d.GsoWhole);
        batch.ReleaseAll();

        // Without a partial checksum the switch cannot hand it on as GSO: segmented.
        var noCsum = vnet with { Flags = 0 };
        Assert.True(d.Deliver(in noCsum, 34, frame, batch, pool));
        Assert.Equal(14, batch.Count);
        batch.ReleaseAll();
        Assert.Equal(pool.Capacity, pool.Available);
        Assert.Equal(2, pool.Large.Available);
    }
}

/// <summary>Software GRO (the VXLAN port's receive side): segments in, super-frames out, and back.</summary>
public class TcpCoalescerTests
{
    private const byte Ack = 0x10, Psh = 0x08;

    private static List<byte[]> Segments(byte[] frame, int mss)
    {
        Assert.True(TcpSegmenter.TryParse(frame, mss, out var g));
        var list = new List<byte[]>();
        for (int i = 0; i < g.SegmentCount; i++)
        {
            var buf = new byte[2048];
            int n = TcpSegmenter.WriteSegment(frame, g, i, buf);
            list.Add(buf[..n]);
        }
        return list;
    }

    private static PacketBatch Batch(PacketPool pool, IEnumerable<byte[]> frames)
    {
        var b = new PacketBatch(64);
        foreach (var f in frames)
        {
            var p = pool.TryRent()!;
            p.CopyFrom(f);
            p.TunnelId = 42;
            p.TunnelRemote = 0x0A000002;
            b.Add(p);
        }
        return b;
    }

    private static PacketPool Pools()
    {
        var pool = new PacketPool(256);
        pool.Large = new PacketPool(4, PacketPool.LargeFrameSize);
        return pool;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Segments_join_into_one_super_frame_that_segments_back_into_the_same_frames(bool ipv6)
    {
        var frame = ipv6 ? OffloadTests.TcpV6Frame(20000, Ack | Psh, 5000) : OffloadTests.TcpV4Frame(20000, Ack | Psh);
        var segs = Segments(frame, 1448);
        var pool = Pools();
        var batch = Batch(pool, segs);
        var gro = new TcpCoalescer();
        gro.Coalesce(batch, 0, pool);

        var p = Assert.Single(batch.AsSpan().ToArray());
        Assert.Same(pool.Large, p.Pool);
        Assert.Equal((ushort)1448, p.GsoSize);
        Assert.Equal(ipv6 ? VirtioNetHdr.GSO_TCPV6 : VirtioNetHdr.GSO_TCPV4, p.GsoType);
        Assert.Equal(frame.Length, p.Length);
        Assert.Equal((uint)42, p.TunnelId);
        Assert.Equal(segs.Count - 1, gro.SegmentsJoined);
        Assert.Equal(1, gro.SuperFrames);
        Assert.Equal(Segments(frame, 1448), Segments(p.Data.ToArray(), 1448));
        // What a TAP writes in front of it is valid too.
        Assert.True(GsoFrame.TryBuildHeader(p, out var h));
        Assert.Equal(VirtioNetHdr.F_NEEDS_CSUM, h.Flags);
        batch.ReleaseAll();
        Assert.Equal(pool.Capacity, pool.Available);
        Assert.Equal(pool.Large!.Capacity, pool.Large.Available);
    }

    [Fact]
    public void A_bad_checksum_a_gap_or_another_frame_ends_a_run_and_order_is_kept()
    {
        var frame = OffloadTests.TcpV4Frame(10 * 1000, Ack);
        var segs = Segments(frame, 1000);   // 10 segments
        segs[3][^1] ^= 0xFF;                 // corrupt segment 3's payload
        var arp = new byte[60]; arp[12] = 0x08; arp[13] = 0x06;
        var frames = new List<byte[]> { segs[0], segs[1], segs[2], segs[3], segs[4], segs[5], arp, segs[6], segs[8], segs[9] };
        var pool = Pools();
        var batch = Batch(pool, frames);
        var gro = new TcpCoalescer();
        gro.Coalesce(batch, 0, pool);

        var got = batch.AsSpan().ToArray();
        // [0+1+2] [3 bad] [4+5] [arp] [6] [8+9]
        Assert.Equal(6, got.Length);
        Assert.Equal(frame.Length - 7 * 1000, got[0].Length);
        Assert.Equal((ushort)1000, got[0].GsoSize);
        Assert.Equal(segs[3], got[1].Data.ToArray());
        Assert.Equal((ushort)0, got[1].GsoSize);
        Assert.Equal((ushort)1000, got[2].GsoSize);
        Assert.Equal(arp, got[3].Data.ToArray());
        Assert.Equal(segs[6], got[4].Data.ToArray());
        Assert.Equal((ushort)1000, got[5].GsoSize);
        Assert.Equal(1, gro.BadChecksum);
        Assert.Equal(Segments(got[5].Data.ToArray(), 1000), new List<byte[]> { segs[8], segs[9] });
        batch.ReleaseAll();
        Assert.Equal(pool.Capacity, pool.Available);
        Assert.Equal(pool.Large!.Capacity, pool.Large.Available);
    }
}
