using VSwitch.Core.Buffers;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Ports;
using VSwitch.Core.Ports.Linux;
using VSwitch.Core.Topology;

namespace VSwitch.Core;

/// <summary>How datapath threads run.</summary>
public sealed class DatapathOptions
{
    /// <summary>
    /// Polling threads (OVS's PMD threads). Each polls the port receive queues assigned to it
    /// (<see cref="RxqAssignment"/>: by default port id plus queue, modulo this count).
    /// </summary>
    public int Threads { get; set; } = 1;
    /// <summary>
    /// After a batch, keep polling (epoll_wait with timeout 0) for this long before sleeping in epoll_wait
    /// again: a reply that follows within it finds the thread awake, without a scheduler wake-up. Costs CPU
    /// only while traffic flows; an idle thread sleeps. 0 turns it off.
    /// </summary>
    public int SpinMicroseconds { get; set; } = DefaultSpinMicroseconds;
    public const int DefaultSpinMicroseconds = 0;
    /// <summary>
    /// The scheduler slice asked for each datapath thread (EEVDF's custom slice, kernel 6.12+; Ports/Linux/ThreadScheduling):
    /// a short one lets a woken thread preempt at once. 0: the kernel's default. 100 µs (the kernel's minimum) by
    /// measurement: it cut the TAP ping RTT through the switch from 7.6-10× the bridge's to 3.2-3.7× on this loaded
    /// 2-core machine, at no CPU cost; a spin after each batch, or busy polling, did worse there (bench/RESULTS.md).
    /// </summary>
    public int SliceMicroseconds { get; set; } = DefaultSliceMicroseconds;
    public const int DefaultSliceMicroseconds = 100;
    /// <summary>SCHED_FIFO priority (1..99) for the datapath threads; 0: ordinary scheduling.</summary>
    public int RealtimePriority { get; set; }
    /// <summary>Spin on the ports instead of sleeping in epoll_wait: lowest latency, one core at 100%.</summary>
    public bool BusyPoll { get; set; }
    public int BatchSize { get; set; } = PacketBatch.DefaultSize;
    /// <summary>Buffers per thread.</summary>
    public int PoolSize { get; set; } = 8192;
    public int FrameSize { get; set; } = PacketPool.DefaultFrameSize;
    public const int DefaultLargePoolSize = 128;
    /// <summary>
    /// 64 KiB buffers per thread for TCP GSO super-frames kept whole from a port that hands them
    /// over (TAP or AF_PACKET with virtio headers) to one that takes them; 0 turns this off and every
    /// super-frame is segmented on receive. 128 of them are about 8.5 MB.
    /// </summary>
    public int LargePoolSize { get; set; } = DefaultLargePoolSize;
    /// <summary>How long a datapath flow stays cached without packets.</summary>
    public long FlowIdleMs { get; set; } = Tables.FlowCache.DefaultIdleMs;
    public int FlowCacheSize { get; set; } = Tables.FlowCache.DefaultCapacity;
    /// <summary>Batches read from one ready port before looking at the others (fairness).</summary>
    public int MaxBatchesPerWake { get; set; } = 8;
}

/// <summary>
/// One polling thread: sleeps in epoll_wait on its ports' descriptors (or spins when busy
/// polling), then drains each ready port batch by batch through the pipeline. It re-reads its port
/// set when the topology's version changes, and reports the version it runs on so that the
/// control plane knows when a removed port is no longer touched.
/// <para>
/// The quiescent point (an epoch, as in OVS's RCU): the top of the loop, where the thread holds no
/// port and no batch. There it reads the topology and publishes its version in
/// <see cref="SeenVersion"/>; from then on it can reach only the ports of that version (a batch in
/// flight re-reads the topology, which is never older). <see cref="Quiescence"/> waits for every
/// thread to publish a version at least that of a removal before the port's memory is freed;
/// <see cref="Wake"/> makes a thread asleep in epoll_wait pass the point at once.
/// </para>
/// </summary>
public sealed class DatapathThread : IDisposable
{
    private const int IdleWaitMs = 100;
    /// <summary>The epoll token of the wake-up eventfd (port tokens are indexes into the owned ports).</summary>
    private const ulong WakeToken = ulong.MaxValue;
    private readonly WakeEvent _wake = new();

