namespace VSwitch.Core.Ports;

/// <summary>
/// A port's transmit scratch state (iovec and message arrays, header buffers), one per thread that
/// is sending on the port at the same moment: <see cref="IPort.Transmit"/> may be called by every
/// datapath thread at once (each thread outputs to every port), and two senders filling one set of
/// arrays corrupt each other's batches.
/// <para>
/// Why per-sender state and not a transmit lock (OVS locks a txq shared by several PMD threads):
/// a lock would serialise the sendmmsg/writev syscalls of all threads on one port, and the second
/// thread would spin or sleep behind the first one's syscall; the kernel takes concurrent sends on
/// one socket or TAP fd by itself. Why not indexed by datapath thread: <see cref="IPort.Transmit"/>
/// carries no thread, and ports are also driven by tests and benchmarks on threads of their own.
/// </para>
/// <para>
/// Cost: <see cref="Take"/> is one uncontended atomic exchange on a slot chosen by the calling
/// thread's id (so one thread always finds its own slot, and two threads usually find two), and
/// <see cref="Return"/> one plain release write: a few nanoseconds per batch, against a syscall of
/// microseconds. A state is made the first time a slot is used (an allocation per slot, never per
/// packet); at most <see cref="Capacity"/> exist, as many as threads that ever overlapped.
/// </para>
/// </summary>
public sealed class SenderSlots<T> where T : class
{
    /// <summary>Slots; datapath.threads is at most 64, so a sender always finds a free one.</summary>
    public const int Capacity = 64;
    // One busy flag per cache line, so that two threads taking two slots do not share a line.
    private const int Stride = 16;

    private readonly int[] _busy = new int[Capacity * Stride];
    private readonly T?[] _states = new T?[Capacity];
    private readonly Func<T> _make;

    public SenderSlots(Func<T> make) => _make = make;

    /// <summary>Takes a slot for this batch; its state is the caller's alone until <see cref="Return"/>.</summary>
    public int Take(out T state)
    {
        int start = Environment.CurrentManagedThreadId;
        while (true)
        {
            for (int k = 0; k < Capacity; k++)
            {
                int i = (start + k) & (Capacity - 1);
                if (Interlocked.Exchange(ref _busy[i * Stride], 1) != 0) continue;
                // Only the holder of slot i reads or writes _states[i] (the exchange above orders it).
                var s = _states[i];
                if (s is null) { s = _make(); Volatile.Write(ref _states[i], s); }
                state = s;
                return i;
            }
            // More senders than slots at this instant (not with ≤ 64 datapath threads): wait for one.
            Thread.SpinWait(8);
        }
    }

    /// <summary>Gives the slot back; the state stays in it for the next sender.</summary>
    public void Return(int slot) => Volatile.Write(ref _busy[slot * Stride], 0);

    /// <summary>Every state made so far (for counters summed when read). Racy by design: a state made meanwhile may be missed.</summary>
    public IEnumerable<T> States()
    {
        for (int i = 0; i < Capacity; i++)
            if (Volatile.Read(ref _states[i]) is { } s) yield return s;
    }

    /// <summary>Runs <paramref name="free"/> on every state made; only once no thread can send any more (after quiescence).</summary>
    public void Free(Action<T> free)
    {
        for (int i = 0; i < Capacity; i++)
            if (Interlocked.Exchange(ref _states[i], null) is { } s) free(s);
    }
}

/// <summary>
/// Which datapath thread the calling thread is (set by the thread itself when it starts), so that a port with
/// several queues can give each thread a transmit queue of its own (a multiqueue TAP: thread t writes to queue
/// t modulo the queues), deterministically rather than by managed thread id. -1 on any other thread.
/// </summary>
public static class DatapathSender
{
    [ThreadStatic] private static int _indexPlusOne;

    /// <summary>The calling datapath thread's index, or -1.</summary>
    public static int Index => _indexPlusOne - 1;

    /// <summary>Called once by a datapath thread on itself.</summary>
    public static void Register(int index) => _indexPlusOne = index + 1;
}
