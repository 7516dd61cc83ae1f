using VSwitch.Core.Buffers;

namespace VSwitch.Core.Ports;

/// <summary>
/// A place frames come from and go to: a TAP device, an AF_PACKET socket on an existing
/// interface, a tunnel, or memory (tests and benchmarks). A port is driven by the datapath thread
/// that owns it; only that thread calls <see cref="Receive"/>. <see cref="Transmit"/> may be called
/// by any datapath thread (a write to a TAP or socket is atomic per frame in the kernel).
/// </summary>
public interface IPort : IDisposable
{
    string Name { get; }

    /// <summary>A file descriptor that becomes readable when frames wait (for epoll), or -1.</summary>
    int PollFd { get; }

    /// <summary>
    /// Fills <paramref name="batch"/> with up to its free capacity of frames, in buffers rented
    /// from <paramref name="pool"/>. Never blocks. Returns how many frames were added.
    /// </summary>
    int Receive(PacketBatch batch, PacketPool pool);

    /// <summary>
    /// Sends every packet of the batch and returns all of them to their pools, sent or not.
    /// Returns how many were sent; the rest are counted by the caller as tx drops.
    /// </summary>
    int Transmit(PacketBatch batch);

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

    /// <summary>
    /// The poll set reported an error or hang-up on <see cref="PollFd"/>: the port reads and clears
    /// what it must (so the error does not wake the thread again) and sets <see cref="Fault"/> if its
    /// device is gone.
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
