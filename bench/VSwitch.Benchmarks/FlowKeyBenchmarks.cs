using BenchmarkDotNet.Attributes;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Wire;

namespace VSwitch.Benchmarks;

/// <summary>
/// The two halves of a flow-cache hit, apart: <see cref="FlowKey.Hash64"/> (a serial
/// multiply-rotate chain over the key's 96 bytes, then a murmur3 finaliser) and
/// <see cref="FlowKey.Equals(FlowKey)"/> (a 96-byte compare). 32 different keys, each used
/// <see cref="Rounds"/> times; ns/op is ns per key. Compare with FlowCacheBenchmarks.HashAndLookup
/// (1 flow) to see how much of a hit is the hash.
/// </summary>
[MemoryDiagnoser]
public class FlowKeyBenchmarks
{
    private const int Keys = 32;
    private const int Rounds = 32;
    private const int OpsPerInvoke = Keys * Rounds;

    private FlowKey[] _keys = null!, _copies = null!;

    [GlobalSetup]
    public void Setup()
    {
        _keys = new FlowKey[Keys];
        for (int i = 0; i < Keys; i++)
            _keys[i] = new FlowKey
            {
                InPort = 1, DlType = EtherTypes.IPv4, DlSrc = Frames.Mac(1), DlDst = Frames.Mac(2),
                NwSrc = 0x0A00_0001u + (uint)i, NwDst = 0x0A01_0001, NwProto = IpProtocols.Udp, NwTtl = 64,
                TpSrc = (ushort)(5000 + i), TpDst = 6000,
            };
        _copies = (FlowKey[])_keys.Clone();
    }

    [Benchmark(OperationsPerInvoke = OpsPerInvoke)]
    public ulong Hash64()
    {
        var keys = _keys;
        ulong acc = 0;
        for (int r = 0; r < Rounds; r++)
            for (int i = 0; i < keys.Length; i++) acc += keys[i].Hash64();
        return acc;
    }

    [Benchmark(OperationsPerInvoke = OpsPerInvoke)]
    public int EqualsHit()
    {
        var a = _keys;
        var b = _copies;
        int acc = 0;
        for (int r = 0; r < Rounds; r++)
            for (int i = 0; i < a.Length; i++)
                if (a[i].Equals(b[i])) acc++;
        return acc;
    }
}
