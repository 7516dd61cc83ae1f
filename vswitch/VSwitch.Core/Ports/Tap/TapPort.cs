// TapPort is one class in four files, split along its seams: TapPort.cs (the port's face: options,
// counters, diagnostics, Receive/Transmit choosing a path, Dispose), TapPort.Plain.cs (one read or
// write per frame), TapPort.Offload.cs (virtio headers, large buffers, the scratch buffer) and
// TapPort.Ring.cs (io_uring batches). Device set-up is a type of its own, TapDevice: it runs once,
// in Create, and hands the port nothing but the fd and the name.
// The I/O paths are partial files of one class, not types, because they are not separable state:
// they share the fd, the counters (public fields: TxGsoFrames written by both writers, RxErrors and
// RxTruncated by three readers), the VnetDelivery state and the "frames waiting" signal, and they
// fall into each other within one call (a ring that fails goes on with plain writes; the offloaded
// receive picks the ring or the scratch buffer per batch). As types, each would reach all of that
// through a reference back to the port or a shared state object: the same coupling, plus one more
// load wherever a path touches it, per frame for VnetDelivery and TxGsoFrames. Partial files give the
// seams without changing a line of the hot path.

using System.Runtime.InteropServices;
using Tmds.Linux;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports.Linux;

namespace VSwitch.Core.Ports;

/// <summary>
/// A TAP device: the switch holds the character-device side, the device itself usually lives in a
/// container's namespace. A TAP offers no batch call, one read() or write() per frame; so reads
/// (with offloads) and writes go through io_uring (<see cref="TapOptions.IoUring"/>, the default):
/// up to 64 readv or writev requests with RWF_NOWAIT per io_uring_enter, each completing at once
/// with a frame or -EAGAIN. A kernel that refuses (no io_uring, no RWF_NOWAIT on TAPs) makes the
/// port fall back to plain calls, counted in <c>ring-failures</c>.
/// <para>
/// Offloads (<see cref="TapOptions.Offloads"/>, the default): opened with IFF_VNET_HDR,
/// TUNSETVNETHDRSZ 10 and TUNSETOFFLOAD CSUM|TSO4|TSO6|TSO_ECN. The namespace then hands over
/// partial checksums and TCP segments of up to 64 KB behind a virtio_net_hdr. Each frame is read
/// straight into a 64 KiB buffer of the thread's large pool: a TCP super-frame stays there whole
/// and is written whole to the next offloading TAP behind a GSO header (Offload/README.md); an
/// ordinary frame is copied into a 2 KiB packet, its checksum completed if NEEDS_CSUM. With no
/// large buffer free, the frame goes through a per-port scratch buffer and a super-frame is cut by
/// <see cref="Offload.TcpSegmenter"/> into MSS-sized packets (one that does not fit in the batch or the
/// pool is resumed on the next Receive). UDP GSO and bad offsets are dropped and counted. No
/// allocation per frame on either path.
/// </para>
/// <para>
/// Without offloads: IFF_TAP | IFF_NO_PI, the kernel segments and checksums, frames read are
/// complete (straight into a pool slot), and frames written must carry complete checksums (which
/// every port guarantees on receive).
/// </para>
/// </summary>
public sealed unsafe partial class TapPort : IPort, IPortDiagnostics
{
    /// <summary>Bytes of virtio_net_hdr in front of every frame when offloads are on (TUNSETVNETHDRSZ).</summary>
    public const int VnetHeaderSize = VirtioNetHdr.Size;
    /// <summary>
    /// Read buffer with offloads: a 64 KiB GSO frame (IP total length ≤ 65535) + Ethernet + two VLAN
    /// tags + the virtio header, rounded up. A read that fills it exactly is taken as truncated.
    /// </summary>
    public const int ScratchSize = 64 * 1024 + 512;

    private int _fd;
    private readonly bool _offloads;

    private TapPort(int fd, string name, string? netns, bool offloads, bool ioUring)
    {
        _fd = fd;
        Name = name;
        Netns = netns;
        _offloads = offloads;
        if (ioUring)
        {
            _txRing = IoUring.TryCreate(RingBatch, out _);
            if (_txRing is not null)
            {
                _txIov = (IoVec*)NativeMemory.AllocZeroed((nuint)(2 * RingBatch * sizeof(IoVec)));
                _txHdr = (VirtioNetHdr*)NativeMemory.AllocZeroed((nuint)(RingBatch * sizeof(VirtioNetHdr)));
            }
            if (offloads && _txRing is not null)
            {
                _rxRing = IoUring.TryCreate(RingBatch, out _);
                _rxIov = (IoVec*)NativeMemory.AllocZeroed((nuint)(2 * RingBatch * sizeof(IoVec)));
                _rxHdr = (VirtioNetHdr*)NativeMemory.AllocZeroed((nuint)(RingBatch * sizeof(VirtioNetHdr)));
            }
        }
        if (!offloads) return;
        try
        {
            _waiting = new WaitingSignal(name, fd);
            _scratch = (byte*)NativeMemory.AlignedAlloc(ScratchSize, 64);
        }
        catch
        {
            _waiting?.Dispose();
            _rxRing?.Dispose();
            _txRing?.Dispose();
            throw; // Create closes the TAP fd
        }
    }

