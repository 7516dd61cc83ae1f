using BenchmarkDotNet.Attributes;
using VSwitch.Core.Tables;

namespace VSwitch.Benchmarks;

/// <summary>
/// <see cref="Fib"/> longest prefix match with <see cref="Prefixes"/> routes, lengths weighted like
/// a real IPv4 table (half /24, most of the rest /16../23, 5% /25../32 in tbl8, a few short ones).
/// Each invocation looks up <see cref="Ops"/> precomputed random addresses, 90% of them inside an
/// inserted prefix, so ns/op is ns per lookup and a big table pays its cache and TLB misses
/// (tbl24 alone is 64 MB). IPv6: the same count of prefixes, mostly /48, /56, /64 and /128, about 40 distinct lengths
/// in all (one hash probe per length present, longest first, until a hit).
/// </summary>
[MemoryDiagnoser]
public class FibBenchmarks
{
    private const int Ops = 4096;

    [Params(1_000, 100_000, 1_000_000)]
    public int Prefixes;

    private Fib _fib = null!;
    private uint[] _addresses = null!;
    private UInt128[] _addresses6 = null!;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(42);
        _fib = new Fib();
        var p4 = new uint[Prefixes];
        var l4 = new int[Prefixes];
        var p6 = new UInt128[Prefixes];
        var l6 = new int[Prefixes];
        for (int i = 0; i < Prefixes; i++)
        {
            int len = Length4(rng);
            p4[i] = (uint)rng.NextInt64(0, 1L << 32) & Mask(len);
            l4[i] = len;
            _fib.Add(p4[i], len, 1 + i % 4096);

            int len6 = Length6(rng);
            p6[i] = Random6(rng) & Mask6(len6);
            l6[i] = len6;
            _fib.Add6(p6[i], len6, 1 + i % 4096);
        }
        _addresses = new uint[Ops];
        _addresses6 = new UInt128[Ops];
        int hits = 0, hits6 = 0;
        for (int i = 0; i < Ops; i++)
        {
            uint a = (uint)rng.NextInt64(0, 1L << 32);
            UInt128 a6 = Random6(rng);
            if (rng.Next(10) != 0)
            {
                int k = rng.Next(Prefixes);
                a = p4[k] | (a & ~Mask(l4[k]));
                a6 = p6[k] | (a6 & ~Mask6(l6[k]));
            }
            _addresses[i] = a;
            _addresses6[i] = a6;
            if (_fib.Lookup(a) != 0) hits++;
            if (_fib.Lookup6(a6) != 0) hits6++;
        }
        if (hits < Ops * 8 / 10 || hits6 < Ops * 8 / 10)
            throw new InvalidOperationException($"setup broken: only {hits} IPv4 and {hits6} IPv6 of {Ops} addresses hit");
    }

    private static uint Mask(int len) => len == 0 ? 0u : uint.MaxValue << (32 - len);
    private static UInt128 Mask6(int len) => len == 0 ? UInt128.Zero : UInt128.MaxValue << (128 - len);

    private static int Length4(Random rng) => rng.Next(10_000) switch
    {
        < 5_000 => 24,
        < 8_000 => rng.Next(20, 24),
        < 9_450 => rng.Next(16, 20),
        < 9_499 => rng.Next(9, 16),
        < 9_500 => rng.Next(0, 9),
        _ => rng.Next(25, 33),
    };

    private static int Length6(Random rng) => rng.Next(100) switch
    {
        < 35 => 64,
        < 50 => 48,
        < 60 => 56,
        < 90 => 128,
        < 95 => 32 + 4 * rng.Next(5), // /32, /36, ... /48
        _ => rng.Next(29, 65),
    };

    private static UInt128 Random6(Random rng) =>
        (UInt128)0x2001_0db8 << 96 | new UInt128((ulong)rng.NextInt64() & 0xFFFF_FFFF, (ulong)rng.NextInt64());

    [Benchmark(OperationsPerInvoke = Ops, Baseline = true)]
    public int Lookup()
    {
        var fib = _fib;
        var addrs = _addresses;
        int acc = 0;
        for (int i = 0; i < addrs.Length; i++) acc += fib.Lookup(addrs[i]);
        return acc;
    }

    [Benchmark(OperationsPerInvoke = Ops)]
    public int Lookup6()
    {
        var fib = _fib;
        var addrs = _addresses6;
        int acc = 0;
        for (int i = 0; i < addrs.Length; i++) acc += fib.Lookup6(addrs[i]);
        return acc;
    }
}
