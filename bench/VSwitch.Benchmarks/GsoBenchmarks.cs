using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports.Offload;
using VSwitch.Core.Wire;

namespace VSwitch.Benchmarks;

/// <summary>
/// The per-super-frame work of keeping TCP whole (Ports/Offload/README.md), in memory. One op is one
/// 64 KB super-frame (45 segments of MSS 1448, Ethernet/IPv4/TCP with timestamps):
/// <list type="bullet">
/// <item>Checksum64K: <c>Checksum.Sum</c> over 65 000 bytes (what completing or verifying costs).</item>
/// <item>Segment: software GSO, all 45 segments written with full checksums (egress to a port without
/// TSO, and the VXLAN send).</item>
/// <item>Coalesce: software GRO: the 45 segments copied into pool packets (as a receive would put
/// them there), then joined back into one super-frame, every segment's checksum verified (the
/// VXLAN receive).</item>
/// </list>
/// </summary>
[MemoryDiagnoser]
public class GsoBenchmarks
{
    private const int Mss = 1448;
    private byte[] _frame = null!;
    private byte[] _dest = null!;
    private TcpGsoLayout _layout;
    private byte[][] _segments = null!;
    private PacketPool _pool = null!;
    private PacketBatch _batch = null!;
    private readonly TcpCoalescer _gro = new();

    [GlobalSetup]
    public void Setup()
    {
        const int payload = 45 * Mss - 100, tcpLen = 32;
        _frame = new byte[14 + 20 + tcpLen + payload];
        var f = _frame.AsSpan();
        f[0] = 2; f[5] = 2; f[6] = 2; f[11] = 1; f[12] = 0x08;
        f[14] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(f[16..], (ushort)(20 + tcpLen + payload));
        f[20] = 0x40; f[22] = 64; f[23] = 6;
        f[26] = 10; f[29] = 1; f[30] = 10; f[33] = 2;
        f[46] = (tcpLen / 4) << 4; f[47] = 0x10;
        f[54] = 1; f[55] = 1; f[56] = 8; f[57] = 10;
        new Random(1).NextBytes(f[66..]);
        BinaryPrimitives.WriteUInt16BigEndian(f[50..], Checksum.PseudoHeaderIPv4(0x0A000001, 0x0A000002, 6, tcpLen + payload));
        if (!TcpSegmenter.TryParse(_frame, Mss, out _layout)) throw new InvalidOperationException("frame does not parse");
        _dest = new byte[2048];
        _segments = new byte[_layout.SegmentCount][];
        for (int i = 0; i < _segments.Length; i++)
        {
            var buf = new byte[2048];
            _segments[i] = buf[..TcpSegmenter.WriteSegment(_frame, _layout, i, buf)];
        }
        _pool = new PacketPool(256) { Large = new PacketPool(4, PacketPool.LargeFrameSize) };
        _batch = new PacketBatch(PacketBatch.MaxSize);
    }

    [Benchmark]
    public ushort Checksum64K() => Checksum.Sum(_frame.AsSpan(0, 65000));

    [Benchmark]
    public int Segment()
    {
        int total = 0;
        for (int i = 0; i < _layout.SegmentCount; i++) total += TcpSegmenter.WriteSegment(_frame, _layout, i, _dest);
        return total;
    }

    [Benchmark]
    public int Coalesce()
    {
        foreach (var s in _segments)
        {
            var p = _pool.TryRent()!;
            p.CopyFrom(s);
            _batch.Add(p);
        }
        _gro.Coalesce(_batch, 0, _pool);
        int n = _batch.Count;
        if (n != 1) throw new InvalidOperationException($"expected one super-frame, got {n}");
        _batch.ReleaseAll();
        return n;
    }
}
