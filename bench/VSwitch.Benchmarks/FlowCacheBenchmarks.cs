using BenchmarkDotNet.Attributes;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Tables;
using VSwitch.Core.Wire;

namespace VSwitch.Benchmarks;

/// <summary>
/// The flow cache's hit path (hash the key, find it in its set, compare) with 1, 1k and 100k
/// active flows, visited in a shuffled order so that large tables pay their cache misses.
/// ns/op is ns per lookup.
/// </summary>
[MemoryDiagnoser]
public class FlowCacheBenchmarks
{
    private const int Lookups = 4096;

    [Params(1, 1_000, 100_000)]
    public int Flows;

    private FlowCache _cache = null!;
    private FlowKey[] _keys = null!;
    private int[] _order = null!;

    [GlobalSetup]
    public void Setup()
    {
        _cache = new FlowCache(capacity: 1 << 20);
        _keys = new FlowKey[Flows];
        var rnd = new Random(7);
        for (int i = 0; i < Flows; i++)
        {
            var k = new FlowKey
            {
                InPort = 1, DlType = EtherTypes.IPv4, DlSrc = 0x0200_0000_0001, DlDst = 0x0200_0000_0002,
                NwSrc = (uint)(0x0A00_0000 | (i >> 16)), NwDst = 0x0A01_0001, NwProto = IpProtocols.Udp, NwTtl = 64,
                TpSrc = (ushort)i, TpDst = 4789,
            };
            _keys[i] = k;
            _cache.Install(in k, k.Hash64(), 0, null);
        }
        if (_cache.Count != Flows) throw new InvalidOperationException($"only {_cache.Count} of {Flows} flows fit");
        _order = new int[Lookups];
        for (int i = 0; i < Lookups; i++) _order[i] = rnd.Next(Flows);
    }

    [Benchmark(OperationsPerInvoke = Lookups)]
    public int HashAndLookup()
    {
        int found = 0;
        var keys = _keys;
        foreach (int i in _order)
        {
            ref readonly var k = ref keys[i];
            if (_cache.Lookup(in k, k.Hash64()) is not null) found++;
        }
        return found;
    }
}