    public string Name { get; }
    /// <summary>The namespace the device was moved into, or null.</summary>
    public string? Netns { get; }
    /// <summary>The TAP fd, or with offloads an epoll fd over it and the "frame waiting" eventfd.</summary>
    public int PollFd => _waiting?.PollFd ?? _fd;
    /// <summary>True when the TAP was opened with IFF_VNET_HDR and TUNSETOFFLOAD.</summary>
    public bool Offloads => _offloads;
    /// <summary>With offloads, TCP super-frames are written whole behind a GSO virtio header.</summary>
    public bool AcceptsGso => _offloads;

    // Counters: Rx* plain fields, written only by the thread that owns the port; Tx* added once per
    // batch with an atomic add (CountTransmit), since every datapath thread may send.
    /// <summary>Packets handed to the switch (segments count one each).</summary>
    public long RxFrames;
    public long TxFrames;
    /// <summary>Frames not sent because the device queue was full (EAGAIN) or the device was down.</summary>
    public long TxDropped;
    /// <summary>TCP super-frames written whole (with a GSO virtio header).</summary>
    public long TxGsoFrames;
    /// <summary>Frames dropped on receive because the pool was empty (without offloads) or a read failed.</summary>
    public long RxErrors;
    private volatile string? _fault;

    /// <summary>
    /// Set once tun says the device is gone (EBADFD: its namespace was deleted or the link removed):
    /// the port can never receive again, so the datapath stops polling it instead of spinning on
    /// its error, and the runtime shows the port as gone with this reason.
    /// </summary>
    public string? Fault
    {
        get
        {
            if (_fault is not null) return _fault;
            foreach (var q in _queues) if (q.Fault is { } f) return f;
            return null;
        }
    }

    /// <summary>Counts a failed read; EBADFD means the device itself is gone.</summary>
    private void RxError(int errno)
    {
        RxErrors++;
        if (errno == NativeError.EBADFD && _fault is null) _fault = $"device {Name} is gone (its namespace was deleted or the link removed)";
    }
    /// <summary>GSO super-frames segmented in software.</summary>
    public long RxGsoFrames => Volatile.Read(ref _vnet.GsoFrames);
    /// <summary>Segments produced from GSO super-frames.</summary>
    public long RxGsoSegments => Volatile.Read(ref _vnet.GsoSegments);
    /// <summary>GSO super-frames handed to the switch whole (not segmented).</summary>
    public long RxGsoWhole => Volatile.Read(ref _vnet.GsoWhole);
    /// <summary>Partial checksums completed.</summary>
    public long RxChecksumsCompleted => Volatile.Read(ref _vnet.ChecksumsCompleted);
    /// <summary>Frames dropped because they need an offload this port cannot do (UDP GSO, GSO of something not TCP, bad offsets).</summary>
    public long RxUnsupportedOffload => Volatile.Read(ref _vnet.UnsupportedOffload);
    /// <summary>Frames that filled the scratch buffer (possibly cut short) or were shorter than the virtio header.</summary>
    public long RxTruncated;
    /// <summary>Frames (or segments) longer than a pool frame.</summary>
    public long RxOversize => Volatile.Read(ref _vnet.Oversize);
    /// <summary>Receive calls that stopped because the pool was empty (offloads: the frame waits).</summary>
    public long RxPoolEmpty => Volatile.Read(ref _vnet.PoolEmpty);

    /// <summary>Which of the TAP's I/O paths go through io_uring: "rx+tx", "tx" or "off" (the kernel refused, or turned off).</summary>
    public string IoUringMode => (_rxRing is not null, _txRing is not null) switch
    {
        (true, true) => "rx+tx",
        (false, true) => "tx",
        (true, false) => "rx",
        _ => "off",
    };

    // A multiqueue TAP's counters are the sum of its queues'.
    public IReadOnlyList<KeyValuePair<string, long>> Diagnostics() => QueueDiagnostics.Sum(OwnDiagnostics(), _queues.Select(q => q.OwnDiagnostics()));