    private readonly Datapath _dp;
    private readonly DatapathOptions _opt;
    private readonly int _index;
    private readonly PacketPool _pool;
    private readonly DatapathContext _ctx;
    private readonly PacketBatch _batch;
    private readonly EpollSet _epoll = new(256);
    private readonly Thread _thread;
    private volatile bool _stop;
    private long _seenVersion = -1;
    private long _seenRxqVersion = -1;
    private long _rxqVersion = -1;
    private readonly long _spinTicks;
    private long _lastActive;

    // The receive queues this thread polls, indexed by epoll token.
    private RxqPoll[] _owned = [];
    private int[] _registeredFds = [];
    private bool _hasUnpollable;

    public DatapathThread(Datapath dp, DatapathOptions opt, int index)
    {
        _dp = dp;
        _opt = opt;
        _index = index;
        _pool = new PacketPool(opt.PoolSize, opt.FrameSize);
        if (opt.LargePoolSize > 0) _pool.Large = new PacketPool(opt.LargePoolSize, PacketPool.LargeFrameSize);
        _ctx = dp.CreateContext(_pool);
        _ctx.Owned = true;
        _batch = new PacketBatch(opt.BatchSize);
        _spinTicks = opt.SpinMicroseconds * System.Diagnostics.Stopwatch.Frequency / 1_000_000;
        _thread = new Thread(Run) { IsBackground = true, Name = $"vswitch-dp{index}" };
        _epoll.Add(_wake.Fd, WakeToken);
    }

    /// <summary>The thread's own context: its counters are this thread's.</summary>
    public DatapathContext Context => _ctx;

    /// <summary>The thread's name, as the kernel shows it (/proc/self/task/TID/comm).</summary>
    public string Name => _thread.Name!;

    /// <summary>The thread's index (its name is vswitch-dpINDEX).</summary>
    public int Index => _index;

    /// <summary>The kernel's id of the thread (for its CPU time in /proc/self/task/TID/stat); 0 until it runs.</summary>
    public int Tid { get; private set; }

    /// <summary>Stopwatch ticks spent receiving and processing batches (the loop's busy time; sleeping and empty polls excluded).</summary>
    public long BusyTicks => Volatile.Read(ref _busyTicks);
    private long _busyTicks;

    /// <summary>The receive queues this thread polls now, with their counters since they came to it.</summary>
    public IReadOnlyList<RxqPoll> RxQueues => Volatile.Read(ref _owned);

    /// <summary>Makes the thread leave epoll_wait and pass its quiescent point now (one eventfd write).</summary>
    public void Wake() => _wake.Raise();

    public long SeenVersion => Volatile.Read(ref _seenVersion);

    private readonly ManualResetEventSlim _schedulingApplied = new(false);
    /// <summary>Why the scheduling asked for (slice, real time) could not be applied, or null; set when the thread starts.</summary>
    public string? SchedulingError { get; private set; }
    /// <summary>Waits (up to <paramref name="timeout"/>) until the thread has applied its scheduling; false if it has not yet.</summary>
    public bool WaitStarted(TimeSpan timeout) => _schedulingApplied.Wait(timeout);
    /// <summary>The receive-queue assignment version the thread polls by (<see cref="Quiescence.WaitRxq"/>).</summary>
    public long SeenRxqVersion => Volatile.Read(ref _seenRxqVersion);
    public Exception? Failure { get; private set; }
    /// <summary>True from <see cref="Start"/> until the loop ends (<see cref="Stop"/>, or a fault: <see cref="StoppedOnFault"/>).</summary>
    public bool IsRunning => _thread.IsAlive;

    public void Start() => _thread.Start();

