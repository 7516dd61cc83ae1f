using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using VSwitch.Api;
using VSwitch.Core;

namespace VSwitchd.Runtime;

/// <summary>
/// The datapath threads and their receive queues (OVS's <c>dpif-netdev/pmd-rxq-show</c>, <c>pmd-rxq-affinity</c> and
/// <c>pmd-rxq-rebalance</c>): which thread polls which port queue, with its frames and its share of the thread's
/// busy time; pins (stored, by port name, applied again whenever the port is there) and a rebalance by measured load.
/// A queue that changes thread is parked first: the old thread has stopped reading it (it passed a quiescent point)
/// before the new one starts, so no frame is read twice or by two threads at once; frames wait in the kernel meanwhile.
/// </summary>
public sealed partial class SwitchRuntime
{
    private const string PinsKey = "rxq-pins";
    // (port name, queue) -> thread; what the operator pinned, kept in the state store.
    private Dictionary<(string Port, int Queue), int>? _pins;

    private Dictionary<(string Port, int Queue), int> Pins => _pins ??= LoadPins();

    private sealed record StoredPin(string Port, int Queue, int Thread);

    private Dictionary<(string, int), int> LoadPins()
    {
        var pins = new Dictionary<(string, int), int>();
        if (Store?.GetMeta(PinsKey) is not { } json) return pins;
        foreach (var p in JsonSerializer.Deserialize<StoredPin[]>(json, OverlayJson) ?? []) pins[(p.Port, p.Queue)] = p.Thread;
        return pins;
    }

    private void SavePins() =>
        Store?.SetMeta(PinsKey, JsonSerializer.Serialize(Pins.Select(e => new StoredPin(e.Key.Port, e.Key.Queue, e.Value)).ToArray(), OverlayJson));

    /// <summary>Receive queues a new port gets: its own setting, else one per datapath thread.</summary>
    private int RxQueuesFor(int? configured) => configured ?? Options.Threads;

    /// <summary>The datapath threads with their receive queues, frames received and CPU time (read from /proc: nothing in the datapath measures it).</summary>
    public ThreadView[] ListThreads()
    {
        var cpu = ThreadCpuSeconds();
        var rxq = Datapath.RxqAssignment;
        return Threads.Select(t =>
        {
            long rx = 0;
            var counters = t.Context.Counters.Ports;
            for (int i = 0; i < counters.Length; i++) rx += counters[i].RxPackets;
            var queues = t.RxQueues;
            long busy = t.BusyTicks;
            long queueBusy = 0;
            foreach (var q in queues) queueBusy += Volatile.Read(ref q.BusyTicks);
            var views = queues.Select(q =>
            {
                long b = Volatile.Read(ref q.BusyTicks);
                return new RxQueueView(q.Port.Name, q.Queue, Volatile.Read(ref q.Frames), Seconds(b),
                    queueBusy > 0 ? Math.Round(100.0 * b / queueBusy, 1) : 0, rxq.IsPinned(new RxQueueRef(q.Port.Id, q.Queue)));
            }).ToArray();
            return new ThreadView(t.Index, t.Name, [.. queues.Select(q => q.Port.Name).Distinct()], rx, Math.Round(cpu.GetValueOrDefault(t.Name), 3), t.IsRunning)
            {
                RxQueues = views,
                BusySeconds = Seconds(busy),
            };
        }).ToArray();
    }

    private static double Seconds(long ticks) => Math.Round((double)ticks / Stopwatch.Frequency, 6);

    /// <summary>
    /// Pins a port's receive queue to a thread (null: unpins it; it stays where it is until a rebalance). Stored.
    /// Refused, naming the bad value, for an unknown port, a queue the port does not have, a thread that does not exist.
    /// </summary>
    public ThreadView[] PinRxQueue(string port, int queue, int? thread)
    {
        lock (_gate)
        {
            var p = Datapath.Topology.PortByName(port) ?? throw NoPort(port);
            int queues = p.Io.RxQueueCount;
            if (queue < 0 || queue >= queues)
                throw new InvalidRequestException($"port '{port}' has {queues} receive queue(s) (0..{queues - 1}): there is no queue {queue}");
            if (thread is int t && (t < 0 || t >= Options.Threads))
                throw new InvalidRequestException($"there is no datapath thread {t}: datapath.threads is {Options.Threads} (0..{Options.Threads - 1})");
            var q = new RxQueueRef(p.Id, queue);
            var now = Datapath.RxqAssignment;
            if (thread is int to)
            {
                ApplyRxq(now.Pin(q, to));
                Pins[(port, queue)] = to;
            }
            else
            {
                ApplyRxq(now.Unpin(q, Options.Threads));
                Pins.Remove((port, queue));
            }
            SavePins();
            _log.LogInformation("receive queue {Port}/{Queue} {What}", port, queue, thread is int th ? $"pinned to thread {th}" : "unpinned");
        }
        return ListThreads();
    }

