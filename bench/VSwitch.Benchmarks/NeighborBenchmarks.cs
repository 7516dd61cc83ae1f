using BenchmarkDotNet.Attributes;
using VSwitch.Core.Tables;

namespace VSwitch.Benchmarks;

/// <summary>
/// The neighbour lookup the router's slow path makes for every routed flow it sets up (and the hold
/// queue for every held packet it checks): 1024 resolved neighbours on one network, looked up in
/// turn, IPv4 (<see cref="NeighborTable"/>) and IPv6 (<see cref="NeighborTable6"/>). ns/op is one
/// lookup. Written to compare the one family-generic cache with the two tables it replaced.
/// </summary>
[MemoryDiagnoser]
public class NeighborBenchmarks
{
    private const int Neighbors = 1024;
    private const int LookupsPerInvoke = 4096;
    private readonly NeighborTable _v4 = new();
    private readonly NeighborTable6 _v6 = new();
    private readonly uint[] _a4 = new uint[Neighbors];
    private readonly UInt128[] _a6 = new UInt128[Neighbors];

    [GlobalSetup]
    public void Setup()
    {
        for (int i = 0; i < Neighbors; i++)
        {
            _a4[i] = 0x0A02_0000u + (uint)i;
            _a6[i] = ((UInt128)0xfd00_0002_0000_0000UL << 64) + (uint)i;
            _v4.AddStatic(2, _a4[i], 0x02_00_00_00_00_00UL + (ulong)i);
            _v6.AddStatic(2, _a6[i], 0x02_00_00_00_00_00UL + (ulong)i);
        }
    }

    [Benchmark(OperationsPerInvoke = LookupsPerInvoke)]
    public ulong Lookup4()
    {
        ulong sum = 0;
        for (int i = 0; i < LookupsPerInvoke; i++) sum += _v4.Lookup(2, _a4[i & (Neighbors - 1)])!.Mac;
        return sum;
    }

    [Benchmark(OperationsPerInvoke = LookupsPerInvoke)]
    public ulong Lookup6()
    {
        ulong sum = 0;
        for (int i = 0; i < LookupsPerInvoke; i++) sum += _v6.Lookup(2, _a6[i & (Neighbors - 1)])!.Mac;
        return sum;
    }
}