    public void Stop()
    {
        _stop = true;
        Wake();
        if (_thread.IsAlive) _thread.Join(TimeSpan.FromSeconds(5));
    }

    private void Refresh(SwitchTopology topo, RxqAssignment rxq)
    {
        foreach (int fd in _registeredFds)
        {
            try { _epoll.Remove(fd); } catch (PortException) { /* already closed: the kernel dropped it */ }
        }
        var before = _owned;
        var owned = new List<RxqPoll>();
        foreach (var p in topo.Ports)
        {
            int queues = p.Io.RxQueueCount;
            for (int q = 0; q < queues; q++)
            {
                if (rxq.ThreadOf(new RxQueueRef(p.Id, q), _opt.Threads) != _index) continue;
                // A queue this thread kept keeps its counters (the same port object: a port replaced under the
                // same id, or a new port with a reused id, starts again).
                RxqPoll? kept = null;
                foreach (var b in before) if (ReferenceEquals(b.Port.Io, p.Io) && b.Queue == q) { kept = b; break; }
                owned.Add(kept is not null && ReferenceEquals(kept.Port, p) ? kept : new RxqPoll(p, q, p.Io.RxQueue(q), kept));
            }
        }
        var ownedArray = owned.ToArray();
        var fds = new List<int>();
        _hasUnpollable = false;
        for (int i = 0; i < ownedArray.Length; i++)
        {
            int fd = ownedArray[i].Rx.PollFd;
            if (ownedArray[i].Port.Io.Fault is not null) continue; // its device is gone: nothing will ever come
            if (fd < 0) { _hasUnpollable = true; continue; }
            _epoll.Add(fd, (ulong)i);
            fds.Add(fd);
        }
        Volatile.Write(ref _owned, ownedArray);
        _registeredFds = fds.ToArray();
        _rxqVersion = rxq.Version;
        Volatile.Write(ref _seenVersion, topo.Version);
        Volatile.Write(ref _seenRxqVersion, rxq.Version);
    }

    private const int EpollErr = 0x008, EpollHup = 0x010;

    private void StopPolling(RxqPoll q)
    {
        int fd = q.Rx.PollFd;
        int at = Array.IndexOf(_registeredFds, fd);
        if (at < 0) return;
        try { _epoll.Remove(fd); } catch (PortException) { /* already closed */ }
        _registeredFds = [.. _registeredFds.Where((_, i) => i != at)];
    }

    private void Run()
    {
        try
        {
            Tid = NativeMethods.gettid();
            DatapathSender.Register(_index);
            SchedulingError = ThreadScheduling.Apply(_opt.SliceMicroseconds, _opt.RealtimePriority);
            _schedulingApplied.Set();
            while (!_stop)
            {
                var topo = _dp.Topology;
                var rxq = _dp.RxqAssignment;
                if (topo.Version != _seenVersion || rxq.Version != _rxqVersion) Refresh(topo, rxq);
                _ctx.Housekeeping(Environment.TickCount64);
                var owned = _owned;
                if (_opt.BusyPoll || _hasUnpollable)
                {
                    bool any = false;
                    for (int i = 0; i < owned.Length; i++)
                        if (owned[i].Port.Io.Fault is null) any |= SafeDrain(owned[i]);
                    // The wake-up eventfd is in the set too: clear it, or every later wait returns at once.
                    if (!any && !_opt.BusyPoll && _epoll.Wait(1) > 0) _wake.Clear();
                    continue;
                }
                // Adaptive spin: shortly after a batch, look again without sleeping (epoll_wait with timeout 0);
                // a request's reply then finds the thread awake. An idle thread sleeps as before.
                int timeout = _spinTicks > 0 && System.Diagnostics.Stopwatch.GetTimestamp() - _lastActive < _spinTicks ? 0 : IdleWaitMs;
                int n = _epoll.Wait(timeout);
                for (int i = 0; i < n; i++)
                {
                    ulong token = _epoll.Token(i);
                    if (token == WakeToken) { _wake.Clear(); continue; }
                    if (token >= (ulong)owned.Length) continue;
                    var q = owned[token];
                    SafeDrain(q);
                    if ((_epoll.Events(i) & (EpollErr | EpollHup)) != 0) q.Rx.OnPollError();
                    // A device that is gone reports an error on every wait: stop polling it, or the
                    // thread spins at 100% on it (the runtime shows the port as gone).
                    if (q.Port.Io.Fault is not null) StopPolling(q);
                }
                // An idle thread still reports that it has seen the latest topology and assignment.
                if (n == 0)
                {
                    Volatile.Write(ref _seenVersion, topo.Version);
                    Volatile.Write(ref _seenRxqVersion, rxq.Version);
                }
            }
        }
        catch (Exception e)
        {
            Failure = e;
            StoppedOnFault = true;
        }
        finally
        {
            _ctx.Owned = false;
        }
    }

