namespace VSwitch.Core;

/// <summary>One receive queue of one port: (port id, queue index).</summary>
public readonly record struct RxQueueRef(int Port, int Queue)
{
    public override string ToString() => $"{Port}/{Queue}";
}

/// <summary>
/// Which datapath thread polls which port receive queue (OVS's rxq to PMD assignment), as an immutable
/// snapshot the control plane publishes (<see cref="Datapath.RxqAssignment"/>) and every thread reads at
/// its quiescent point. A queue without an entry goes to <see cref="DefaultThread"/>: port id plus queue
/// index, modulo the thread count, so that a port's queues land on different threads, a new port needs no
/// publication of its own, and with one queue per port this is the old "port id modulo threads".
/// <para>
/// Entries are either pins (<c>vsctl threads pin</c>, OVS's pmd-rxq-affinity: kept by a rebalance and
/// stored by the daemon) or placements (a rebalance's result, forgotten at restart). A queue may be
/// <see cref="Parked"/>: no thread polls it; that is the middle step of a move, so that the old thread has
/// stopped reading it before the new one starts (frames wait in the kernel meanwhile).
/// </para>
/// </summary>
public sealed class RxqAssignment
{
    /// <summary>The thread of a queue that is between two threads: nobody polls it.</summary>
    public const int Parked = -1;

    public static readonly RxqAssignment Default = new(new Dictionary<RxQueueRef, int>(), new Dictionary<RxQueueRef, int>());

    private readonly Dictionary<RxQueueRef, int> _placed;
    private readonly Dictionary<RxQueueRef, int> _pins;

    public RxqAssignment(IReadOnlyDictionary<RxQueueRef, int> placed, IReadOnlyDictionary<RxQueueRef, int> pins)
    {
        _placed = new Dictionary<RxQueueRef, int>(placed);
        _pins = new Dictionary<RxQueueRef, int>(pins);
    }

    /// <summary>Grows with every publication; datapath threads report the version they poll by (<see cref="DatapathThread.SeenRxqVersion"/>).</summary>
    public long Version { get; internal set; }

    /// <summary>The pinned queues and their threads.</summary>
    public IReadOnlyDictionary<RxQueueRef, int> Pins => _pins;

    /// <summary>Queues placed by a rebalance (or parked), apart from the pins.</summary>
    public IReadOnlyDictionary<RxQueueRef, int> Placed => _placed;

    public static int DefaultThread(RxQueueRef q, int threads) => (q.Port + q.Queue) % threads;

    /// <summary>The thread that polls <paramref name="q"/> (0..threads-1), or <see cref="Parked"/>.</summary>
    public int ThreadOf(RxQueueRef q, int threads)
    {
        if (_placed.Count > 0 && _placed.TryGetValue(q, out int p) && p == Parked) return Parked;
        if (_pins.Count > 0 && _pins.TryGetValue(q, out int t) && t < threads) return t;
        if (_placed.Count > 0 && _placed.TryGetValue(q, out p) && p < threads) return p;
        return DefaultThread(q, threads);
    }

    public bool IsPinned(RxQueueRef q) => _pins.ContainsKey(q);

    /// <summary>The same with <paramref name="q"/> pinned to <paramref name="thread"/>.</summary>
    public RxqAssignment Pin(RxQueueRef q, int thread)
    {
        var pins = new Dictionary<RxQueueRef, int>(_pins) { [q] = thread };
        var placed = new Dictionary<RxQueueRef, int>(_placed);
        placed.Remove(q);
        return new RxqAssignment(placed, pins);
    }

    /// <summary>The same without a pin on <paramref name="q"/> (it keeps its thread until the next rebalance).</summary>
    public RxqAssignment Unpin(RxQueueRef q, int threads)
    {
        if (!_pins.ContainsKey(q)) return this;
        int now = ThreadOf(q, threads);
        var pins = new Dictionary<RxQueueRef, int>(_pins);
        pins.Remove(q);
        var placed = new Dictionary<RxQueueRef, int>(_placed) { [q] = now };
        return new RxqAssignment(placed, pins);
    }

    /// <summary>The same with every queue of <paramref name="port"/> forgotten (the port was removed: its id may be reused).</summary>
    public RxqAssignment WithoutPort(int port)
    {
        bool Other(RxQueueRef q) => q.Port != port;
        return new RxqAssignment(_placed.Where(e => Other(e.Key)).ToDictionary(), _pins.Where(e => Other(e.Key)).ToDictionary());
    }

    /// <summary>
    /// The middle step of a change from this to <paramref name="next"/>: every queue whose thread changes is
    /// <see cref="Parked"/>, the others stay. Null when nothing moves.
    /// </summary>
    public RxqAssignment? Parking(RxqAssignment next, IEnumerable<RxQueueRef> queues, int threads)
    {
        var placed = new Dictionary<RxQueueRef, int>(next._placed);
        bool any = false;
        foreach (var q in queues)
        {
            int from = ThreadOf(q, threads), to = next.ThreadOf(q, threads);
            if (from == to || from == Parked) continue;
            placed[q] = Parked;
            any = true;
        }
        return any ? new RxqAssignment(placed, next._pins) : null;
    }

    /// <summary>
    /// A fresh placement of <paramref name="queues"/> over <paramref name="threads"/> threads; pins stay.
    /// With loads (busy cycles measured per queue, OVS's pmd-rxq-assign=cycles) the busiest queue goes first,
    /// each to the thread with the least load so far; without (all zero), round-robin in (port, queue) order
    /// (pmd-rxq-assign=roundrobin), each to the thread with the fewest queues.
    /// </summary>
    public RxqAssignment Rebalance(IReadOnlyList<(RxQueueRef Queue, long Load)> queues, int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        var load = new long[threads];
        var count = new int[threads];
        foreach (var (q, l) in queues)
            if (_pins.TryGetValue(q, out int t) && t < threads) { load[t] += l; count[t]++; }
        bool byCycles = false;
        foreach (var (_, l) in queues) if (l > 0) { byCycles = true; break; }
        var order = queues.Where(x => !_pins.ContainsKey(x.Queue)).ToList();
        order.Sort((a, b) => byCycles && a.Load != b.Load ? b.Load.CompareTo(a.Load)
            : a.Queue.Port != b.Queue.Port ? a.Queue.Port.CompareTo(b.Queue.Port) : a.Queue.Queue.CompareTo(b.Queue.Queue));
        var placed = new Dictionary<RxQueueRef, int>();
        int next = 0; // where the round-robin search starts: ties rotate instead of always favouring thread 0
        foreach (var (q, l) in order)
        {
            int best = -1;
            for (int k = 0; k < threads; k++)
            {
                int t = (next + k) % threads;
                if (best < 0 || (byCycles ? load[t] < load[best] || load[t] == load[best] && count[t] < count[best] : count[t] < count[best])) best = t;
            }
            placed[q] = best;
            load[best] += l;
            count[best]++;
            next = (best + 1) % threads;
        }
        return new RxqAssignment(placed, _pins);
    }
}
