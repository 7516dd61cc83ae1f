using VSwitch.Core.Buffers;
using VSwitch.Core.Topology;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// What one datapath thread carries through a batch: its buffer pool, its counters, its
/// transmit queues per output port, the topology snapshot and the clock, both read once per batch.
/// </summary>
public sealed class DatapathContext
{
    private readonly PacketBatch?[] _tx = new PacketBatch?[SwitchTopology.MaxPorts];
    private readonly int[] _dirty = new int[SwitchTopology.MaxPorts];
    private int _dirtyCount;

    public DatapathContext(Datapath datapath, PacketPool pool)
    {
        Datapath = datapath;
        Pool = pool;
        Counters = new ThreadCounters(datapath.Stages.Count);
        Topology = datapath.Topology;
    }

    public Datapath Datapath { get; }
    public PacketPool Pool { get; }
    public ThreadCounters Counters { get; }
    public SwitchTopology Topology { get; internal set; }
    public long NowMs { get; internal set; }

    /// <summary>Counts and frees a packet the pipeline will not send.</summary>
    public void Drop(Packet p, DropReason reason)
    {
        Counters.Drops[(int)reason]++;
        if ((uint)p.InPort < (uint)Counters.Ports.Length) Counters.Ports[p.InPort].RxDrops++;
        p.Drop = reason;
        p.Release();
    }

    /// <summary>Queues a packet for a port; the queue goes out as one batch at the end of the pipeline or when full.</summary>
    public void Enqueue(Packet p, SwitchPort port)
    {
        var q = _tx[port.Id];
        if (q is null) _tx[port.Id] = q = new PacketBatch(PacketBatch.MaxSize);
        if (q.Count == 0) _dirty[_dirtyCount++] = port.Id;
        else if (q.IsFull) Send(port.Id, q);
        q.Add(p);
    }

    /// <summary>Transmits every queued batch.</summary>
    public void Flush()
    {
        for (int i = 0; i < _dirtyCount; i++)
        {
            int id = _dirty[i];
            var q = _tx[id]!;
            if (q.Count > 0) Send(id, q);
        }
        _dirtyCount = 0;
    }

    private void Send(int portId, PacketBatch q)
    {
        ref var pc = ref Counters.Ports[portId];
        int n = q.Count;
        long bytes = 0;
        foreach (var p in q.AsSpan()) bytes += p.Length;
        var port = Topology.Port(portId);
        if (port is null)
        {
            Counters.Drops[(int)DropReason.PortDown] += n;
            pc.TxDrops += n;
            q.ReleaseAll();
            return;
        }
        int sent = port.Io.Transmit(q);
        // Transmit returned every buffer to its pool; forget them without a second release.
        q.Clear();
        pc.TxPackets += sent;
        pc.TxBytes += sent == n ? bytes : bytes * sent / Math.Max(1, n);
        if (sent < n)
        {
            pc.TxDrops += n - sent;
            Counters.Drops[(int)DropReason.TxFailed] += n - sent;
        }
    }
}
