using BenchmarkDotNet.Attributes;
using VSwitch.Core.Tables;

namespace VSwitch.Benchmarks;

/// <summary>
/// <see cref="MacTable"/> with <see cref="Entries"/> learned addresses: lookups that hit, lookups
/// that miss, and a learn of an address already known on the same port (the per-frame source
/// learning of known traffic). Each invocation does <see cref="Ops"/> operations over random
/// addresses, so a 1M-entry table pays its cache misses; ns/op is ns per lookup/learn.
/// </summary>
[MemoryDiagnoser]
public class MacTableBenchmarks
{
    private const int Ops = 4096;
    private const ushort Net = 1, Vlan = 0;
    private const int Ports = 64;
    private const long Now = 10_000;

    [Params(1_000, 1_000_000)]
    public int Entries;

    private MacTable _table = null!;
    private ulong[] _hit = null!, _miss = null!;
    private int[] _hitPort = null!;

    [GlobalSetup]
    public void Setup()
    {
        _table = new MacTable(capacity: Entries, perPortLimit: Entries);
        var rng = new Random(42);
        var known = new HashSet<ulong>(Entries);
        var macs = new ulong[Entries];
        var ports = new int[Entries];
        int n = 0;
        while (n < Entries)
        {
            ulong mac = RandomUnicast(rng);
            if (!known.Add(mac)) continue;
            int port = 1 + n % Ports;
            if (_table.Learn(Net, Vlan, mac, port, Now) != LearnResult.Learned) continue; // probe limit: skip it
            macs[n] = mac;
            ports[n] = port;
            n++;
        }
        _hit = new ulong[Ops];
        _hitPort = new int[Ops];
        _miss = new ulong[Ops];
        for (int i = 0; i < Ops; i++)
        {
            int k = rng.Next(Entries);
            _hit[i] = macs[k];
            _hitPort[i] = ports[k];
            ulong m;
            do m = RandomUnicast(rng); while (known.Contains(m));
            _miss[i] = m;
        }
        for (int i = 0; i < Ops; i++)
        {
            if (_table.Lookup(Net, Vlan, _hit[i], Now) != _hitPort[i]) throw new InvalidOperationException("hit setup broken");
            if (_table.Lookup(Net, Vlan, _miss[i], Now) != -1) throw new InvalidOperationException("miss setup broken");
        }
    }

    private static ulong RandomUnicast(Random rng) =>
        ((ulong)rng.NextInt64() & 0xFFFF_FFFF_FFFFUL & ~(1UL << 40)) | (1UL << 41); // unicast, locally administered

    [Benchmark(OperationsPerInvoke = Ops)]
    public int LookupHit()
    {
        var t = _table;
        var keys = _hit;
        int acc = 0;
        for (int i = 0; i < keys.Length; i++) acc += t.Lookup(Net, Vlan, keys[i], Now);
        return acc;
    }

    [Benchmark(OperationsPerInvoke = Ops)]
    public int LookupMiss()
    {
        var t = _table;
        var keys = _miss;
        int acc = 0;
        for (int i = 0; i < keys.Length; i++) acc += t.Lookup(Net, Vlan, keys[i], Now);
        return acc;
    }

    /// <summary>Known address, same port, same second: the path every frame of known traffic takes (no write).</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public int LearnRefresh()
    {
        var t = _table;
        var keys = _hit;
        var ports = _hitPort;
        int acc = 0;
        for (int i = 0; i < keys.Length; i++) acc += (int)t.Learn(Net, Vlan, keys[i], ports[i], Now);
        return acc;
    }
}
