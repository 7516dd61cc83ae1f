using System.Runtime.InteropServices;
using Tmds.Linux;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports.Linux;

namespace VSwitch.Core.Ports.AfXdp;

/// <summary>
/// An existing interface attached through an AF_XDP socket: an XDP program on the interface redirects
/// the frames of one receive queue into the socket's UMEM, so they never go up the kernel's stack of the
/// switch's namespace (in native mode the driver runs the program: on veth, in its NAPI, on the skb the
/// peer sent, which is freed there); transmit writes UMEM frames into the tx ring and kicks the kernel
/// with one sendto() when it asks (need_wakeup).
/// <para>
/// Frames are copied between the UMEM and the switch's pool buffers in both directions (the pool's
/// buffers are not the UMEM's; making them so is the zero-copy step this port does not take yet).
/// A copy of a 64-byte frame costs nanoseconds; what AF_XDP saves is the kernel's per-frame work.
/// </para>
/// <para>
/// Threads: only the owning thread calls <see cref="Receive"/> (rx and fill rings). The tx and
/// completion rings are single-producer rings of the kernel's, so every sender takes the port's
/// transmit flag (one atomic exchange, spun on while another thread holds it for its batch: the
/// critical section is copying ≤ 64 frames and one sendto kick, up to four on kernels that keep the
/// copy-mode transmit budget at 32). This is OVS's answer for a
/// txq shared by PMD threads; the per-sender state of <see cref="SenderSlots{T}"/> does not apply since
/// there is one ring to produce into, not a socket that takes concurrent sends.
/// </para>
/// <para>
/// A hitless restart hands the port to a successor process (<see cref="HandoverFds"/>, <see cref="Adopt"/>,
/// <see cref="TxFreeFrames"/>, <see cref="ResumeAfterHandover"/>): the UMEM is a memfd both map, the rings are the
/// socket's own pages, and the program stays attached through its link the whole time.
/// </para>
/// </summary>
public sealed unsafe class AfXdpPort : IPort, IPortDiagnostics
{
    private readonly XskSocket _xsk;
    private readonly XdpProgram _prog;
    private readonly int _frameSize;
    private readonly ulong _frameMask;
    // Transmit frames not in the tx or completion ring: a stack of UMEM addresses, under _txBusy.
    private readonly ulong* _txFree;
    private int _txFreeCount;
    private int _txBusy;
    private int _disposed;
    // An adopted port (a hitless restart's successor) touches no ring until its predecessor stopped and
    // ResumeAfterHandover read the rings' indices and the free transmit frames again.
    private volatile bool _held;

    public string Name { get; }
    public int IfIndex { get; }
    public int QueueId { get; }
    public int PollFd => _disposed == 0 ? _xsk.Fd : -1;
    /// <summary>How the port runs: native or generic XDP, zero-copy or copy.</summary>
    public XskMode Mode { get; }
    /// <summary>The better modes the kernel refused, each with its reason (empty when the first choice worked).</summary>
    public IReadOnlyList<string> Refused { get; }
    public uint RingSize => _xsk.RingSize;
    public int FrameSize => _frameSize;
    /// <summary>UMEM frames: the first half receive, the second transmit.</summary>
    public int FrameCount => _xsk.FrameCount;

    // Rx* plain fields of the owning thread; Tx* under the transmit flag, read racily for the API.
    public long RxFrames;
    public long RxPoolEmpty;
    public long RxOversize;
    public long FillKicks;
    public long TxFrames;
    /// <summary>Frames not sent because the tx ring or the transmit half of the UMEM was full.</summary>
    public long TxDropped;
    /// <summary>Frames longer than a UMEM frame.</summary>
    public long TxErrors;
    public long TxKicks;
    /// <summary>sendto kicks that failed with something other than "busy, try later" (EAGAIN/EBUSY/ENOBUFS).</summary>
    public long TxKickErrors;
    public long SocketErrors;