    private KeyValuePair<string, long>[] OwnDiagnostics() =>
    [
        new("rx-frames", Volatile.Read(ref RxFrames)),
        new("rx-errors", Volatile.Read(ref RxErrors)),
        new("rx-gso-whole", RxGsoWhole),
        new("rx-gso-frames", RxGsoFrames),
        new("rx-gso-segments", RxGsoSegments),
        new("rx-checksums-completed", RxChecksumsCompleted),
        new("rx-unsupported-offload", RxUnsupportedOffload),
        new("rx-truncated", Volatile.Read(ref RxTruncated)),
        new("rx-oversize", RxOversize),
        new("rx-pool-empty", RxPoolEmpty),
        new("tx-frames", Volatile.Read(ref TxFrames)),
        new("tx-dropped", Volatile.Read(ref TxDropped)),
        new("tx-gso-frames", Volatile.Read(ref TxGsoFrames)),
        new("ring-reads", Volatile.Read(ref RingReads)),
        new("ring-writes", Volatile.Read(ref RingWrites)),
        new("ring-failures", Volatile.Read(ref RingFailures)),
        new("ring-lost-buffers", Volatile.Read(ref RingLostBuffers)),
    ];

    /// <summary>
    /// Creates the TAP, sets MAC and MTU, then runs the host set-up (<see cref="TapOptions.Setup"/>:
    /// namespace, addresses, routes) or brings it up here. On any failure the fd is closed, so no device is left.
    /// </summary>
    public static TapPort Create(TapOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        int fd = TapDevice.Open(o, out string name, out int[] queueFds);
        TapPort? port = null;
        try
        {
            port = new TapPort(fd, name, o.Netns, o.Offloads, o.IoUring) { Persistent = o.Persistent };
            port.AddQueues(queueFds, o.IoUring);
            return port;
        }
        catch
        {
            if (port is not null) port.Dispose();
            else
            {
                foreach (int q in queueFds) LibC.close(q);
                LibC.close(fd);
            }
            throw;
        }
    }

    // Queues 1.. of a multiqueue TAP: each a port of its own over its fd (rings, scratch buffer, signal),
    // reached only through RxQueue and Transmit. Queue 0 is this port.
    private TapPort[] _queues = [];

    private void AddQueues(ReadOnlySpan<int> fds, bool ioUring)
    {
        var queues = new TapPort[fds.Length];
        for (int i = 0; i < fds.Length; i++)
        {
            try { queues[i] = new TapPort(fds[i], Name, Netns, _offloads, ioUring); }
            catch
            {
                for (int k = 0; k < i; k++) queues[k].Dispose();
                for (int k = i; k < fds.Length; k++) LibC.close(fds[k]);
                throw;
            }
        }
        _queues = queues;
    }

    /// <summary>Receive queues: 1, or the multiqueue TAP's (<see cref="TapOptions.Queues"/>).</summary>
    public int RxQueueCount => 1 + _queues.Length;

    public IRxQueue RxQueue(int queue) => queue == 0 ? this : _queues[queue - 1];

    /// <summary>The fds of queues 1.. (to hand them to a successor process with <see cref="DeviceFd"/>).</summary>
    public int[] QueueFds() => [.. _queues.Select(q => q.DeviceFd)];

    /// <summary>
    /// A port over a TAP fd another process opened and handed over (a hitless restart passes it with
    /// SCM_RIGHTS): the device exists and is configured; only this process's side is built (rings, the
    /// "frames waiting" signal). The fd must be the TAP's character-device fd, non-blocking, opened with
    /// IFF_VNET_HDR exactly when <paramref name="offloads"/>. On failure the fd is left open for the caller.
    /// </summary>
    public static TapPort Adopt(int fd, string name, string? netns, bool offloads, bool ioUring, bool persistent = false, int[]? queueFds = null)
    {
        if (fd < 0) throw new ArgumentOutOfRangeException(nameof(fd), fd, $"{name}: not a file descriptor");
        var port = new TapPort(fd, name, netns, offloads, ioUring) { Persistent = persistent };
        if (queueFds is { Length: > 0 }) port.AddQueues(queueFds, ioUring);
        return port;
    }