    /// <summary>
    /// A fault in one port or stage (a bug: nothing on the wire should throw) must not stop
    /// forwarding for every port of the thread: the batch in hand is dropped, the fault counted and
    /// kept for the log (<see cref="Faults"/>, <see cref="Failure"/>), and the loop goes on.
    /// </summary>
    private bool SafeDrain(RxqPoll q)
    {
        try { return Drain(q); }
        catch (Exception e)
        {
            Failure = e;
            Interlocked.Increment(ref _faults);
            try { _batch.ReleaseAll(); } catch (InvalidOperationException) { _batch.Clear(); }
            return false;
        }
    }

    private long _faults;
    /// <summary>Batches dropped because a port or stage threw (see <see cref="SafeDrain"/>).</summary>
    public long Faults => Interlocked.Read(ref _faults);
    /// <summary>True when the loop itself ended on a fault outside a port's batch (<see cref="Failure"/>): its ports are no longer forwarded.</summary>
    public bool StoppedOnFault { get; private set; }

    private bool Drain(RxqPoll q)
    {
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        long frames = 0;
        int portId = q.Port.Id;
        for (int b = 0; b < _opt.MaxBatchesPerWake; b++)
        {
            int n = q.Rx.Receive(_batch, _pool);
            if (n == 0) break;
            frames += n;
            Datapath.CountReceive(_batch, _ctx, portId);
            _dp.ProcessBatch(_batch, _ctx, Environment.TickCount64);
            if (n < _batch.Capacity) break;
        }
        if (frames == 0) return false;
        // Busy time per queue (OVS's rxq cycles): the share each queue takes of its thread, and what a
        // rebalance by load weighs. Two clock reads per drain (TSC here, ~20 ns), not per frame.
        long t1 = System.Diagnostics.Stopwatch.GetTimestamp();
        _lastActive = t1;
        q.Frames += frames;
        q.BusyTicks += t1 - t0;
        _busyTicks += t1 - t0;
        return true;
    }

    public void Dispose()
    {
        Stop();
        // A thread that did not stop (stuck in a port) may still wait on these: leave them to it.
        if (_thread.IsAlive) return;
        _epoll.Dispose();
        _wake.Dispose();
    }
}

/// <summary>
/// One receive queue as a thread polls it: the port, the queue, and what the thread measured on it since
/// it came to this thread (written by the thread only, read racily by the API).
/// </summary>
public sealed class RxqPoll
{
    internal RxqPoll(SwitchPort port, int queue, IRxQueue rx, RxqPoll? before)
    {
        Port = port;
        Queue = queue;
        Rx = rx;
        // The same queue of the same port under a changed SwitchPort (security, VLAN): its counts go on.
        if (before is not null) { Frames = before.Frames; BusyTicks = before.BusyTicks; }
    }

    public SwitchPort Port { get; }
    public int Queue { get; }
    public IRxQueue Rx { get; }
    /// <summary>Frames received from this queue by this thread.</summary>
    public long Frames;
    /// <summary>Stopwatch ticks this thread spent receiving and processing this queue's batches.</summary>
    public long BusyTicks;
}