    private volatile string? _fault;
    public string? Fault => _fault;
    // An AF_XDP socket never reports its device's removal through poll (the kernel sets sk_err and
    // unbinds, but xsk_poll answers neither EPOLLERR nor EPOLLIN afterwards), so the datapath would
    // never call OnPollError: the port looks for its interface once a second itself, off the datapath.
    private readonly Timer _deviceWatch;

    private AfXdpPort(string name, int ifIndex, int queue, XskSocket xsk, XdpProgram prog, XskMode mode, IReadOnlyList<string> refused, bool held = false)
    {
        _held = held;
        Name = name;
        IfIndex = ifIndex;
        QueueId = queue;
        _xsk = xsk;
        _prog = prog;
        Mode = mode with { ZeroCopy = xsk.ZeroCopy };
        Refused = refused;
        _frameSize = xsk.FrameSize;
        _frameMask = ~(ulong)(xsk.FrameSize - 1);
        int txFrames = xsk.FrameCount / 2;
        _txFree = (ulong*)NativeMemory.Alloc((nuint)(txFrames * sizeof(ulong)));
        for (int i = 0; i < txFrames; i++) _txFree[i] = (ulong)(txFrames + i) * (ulong)_frameSize;
        _txFreeCount = txFrames;
        _deviceWatch = new Timer(static s => ((AfXdpPort)s!).CheckDevice(), this, 1000, 1000);
    }

    private void CheckDevice()
    {
        if (_fault is null && _disposed == 0 && NativeMethods.IfNameToIndex(Name) != IfIndex)
            _fault = $"interface {Name} is gone (deleted, or moved away with its namespace)";
    }

    public static AfXdpPort Open(string interfaceName) => Open(new AfXdpOptions { Interface = interfaceName });

    /// <summary>
    /// Loads the program, then tries the modes the options allow, best first (native zero-copy, native
    /// copy, generic copy). Throws a <see cref="PortException"/> that names every refusal and its errno
    /// when none works; nothing is left attached then.
    /// </summary>
    public static AfXdpPort Open(AfXdpOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        string name = o.Interface;
        if (o.Validate() is { } bad) throw new ArgumentException($"{(name.Length > 0 ? name : "afxdp")}: {bad}", nameof(o));
        int ifIndex = NativeMethods.IfNameToIndex(name);
        if (ifIndex == 0) throw new PortException($"{name}: no such interface in this network namespace", NativeError.ENODEV);

        var prog = XdpProgram.Load(name, o.QueueId + 1);
        var refused = new List<string>();
        int lastErrno = NativeError.EOPNOTSUPP;
        foreach (var mode in o.Candidates())
        {
            XskSocket? xsk = null;
            try
            {
                prog.Attach(ifIndex, mode.Native);
                xsk = XskSocket.Open(name, ifIndex, o.QueueId, o.RingSize, o.FrameSize, mode.ZeroCopy ? Xsk.XDP_ZEROCOPY : Xsk.XDP_COPY);
                prog.SetSocket(o.QueueId, xsk.Fd);
                return new AfXdpPort(name, ifIndex, o.QueueId, xsk, prog, mode, refused);
            }
            catch (PortException e)
            {
                xsk?.Dispose();
                prog.Detach();
                // "DEV: call failed: ..." once, not once per mode.
                string why = e.Message.StartsWith(name + ": ", StringComparison.Ordinal) ? e.Message[(name.Length + 2)..] : e.Message;
                refused.Add($"{mode}: {why}");
                lastErrno = e.Errno;
                // No permission or no AF_XDP at all: the other modes will say the same.
                if (e.Errno is NativeError.EPERM or 97 /* EAFNOSUPPORT */) break;
            }
        }
        prog.Dispose();
        throw new PortException($"{name}: the kernel refused AF_XDP in every mode allowed ({string.Join("; ", refused)})",
            lastErrno);
    }

