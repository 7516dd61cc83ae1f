using BenchmarkDotNet.Attributes;
using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;

namespace VSwitch.Benchmarks;

/// <summary>
/// Parse + classify (<see cref="Classify.Extract(Packet)"/>) of one 64-byte frame into its FlowKey.
/// A batch of 32 pooled packets holding the frame is classified <see cref="Rounds"/> times per
/// invocation; ns/op is ns per packet.
/// </summary>
[MemoryDiagnoser]
public class ClassifyBenchmarks
{
    private const int BatchSize = 32;
    private const int Rounds = 32;
    private const int PacketsPerInvoke = BatchSize * Rounds;

    private PacketPool _pool = null!;
    private Packet[] _udp = null!, _tcp = null!, _vlan = null!, _arp = null!;

    [GlobalSetup]
    public void Setup()
    {
        _pool = new PacketPool(4 * BatchSize);
        ulong a = Frames.Mac(1), b = Frames.Mac(2);
        _udp = Load(Frames.Udp(b, a));
        _tcp = Load(Frames.Tcp(b, a));
        _vlan = Load(Frames.VlanUdp(b, a, 100));
        _arp = Load(Frames.Arp(a));
        // Every frame must classify cleanly, or we would be timing the drop path.
        foreach (var set in new[] { _udp, _tcp, _vlan, _arp })
            foreach (var p in set)
                if (Classify.Extract(p) != DropReason.None) throw new InvalidOperationException("test frame does not classify");
    }

    private Packet[] Load(byte[] frame)
    {
        var ps = new Packet[BatchSize];
        for (int i = 0; i < ps.Length; i++)
        {
            var p = _pool.TryRent()!;
            p.CopyFrom(frame);
            p.InPort = 1;
            ps[i] = p;
        }
        return ps;
    }

    private static int Run(Packet[] packets)
    {
        int acc = 0;
        for (int r = 0; r < Rounds; r++)
            foreach (var p in packets)
                acc += (int)Classify.Extract(p);
        return acc;
    }

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke, Baseline = true)]
    public int UdpIPv4() => Run(_udp);

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke)]
    public int TcpIPv4() => Run(_tcp);

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke)]
    public int VlanUdpIPv4() => Run(_vlan);

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke)]
    public int Arp() => Run(_arp);
}