    /// <summary>
    /// Places every unpinned receive queue again: by the busy time measured on each (the busiest first, each on the
    /// least loaded thread; OVS's pmd-rxq-assign=cycles), or round-robin when nothing was measured yet.
    /// </summary>
    public ThreadView[] RebalanceRxQueues(string? assign = null)
    {
        bool byCycles = assign switch
        {
            null or "cycles" => true,
            "roundrobin" => false,
            _ => throw new InvalidRequestException($"assign: '{assign}' is not a way to assign receive queues (cycles or roundrobin)"),
        };
        lock (_gate)
        {
            var load = new Dictionary<RxQueueRef, long>();
            foreach (var t in _threads)
                foreach (var q in t.RxQueues) load[new RxQueueRef(q.Port.Id, q.Queue)] = Volatile.Read(ref q.BusyTicks);
            var queues = Datapath.RxQueueRefs().Select(q => (q, byCycles ? load.GetValueOrDefault(q) : 0)).ToList();
            ApplyRxq(Datapath.RxqAssignment.Rebalance(queues, Options.Threads));
            _log.LogInformation("receive queues rebalanced over {Threads} thread(s) ({Assign})", Options.Threads, byCycles ? "cycles" : "roundrobin");
        }
        return ListThreads();
    }

    /// <summary>Publishes <paramref name="next"/>, moving queues through a parked step (Datapath.MoveRxQueues says why).</summary>
    private void ApplyRxq(RxqAssignment next) =>
        Datapath.MoveRxQueues(next, _threads, Options.Threads, (t, waited) =>
            _log.LogWarning("datapath thread vswitch-dp{Thread} has not passed a quiescent point for {Seconds:F0} s: a receive queue waits to move",
                t.Index, waited.TotalSeconds));

    /// <summary>A port just joined: its stored pins apply to it again (a restart, a port re-created).</summary>
    private void RestorePins(string port)
    {
        if (Datapath.Topology.PortByName(port) is not { } p) return;
        var a = Datapath.RxqAssignment;
        bool any = false;
        foreach (var ((name, queue), thread) in Pins)
        {
            if (name != port) continue;
            if (queue >= p.Io.RxQueueCount || thread >= Options.Threads)
            {
                _log.LogWarning("stored pin of receive queue {Port}/{Queue} to thread {Thread} does not fit ({Queues} queue(s), {Threads} thread(s)): not applied",
                    port, queue, thread, p.Io.RxQueueCount, Options.Threads);
                continue;
            }
            a = a.Pin(new RxQueueRef(p.Id, queue), thread);
            any = true;
        }
        if (any) ApplyRxq(a);
    }

    /// <summary>A port left: its queues' entries go (its id may be given to another port).</summary>
    private void ForgetRxQueues(int portId) => Datapath.PublishRxqAssignment(Datapath.RxqAssignment.WithoutPort(portId));

    /// <summary>utime + stime of each thread of this process, by name (/proc/self/task/TID/stat, fields 14 and 15, in clock ticks).</summary>
    private static Dictionary<string, double> ThreadCpuSeconds()
    {
        var result = new Dictionary<string, double>();
        // USER_HZ is 100 on every Linux architecture .NET runs on (sysconf(_SC_CLK_TCK)).
        const double ticksPerSecond = 100;
        try
        {
            foreach (var dir in Directory.EnumerateDirectories("/proc/self/task"))
            {
                try
                {
                    string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                    // The name is in parentheses and may hold blanks: the fields start after the last ')'.
                    int open = stat.IndexOf('('), close = stat.LastIndexOf(')');
                    if (open < 0 || close < open) continue;
                    string name = stat[(open + 1)..close];
                    var fields = stat[(close + 2)..].Split(' ');
                    // fields[0] is field 3 (state): utime is field 14, stime 15.
                    double ticks = double.Parse(fields[11], CultureInfo.InvariantCulture) + double.Parse(fields[12], CultureInfo.InvariantCulture);
                    result[name] = result.GetValueOrDefault(name) + ticks / ticksPerSecond;
                }
                catch (IOException) { } // the thread ended meanwhile
            }
        }
        catch (IOException) { }
        return result;
    }
}