    /// <summary>
    /// The port over what a predecessor process handed over (<see cref="HandoverFds"/>, in that order): the bound
    /// socket, its UMEM's memfd, the program's link, map and program. The program stays attached throughout, so frames
    /// arriving meanwhile wait in the rx ring. The port receives and sends nothing until
    /// <see cref="ResumeAfterHandover"/>. On failure the descriptors are left open for the caller.
    /// </summary>
    public static AfXdpPort Adopt(string name, int queue, ReadOnlySpan<int> fds, uint ringSize, int frameSize, int frameCount,
        XskMode mode, IReadOnlyList<string> refused)
    {
        if (fds.Length != 5) throw new PortException($"{name}: an AF_XDP port takes 5 descriptors (socket, UMEM, link, map, program), not {fds.Length}", NativeError.EINVAL);
        int ifIndex = NativeMethods.IfNameToIndex(name);
        if (ifIndex == 0) throw new PortException($"{name}: no such interface in this network namespace", NativeError.ENODEV);
        var xsk = XskSocket.Adopt(fds[0], fds[1], name, ringSize, frameSize, frameCount);
        var prog = XdpProgram.Adopt(name, fds[3], fds[4], fds[2]);
        return new AfXdpPort(name, ifIndex, queue, xsk, prog, mode, refused, held: true);
    }

    /// <summary>What a successor needs, in <see cref="Adopt"/>'s order: the socket, the UMEM memfd, the link, the map, the program.</summary>
    public int[] HandoverFds() => [_xsk.Fd, _xsk.UmemFd, _prog.LinkFd, _prog.MapFd, _prog.ProgFd];

    /// <summary>
    /// The transmit frames this process holds free (not in the tx or completion ring, not in flight), for a successor.
    /// Which UMEM frames are free is this process's own state: the rings cannot tell a free frame from one the kernel
    /// is still sending. Called once the datapath stopped; the transmit flag is taken all the same.
    /// </summary>
    public ulong[] TxFreeFrames()
    {
        while (Interlocked.Exchange(ref _txBusy, 1) != 0) Thread.SpinWait(4);
        try { return new ReadOnlySpan<ulong>(_txFree, _txFreeCount).ToArray(); }
        finally { Volatile.Write(ref _txBusy, 0); }
    }

    /// <summary>
    /// An adopted port starts: the predecessor has stopped, so the rings' shared indices are where it left them (the
    /// rx and fill rings need nothing else: every receive frame is in the fill ring, the rx ring or the kernel).
    /// <paramref name="txFree"/> is the predecessor's <see cref="TxFreeFrames"/>; it is checked (transmit-half,
    /// frame-aligned, distinct, and with the frames still in the tx/completion rings exactly the transmit half).
    /// Without a list that passes, the free frames are rebuilt from the rings: every transmit frame but those of the
    /// tx descriptors not yet completed (exact when the kernel completes in order, as copy mode does). Returns how.
    /// </summary>
    public string ResumeAfterHandover(ulong[]? txFree)
    {
        if (!_held) return "already running";
        _xsk.Rx.Resync();
        _xsk.Fill.Resync();
        _xsk.Tx.Resync();
        _xsk.Completion.Resync();
        int txFrames = _xsk.FrameCount / 2;
        uint outstanding = _xsk.Tx.ProducerIndex - _xsk.Completion.ConsumerIndex;
        string how;
        var busy = new bool[txFrames];
        if (txFree is not null && ValidTxFree(txFree, outstanding, busy))
        {
            txFree.AsSpan().CopyTo(new Span<ulong>(_txFree, txFrames));
            _txFreeCount = txFree.Length;
            how = $"{txFree.Length} free transmit frames as the predecessor left them, {outstanding} in the rings";
        }
        else
        {
            Array.Clear(busy);
            int held = 0;
            for (uint i = _xsk.Completion.ConsumerIndex; i != _xsk.Tx.ProducerIndex && held < txFrames; i++)
            {
                long slot = (long)(_xsk.Tx.DescAt(i).Addr & _frameMask) / _frameSize - txFrames;
                if (slot >= 0 && slot < txFrames && !busy[slot]) { busy[slot] = true; held++; }
            }
            _txFreeCount = 0;
            for (int f = 0; f < txFrames; f++)
                if (!busy[f]) _txFree[_txFreeCount++] = (ulong)(txFrames + f) * (ulong)_frameSize;
            how = $"{(txFree is null ? "no list from the predecessor" : "the predecessor's list did not add up")}: rebuilt from the rings, {_txFreeCount} free, {outstanding} in the rings";
        }
        _held = false;
        return how;
    }

