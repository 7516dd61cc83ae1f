using System.Collections.Concurrent;

namespace VSwitch.Core.Tables;

/// <summary>One learned address seen on another port than before.</summary>
public readonly record struct MacMove(ushort Network, ushort Vlan, ulong Mac, int FromPort, int ToPort, long AtMs);

/// <summary>
/// MAC moves: counted per port they moved to (a host that moved, or one port claiming another's
/// address: the MAC hijack), and queued for the control plane to log. A move is a rare event (the MAC
/// table's generation changes, every cached flow revalidates), so an atomic add and a bounded queue
/// are fine; a storm of moves fills the queue and the rest are only counted as not queued.
/// </summary>
public sealed class MacMoves
{
    public const int QueueLimit = 256;

    private readonly long[] _toPort;
    private readonly ConcurrentQueue<MacMove> _pending = new();
    private int _queued;
    private long _notQueued;

    public MacMoves(int maxPorts) => _toPort = new long[maxPorts];

    internal void Record(uint domain, ulong mac, int from, int to, long nowMs)
    {
        if ((uint)to < (uint)_toPort.Length) Interlocked.Increment(ref _toPort[to]);
        if (Interlocked.Increment(ref _queued) > QueueLimit)
        {
            Interlocked.Decrement(ref _queued);
            Interlocked.Increment(ref _notQueued);
            return;
        }
        _pending.Enqueue(new MacMove((ushort)(domain >> 12), (ushort)(domain & 0xFFF), mac, from, to, nowMs));
    }

    /// <summary>Moves onto a port since it was added (a new port with a reused id starts again at <see cref="Reset"/>).</summary>
    public long ToPort(int port) => (uint)port < (uint)_toPort.Length ? Volatile.Read(ref _toPort[port]) : 0;

    public long Total
    {
        get
        {
            long sum = 0;
            for (int i = 0; i < _toPort.Length; i++) sum += Volatile.Read(ref _toPort[i]);
            return sum;
        }
    }

    public void Reset(int port)
    {
        if ((uint)port < (uint)_toPort.Length) Volatile.Write(ref _toPort[port], 0);
    }

    /// <summary>Takes the queued moves (the control plane logs them) and how many did not fit the queue since the last call.</summary>
    public List<MacMove> Drain(out long notQueued)
    {
        var list = new List<MacMove>();
        while (_pending.TryDequeue(out var m))
        {
            Interlocked.Decrement(ref _queued);
            list.Add(m);
        }
        notQueued = Interlocked.Exchange(ref _notQueued, 0);
        return list;
    }
}
