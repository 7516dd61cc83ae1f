using BenchmarkDotNet.Attributes;
using VSwitch.Core;
using VSwitch.Core.Buffers;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Ports;

namespace VSwitch.Benchmarks;

/// <summary>
/// The whole pipeline on 1, 2 and 4 threads at once, as vswitchd runs it with <c>datapath.threads</c>: one
/// <see cref="Datapath"/> (shared rules, MAC table, topology), a context per thread (its own flow cache, pool and
/// output queues), and a pair of in-memory ports per thread sending 64-byte UDP frames to each other's learned MAC
/// (known unicast, all flow-cache hits, like <see cref="BridgeBenchmarks.KnownUnicast"/>). The threads are started
/// once and released together for each invocation to share a fixed amount of work; ns/op is ns per packet of the
/// whole switch, so perfect scaling halves it from 1 to 2 threads. Honest only up to the machine's core count.
/// </summary>
[MemoryDiagnoser]
public class ThreadScalingBenchmarks
{
    private const int BatchSize = 32;
    /// <summary>The whole switch's work per invocation, split evenly among the threads.</summary>
    private const int Batches = 4096;

    [Params(1, 2, 4)]
    public int Threads;

    private Datapath _dp = null!;
    private Worker[] _workers = null!;
    private Barrier _start = null!, _done = null!;
    private volatile bool _stop;
    private Thread[] _threads = null!;

    private sealed class Worker
    {
        public DatapathContext Ctx = null!;
        public PacketPool Pool = null!;
        public MemoryPort[] Ports = null!;
        public int[] Ids = null!;
        public readonly PacketBatch Batch = new(BatchSize);
        public long Now = 1000;

        public void Run(Datapath dp, int batches)
        {
            long now = Now++;
            for (int b = 0; b < batches; b++)
            {
                int i = b & 1;
                Ports[i].Receive(Batch, Pool);
                Datapath.CountReceive(Batch, Ctx, Ids[i]);
                dp.ProcessBatch(Batch, Ctx, now);
            }
        }
    }

    [GlobalSetup]
    public void Setup()
    {
        _dp = new Datapath();
        _dp.AddNetwork("n1");
        _workers = new Worker[Threads];
        for (int t = 0; t < Threads; t++)
        {
            var w = new Worker { Pool = new PacketPool(1024), Ports = new MemoryPort[2], Ids = new int[2] };
            for (int i = 0; i < 2; i++)
            {
                w.Ports[i] = new MemoryPort($"t{t}p{i}") { KeepSent = false };
                w.Ids[i] = _dp.AddPort(w.Ports[i], "n1").Id;
            }
            ulong a = Frames.Mac(10 * t + 1), b = Frames.Mac(10 * t + 2);
            w.Ports[0].Replay(Enumerable.Range(0, BatchSize).Select(_ => Frames.Udp(b, a)).ToArray());
            w.Ports[1].Replay(Enumerable.Range(0, BatchSize).Select(_ => Frames.Udp(a, b)).ToArray());
            w.Ctx = _dp.CreateContext(w.Pool);
            _workers[t] = w;
        }
        // Learn every address and fill every cache, then check that all of it is forwarded, thread by thread.
        int perThread = Batches / Threads;
        foreach (var w in _workers) w.Run(_dp, perThread);
        foreach (var w in _workers)
        {
            long before = w.Ports[1].SentCount;
            w.Run(_dp, perThread);
            if (w.Ports[1].SentCount - before != (long)perThread * BatchSize / 2 || w.Pool.InUse != 0)
                throw new InvalidOperationException("thread-scaling setup does not forward every frame to its port");
        }
        if (_dp.ReadDropCounters().Sum() != 0) throw new InvalidOperationException("thread-scaling setup drops frames");
        _start = new Barrier(Threads + 1);
        _done = new Barrier(Threads + 1);
        _threads = new Thread[Threads];
        for (int t = 0; t < Threads; t++)
        {
            var w = _workers[t];
            _threads[t] = new Thread(() =>
            {
                while (true)
                {
                    _start.SignalAndWait();
                    if (_stop) return;
                    w.Run(_dp, perThread);
                    _done.SignalAndWait();
                }
            }) { IsBackground = true, Name = "bench-dp" + t };
            _threads[t].Start();
        }
    }

    /// <summary>The threads share <see cref="Batches"/> batches and run at once; ns per packet of all of them.</summary>
    [Benchmark(OperationsPerInvoke = BatchSize * Batches)]
    public void Pipeline()
    {
        _start.SignalAndWait();
        _done.SignalAndWait();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _stop = true;
        _start.SignalAndWait();
        foreach (var t in _threads) t.Join();
    }
}