    private bool ValidTxFree(ulong[] free, uint outstanding, bool[] seen)
    {
        int txFrames = seen.Length;
        if ((long)free.Length + outstanding != txFrames) return false;
        foreach (ulong addr in free)
        {
            if (addr % (ulong)_frameSize != 0) return false;
            long slot = (long)(addr / (ulong)_frameSize) - txFrames;
            if (slot < 0 || slot >= txFrames || seen[slot]) return false;
            seen[slot] = true;
        }
        return true;
    }

    public int Receive(PacketBatch batch, PacketPool pool)
    {
        if (_disposed != 0 || _held) return 0;
        var rx = _xsk.Rx;
        uint n = rx.Available((uint)(batch.Capacity - batch.Count));
        if (n == 0) return 0;
        var fill = _xsk.Fill;
        // Every frame the kernel handed over came out of the fill ring, so there is room to give it back.
        fill.Free(n);
        byte* umem = _xsk.Umem;
        uint done = 0;
        int added = 0;
        for (; done < n; done++)
        {
            ref readonly XdpDesc d = ref rx.DescToConsume(done);
            var p = pool.TryRent();
            if (p is null) { RxPoolEmpty++; break; } // this frame and the rest wait in the ring
            if ((int)d.Len > p.ReceiveCapacity) { RxOversize++; p.Release(); }
            else
            {
                p.CopyFrom(new ReadOnlySpan<byte>(umem + d.Addr, (int)d.Len));
                batch.Add(p);
                added++;
            }
            fill.AddressToProduce(done) = d.Addr & _frameMask;
        }
        if (done == 0) return 0;
        rx.Release(done);
        fill.Submit(done);
        // Copy mode never sets it; a zero-copy driver may, when it ran out of fill entries.
        if (fill.NeedsWakeup)
        {
            XskCalls.recvfrom(_xsk.Fd, null, 0, Xsk.MSG_DONTWAIT, null, null);
            FillKicks++;
        }
        RxFrames += added;
        return added;
    }

    public int Transmit(PacketBatch batch)
    {
        var items = batch.AsSpan();
        int n = items.Length, sent = 0;
        if (_held) TxDropped += n; // not yet resumed after a hand-over: the rings are the predecessor's still
        else if (n > 0 && _disposed == 0)
        {
            while (Interlocked.Exchange(ref _txBusy, 1) != 0) Thread.SpinWait(4);
            try { sent = Send(items); }
            finally { Volatile.Write(ref _txBusy, 0); }
        }
        for (int i = 0; i < items.Length; i++) items[i].Release();
        batch.Clear();
        return sent;
    }

    /// <summary>Under the transmit flag: reclaim completed frames, queue the batch, kick.</summary>
    private int Send(ReadOnlySpan<Packet> items)
    {
        var tx = _xsk.Tx;
        var comp = _xsk.Completion;
        uint done = comp.Available(comp.Size);
        for (uint i = 0; i < done; i++) _txFree[_txFreeCount++] = comp.AddressToConsume(i);
        if (done > 0) comp.Release(done);

        uint room = tx.Free((uint)items.Length);
        byte* umem = _xsk.Umem;
        uint queued = 0;
        int errors = 0;
        for (int i = 0; i < items.Length && queued < room && _txFreeCount > 0; i++)
        {
            var p = items[i];
            if (p.Length > _frameSize) { errors++; continue; }
            ulong addr = _txFree[--_txFreeCount];
            new ReadOnlySpan<byte>(p.DataPointer, p.Length).CopyTo(new Span<byte>(umem + addr, _frameSize));
            ref XdpDesc d = ref tx.DescToProduce(queued);
            d.Addr = addr;
            d.Len = (uint)p.Length;
            d.Options = 0;
            queued++;
        }
        if (queued > 0)
        {
            tx.Submit(queued);
            Kick(tx);
        }
        TxFrames += queued;
        TxErrors += errors;
        TxDropped += items.Length - queued - errors;
        return (int)queued;
    }

