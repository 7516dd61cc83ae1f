using System.Diagnostics;
using BenchmarkDotNet.Attributes;

namespace VSwitch.Benchmarks;

/// <summary>
/// Cost of one Stopwatch.GetTimestamp: Datapath.ProcessBatch reads the clock once per stage per
/// batch (4 reads for 3 stages), so this divided by 8 is its share of a 32-packet batch, per packet.
/// </summary>
[MemoryDiagnoser]
public class ClockBenchmarks
{
    private const int Reads = 1024;

    [Benchmark(OperationsPerInvoke = Reads)]
    public long GetTimestamp()
    {
        long acc = 0;
        for (int i = 0; i < Reads; i++) acc += Stopwatch.GetTimestamp();
        return acc;
    }
}
