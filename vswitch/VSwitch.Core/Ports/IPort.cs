using VSwitch.Core.Buffers;

namespace VSwitch.Core.Ports;

/// <summary>
/// A place frames come from and go to: a TAP device, an AF_PACKET socket on an existing
/// interface, a tunnel, or memory (tests and benchmarks). A port is driven by the datapath thread
/// that owns it; only that thread calls <see cref="Receive"/>. <see cref="Transmit"/> may be called
/// by any datapath thread (a write to a TAP or socket is atomic per frame in the kernel).
/// </summary>
public interface IPort : IRxQueue, IDisposable
{
    string Name { get; }

    /// <summary>
    /// How many receive queues the port has (RSS: a multiqueue TAP, an AF_PACKET fanout group, VXLAN
    /// sockets sharing the port with SO_REUSEPORT). Each queue is polled by one datapath thread at a
    /// time (<see cref="RxqAssignment"/>); the port itself is queue 0. A new port type declares its
    /// queues by overriding this and <see cref="RxQueue"/>.
    /// </summary>
    int RxQueueCount => 1;

    /// <summary>Receive queue <paramref name="queue"/> (0..<see cref="RxQueueCount"/>-1); queue 0 is the port itself.</summary>
    IRxQueue RxQueue(int queue) => this;

    /// <summary>
    /// Sends every packet of the batch and returns all of them to their pools, sent or not.
    /// Returns how many were sent; the rest are counted by the caller as tx drops.
    /// </summary>
    int Transmit(PacketBatch batch);

    /// <summary>
    /// True while the kernel refuses frames because the port's device is down (a TAP whose interface is not up,
    /// as between its creation and its configuration, or after `ip link set down` in the container, answers every
    /// write with EIO). The output stage then counts what <see cref="Transmit"/> could not send as port-down, not
    /// tx-failed: the Linux bridge does not forward to a port that is not up either.
    /// </summary>
    bool LinkDown => false;

    /// <summary>
    /// True when <see cref="Transmit"/> takes TCP super-frames (<see cref="Packet.GsoSize"/> set)
    /// whole; otherwise the datapath segments them before they reach the port (Offload/GsoFrame).
    /// </summary>
    bool AcceptsGso => false;

    /// <summary>
    /// Why the port can no longer carry frames (its device is gone), or null while it can. A port with
    /// a fault is no longer polled: a dead device must cost no CPU. Set by the port itself, once.
    /// </summary>
    string? Fault => null;

}

/// <summary>
/// One receive queue of a port: what a datapath thread polls. Only the thread the queue is assigned to
/// calls <see cref="Receive"/>; a queue moves to another thread only after its old thread has passed a
/// quiescent point (<see cref="DatapathThread.SeenRxqVersion"/>), so two threads never read one queue.
/// </summary>
public interface IRxQueue
{
    /// <summary>A file descriptor that becomes readable when frames wait (for epoll), or -1.</summary>
    int PollFd { get; }

    /// <summary>
    /// Fills <paramref name="batch"/> with up to its free capacity of frames, in buffers rented
    /// from <paramref name="pool"/>. Never blocks. Returns how many frames were added.
    /// </summary>
    int Receive(PacketBatch batch, PacketPool pool);

    /// <summary>
    /// The poll set reported an error or hang-up on <see cref="PollFd"/>: the queue reads and clears
    /// what it must (so the error does not wake the thread again) and its port sets
    /// <see cref="IPort.Fault"/> if its device is gone.
    /// </summary>
    void OnPollError() { }
}

/// <summary>
/// A port's own counters (offload work, kernel-side drops) for the API: things the datapath's
/// per-port counters cannot see, such as frames the kernel dropped before the switch read them.
/// Read from the control thread; may be a few packets behind.
/// </summary>
public interface IPortDiagnostics
{
    IReadOnlyList<KeyValuePair<string, long>> Diagnostics();
}

/// <summary>
/// A tunnel port (VXLAN): frames arrive with their tunnel key and remote endpoint in
/// <see cref="Buffers.Packet.TunnelId"/>/<see cref="Buffers.Packet.TunnelRemote"/>, and leave for the
/// remote and key set on each packet. It belongs to no single network: the key picks the network.
/// </summary>
public interface ITunnelPort : IPort
{
}

/// <summary>The diagnostics of a port with several receive queues: each queue's counters, summed by name, and rx-queues.</summary>
internal static class QueueDiagnostics
{
    /// <param name="queue0">Queue 0's own counters (the port's).</param>
    /// <param name="others">The other queues' own counters, the same names in the same order.</param>
    public static IReadOnlyList<KeyValuePair<string, long>> Sum(KeyValuePair<string, long>[] queue0, IEnumerable<KeyValuePair<string, long>[]> others)
    {
        var sum = (KeyValuePair<string, long>[])queue0.Clone();
        int queues = 1;
        foreach (var d in others)
        {
            queues++;
            for (int i = 0; i < sum.Length; i++) sum[i] = new(sum[i].Key, sum[i].Value + d[i].Value);
        }
        return queues == 1 ? sum : [.. sum, new("rx-queues", queues)];
    }
}