    /// <summary>
    /// sendto() when the kernel asks for it (always in copy mode). The kernel's copy-mode transmit
    /// takes at most its budget of descriptors per call (32 unless XDP_MAX_TX_SKB_BUDGET raised it) and
    /// answers EAGAIN when more wait, so then a batch of 64 takes two kicks; the bound keeps a stuck
    /// device from holding the datapath.
    /// </summary>
    private void Kick(XskRing tx)
    {
        for (int k = 0; k < 4 && tx.NeedsWakeup; k++)
        {
            TxKicks++;
            if (XskCalls.sendto(_xsk.Fd, null, 0, Xsk.MSG_DONTWAIT, null, 0) >= 0) { if (tx.Outstanding == 0) return; continue; }
            int e = NativeError.Last;
            if (e == NativeError.EAGAIN) { if (tx.Outstanding == 0) return; continue; }
            // EBUSY/ENOBUFS: the kernel is busy or its completion ring full; it picks the rest up on the next kick.
            if (e is not (NativeError.EBUSY or NativeError.ENOBUFS or NativeError.EINTR)) TxKickErrors++;
            return;
        }
    }

    public void OnPollError()
    {
        int fd = _xsk.Fd;
        if (fd < 0) return;
        int err = 0, len = sizeof(int);
        if (LibC.getsockopt(fd, LibC.SOL_SOCKET, LibC.SO_ERROR, &err, (socklen_t*)&len) == 0 && err != 0) SocketErrors++;
        CheckDevice();
    }

    public IReadOnlyList<KeyValuePair<string, long>> Diagnostics()
    {
        var st = _disposed == 0 ? _xsk.Statistics() : default;
        return
        [
            new("xdp-native", Mode.Native ? 1 : 0),
            new("xdp-zero-copy", Mode.ZeroCopy ? 1 : 0),
            new("queue", QueueId),
            new("ring-size", RingSize),
            new("tx-budget", _xsk.TxBudget),
            // Free transmit frames, and those in the tx ring, in flight or in the completion ring: together always
            // the transmit half of the UMEM (ring-size) when the port lost no frame and used none twice.
            new("tx-free", Volatile.Read(ref _txFreeCount)),
            new("tx-in-rings", _disposed == 0 ? _xsk.Tx.SharedProducer - _xsk.Completion.SharedConsumer : 0),
            new("rx-frames", Volatile.Read(ref RxFrames)),
            new("rx-pool-empty", Volatile.Read(ref RxPoolEmpty)),
            new("rx-oversize", Volatile.Read(ref RxOversize)),
            new("fill-kicks", Volatile.Read(ref FillKicks)),
            new("tx-frames", Volatile.Read(ref TxFrames)),
            new("tx-dropped", Volatile.Read(ref TxDropped)),
            new("tx-errors", Volatile.Read(ref TxErrors)),
            new("tx-kicks", Volatile.Read(ref TxKicks)),
            new("tx-kick-errors", Volatile.Read(ref TxKickErrors)),
            new("socket-errors", Volatile.Read(ref SocketErrors)),
            // The kernel's own drops for this socket (XDP_STATISTICS).
            new("kernel-rx-dropped", (long)st.RxDropped),
            new("kernel-rx-ring-full", (long)st.RxRingFull),
            new("kernel-fill-ring-empty", (long)st.RxFillRingEmptyDescs),
            new("kernel-rx-invalid-descs", (long)st.RxInvalidDescs),
            new("kernel-tx-invalid-descs", (long)st.TxInvalidDescs),
        ];
    }

    /// <summary>
    /// Detaches the program first (no more frames are redirected), then closes the socket and unmaps
    /// the rings and the UMEM. The runtime calls it only after every datapath thread passed its
    /// quiescent point, so no thread is inside Receive or Transmit.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _deviceWatch.Dispose();
        _prog.Dispose();
        _xsk.Dispose();
        NativeMemory.Free(_txFree);
    }

    public override string ToString() => $"af_xdp {Name} queue {QueueId} ({Mode})";
}
