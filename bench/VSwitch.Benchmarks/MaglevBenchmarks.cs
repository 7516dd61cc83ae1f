using BenchmarkDotNet.Attributes;
using VSwitch.Core.Flow;
using VSwitch.Core.Tables.Services;
using VSwitch.Core.Wire;

namespace VSwitch.Benchmarks;

/// <summary>
/// Services' Maglev (issue 15: a rebuild of 65537 slots for 100 backends under 5 ms): the rebuild the
/// daemon does on every change of backends, drains or health, and the pick the conntrack stage makes
/// for a new connection (5-tuple hash, one slot read).
/// </summary>
[MemoryDiagnoser]
public class MaglevBenchmarks
{
    private string[] _keys = null!;
    private int[] _weights = null!;
    private MaglevPicker _picker = null!;
    private ConnTuple _conn;

    [Params(10, 100)]
    public int Backends;

    [GlobalSetup]
    public void Setup()
    {
        _keys = Enumerable.Range(1, Backends).Select(i => $"10.2.{i / 250}.{i % 250 + 1}:8080").ToArray();
        _weights = Enumerable.Repeat(1, Backends).ToArray();
        var table = Maglev.Build(_keys, _weights);
        _picker = new MaglevPicker(table, _keys.Select((k, i) => new PickerBackend((UInt128)(0x0A020000u + (uint)i), 8080, i, k, new BackendCounters())).ToArray(), false);
        _conn = new ConnTuple { Src = 0x0A010002, Dst = 0x0A60000A, SrcPort = 40000, DstPort = 80, Proto = IpProtocols.Tcp, Family = 4 };
    }

    [Benchmark]
    public int Rebuild65537() => Maglev.Build(_keys, _weights).Length;

    [Benchmark(OperationsPerInvoke = 1024)]
    public UInt128 Pick()
    {
        UInt128 sum = 0;
        var c = _conn;
        for (int i = 0; i < 1024; i++)
        {
            c.SrcPort = (ushort)(40000 + i);
            _picker.TryPick(in c, out var a, out _, out _, out _);
            sum += a;
        }
        return sum;
    }
}