    /// <summary>
    /// Attaches to a persistent TAP that already exists (TUNSETPERSIST kept it, with its MAC, MTU and addresses,
    /// when the process that made it died): <paramref name="tunFd"/> is /dev/net/tun opened in the device's network
    /// namespace (tun looks the name up in the namespace the file was opened in; the caller enters it, this library
    /// does not), <paramref name="o"/>'s Name the device's name there. Nothing is configured: the device is as it was.
    /// The fd is the port's from here on, closed on failure. <paramref name="portName"/>: the port's name when it
    /// is not the device's (a container's interface renamed eth0 in its namespace).
    /// </summary>
    /// <param name="queueFds">More /dev/net/tun files opened there, for queues 1.. of a multiqueue device (closed if it is not one).</param>
    public static TapPort Reattach(int tunFd, TapOptions o, string? portName = null, int[]? queueFds = null)
    {
        ArgumentNullException.ThrowIfNull(o);
        int[] queues = TapDevice.Attach(tunFd, queueFds ?? [], o);
        TapPort? port = null;
        try
        {
            port = new TapPort(tunFd, portName ?? o.Name, o.Netns, o.Offloads, o.IoUring) { Persistent = true, Reattached = true };
            port.AddQueues(queues, o.IoUring);
            return port;
        }
        catch
        {
            if (port is not null) port.Dispose();
            else
            {
                foreach (int q in queues) LibC.close(q);
                LibC.close(tunFd);
            }
            throw;
        }
    }

    /// <summary>The device outlives the port (TUNSETPERSIST): closing leaves it, <see cref="Unpersist"/> then closing removes it.</summary>
    public bool Persistent { get; private set; }

    /// <summary>Made by <see cref="Reattach"/>: an existing device taken up again, not created.</summary>
    public bool Reattached { get; private init; }

    /// <summary>Turns persistence off, so that closing the port removes the device (a port or attachment removed for good).</summary>
    public void Unpersist()
    {
        if (!Persistent || _fd < 0) return;
        if (NativeMethods.ioctl(_fd, Tun.TUNSETPERSIST, 0) < 0) NativeError.Throw(Name, "ioctl(TUNSETPERSIST, 0)");
        Persistent = false;
    }

    /// <summary>The TAP's own fd (not the poll fd), to hand it to a successor process; -1 once disposed.</summary>
    public int DeviceFd => _fd;

    /// <summary>Whether the ports' writes and reads go through io_uring when the kernel allows it (as created).</summary>
    public bool UsesIoUring => _txRing is not null;

    public int Receive(PacketBatch batch, PacketPool pool) => _offloads ? ReceiveOffloaded(batch, pool) : ReceivePlain(batch, pool);

    /// <summary>
    /// Any datapath thread may call this at the same time as others. Transmit state: the io_uring
    /// transmit ring and its iovec/header/result arrays belong to whichever sender holds
    /// <c>_txBusy</c> (one atomic exchange per batch, uncontended with one thread); a sender that
    /// finds it held writes frame by frame with iovecs on its own stack (<see cref="TransmitPlain"/>).
    /// Receive has its own ring, arrays and scratch buffer: the two directions share only the fd.
    /// </summary>
    public int Transmit(PacketBatch batch)
    {
        // A multiqueue TAP: each datapath thread writes to a queue of its own (thread t to queue t modulo the
        // queues), so threads do not share a ring; tun's flow steering then sends a flow's replies to the queue
        // it was written to. Other threads (tests, benchmarks) pick one by managed thread id.
        if (_queues.Length > 0)
        {
            int sender = DatapathSender.Index;
            int q = (sender >= 0 ? sender : Environment.CurrentManagedThreadId) % (_queues.Length + 1);
            if (q > 0) return _queues[q - 1].Transmit(batch);
        }
        if (_txRing is not null && batch.Count > 1 && Interlocked.CompareExchange(ref _txBusy, 1, 0) == 0)
        {
            try { if (_txRing is not null) return TransmitRing(batch); }
            finally { Volatile.Write(ref _txBusy, 0); }
        }
        return TransmitPlain(batch);
    }

    // Set when a write is refused with EIO (the interface is not up), cleared by the next frame that goes through;
    // written by whichever datapath thread sent last (a hint for the drop reason, not a lock).
    private volatile bool _linkDown;
    public bool LinkDown
    {
        get
        {
            if (_linkDown) return true;
            foreach (var q in _queues) if (q._linkDown) return true; // a multiqueue TAP's other queues
            return false;
        }
    }

    private void CountTransmit(int sent, int dropped, int gso)
    {
        Interlocked.Add(ref TxFrames, sent);
        if (dropped != 0) Interlocked.Add(ref TxDropped, dropped);
        if (gso != 0) Interlocked.Add(ref TxGsoFrames, gso);
    }

    /// <summary>Closes the fd; the kernel removes a non-persistent TAP, in whatever namespace it is.</summary>
    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd < 0) return;
        foreach (var q in _queues) q.Dispose();
        LibC.close(fd);
        // Receive runs on the owning datapath thread, which has stopped polling this port by now.
        DisposeOffload();
        DisposeRings();
    }

    public override string ToString() => Netns is null ? $"tap {Name}" : $"tap {Name} (netns {Netns})";
}
