using System.Runtime.InteropServices;
using Tmds.Linux;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports.Linux;
using VSwitch.Core.Ports.Offload;

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
/// <see cref="TcpSegmenter"/> into MSS-sized packets (one that does not fit in the batch or the
/// pool is resumed on the next Receive). UDP GSO and bad offsets are dropped and counted. No
/// allocation per frame on either path.
/// </para>
/// <para>
/// Without offloads: IFF_TAP | IFF_NO_PI, the kernel segments and checksums, frames read are
/// complete (straight into a pool slot), and frames written must carry complete checksums (which
/// every port guarantees on receive).
/// </para>
/// </summary>
public sealed unsafe class TapPort : IPort, IPortDiagnostics
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
    // Offloads only: the last frame read (virtio header + frame) and what is left of it.
    private byte* _scratch;
    private int _scratchLength; // > 0: a frame is waiting in the scratch buffer
    // Offload work on received frames; it also remembers how far the waiting frame got.
    private readonly Offload.VnetDelivery _vnet = new();
    // With offloads, frames can wait inside the port (in the scratch buffer, or read by the ring
    // beyond the batch): PollFd is then an epoll set of the TAP fd and a "frames waiting" eventfd.
    private readonly WaitingSignal? _waiting;

    // io_uring (TapOptions.IoUring): one ring for receive (owning thread only), one for transmit
    // (any thread; a thread that finds it busy uses plain writes). See Linux/IoUring.
    private const int RingBatch = PacketBatch.MaxSize;
    private IoUring? _rxRing, _txRing;
    private int _txBusy;
    private readonly IoVec* _rxIov, _txIov;
    private readonly VirtioNetHdr* _rxHdr, _txHdr;
    // Frames read by the ring and not yet handed to the switch (in order); entry i was read into slot i.
    private readonly Packet?[] _rxRead = new Packet?[RingBatch];
    private int _rxHead, _rxCount;
    private int _rxWant = 4;
    private readonly int[] _rxRes = new int[RingBatch];
    private readonly int[] _txRes = new int[RingBatch];
    /// <summary>io_uring_enter calls that read or wrote a batch.</summary>
    public long RingReads, RingWrites;

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

    // Counters: plain fields, written only by the thread that owns the port (Tx* by the sender).
    /// <summary>Packets handed to the switch (segments count one each).</summary>
    public long RxFrames;
    public long TxFrames;
    /// <summary>Frames not sent because the device queue was full (EAGAIN) or the device was down.</summary>
    public long TxDropped;
    /// <summary>TCP super-frames written whole (with a GSO virtio header).</summary>
    public long TxGsoFrames;
    /// <summary>Frames dropped on receive because the pool was empty (without offloads) or a read failed.</summary>
    public long RxErrors;
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

    public IReadOnlyList<KeyValuePair<string, long>> Diagnostics() =>
    [
        new("offloads", _offloads ? 1 : 0),
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
        new("io-uring", (_txRing is not null ? 1 : 0) + (_rxRing is not null ? 2 : 0)),
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
        string label = string.IsNullOrEmpty(o.Name) ? "tap" : o.Name;
        var req = default(IfReq);
        req.SetName(o.Name ?? "");

        int fd;
        fixed (byte* path = "/dev/net/tun\0"u8)
            fd = LibC.open(path, LibC.O_RDWR | LibC.O_NONBLOCK | LibC.O_CLOEXEC, 0);
        if (fd < 0) NativeError.Throw(label, "open(/dev/net/tun)");
        try
        {
            req.Flags = (short)(Tun.IFF_TAP | Tun.IFF_NO_PI | (o.Offloads ? Tun.IFF_VNET_HDR : 0));
            if (NativeMethods.ioctl(fd, Tun.TUNSETIFF, &req) < 0) NativeError.Throw(label, "ioctl(TUNSETIFF)");
            string name = req.GetName();
            if (o.Offloads)
            {
                // The header size is passed by pointer; the offload flags by value. TSO_ECN: the
                // segmenter keeps CWR on the first segment only, which is what SKB_GSO_TCP_ECN asks.
                int hdrSize = VnetHeaderSize;
                if (NativeMethods.ioctl(fd, Tun.TUNSETVNETHDRSZ, &hdrSize) < 0) NativeError.Throw(name, $"ioctl(TUNSETVNETHDRSZ, {hdrSize})");
                nint flags = Tun.TUN_F_CSUM | Tun.TUN_F_TSO4 | Tun.TUN_F_TSO6 | Tun.TUN_F_TSO_ECN;
                if (NativeMethods.ioctl(fd, Tun.TUNSETOFFLOAD, flags) < 0) NativeError.Throw(name, "ioctl(TUNSETOFFLOAD, CSUM|TSO4|TSO6|TSO_ECN)");
            }
            else if (NativeMethods.ioctl(fd, Tun.TUNSETOFFLOAD, 0) < 0)
            {
                // A persistent device re-attached may still have offloads from an earlier owner.
                NativeError.Throw(name, "ioctl(TUNSETOFFLOAD, 0)");
            }
            if (o.Persistent && NativeMethods.ioctl(fd, Tun.TUNSETPERSIST, 1) < 0) NativeError.Throw(name, "ioctl(TUNSETPERSIST)");
            try
            {
                // MAC and MTU by ioctl while the device is still in our namespace.
                if (o.Mac is ulong mac) LinkIoctl.SetMac(name, mac);
                if (o.Mtu is int mtu) LinkIoctl.SetMtu(name, mtu);
                if (o.Setup is not null) o.Setup(name);
                else if (o.Up) LinkIoctl.SetUp(name);
            }
            catch when (o.Persistent)
            {
                // A persistent device outlives the fd: undo the flag so that closing removes it.
                NativeMethods.ioctl(fd, Tun.TUNSETPERSIST, 0);
                throw;
            }
            return new TapPort(fd, name, o.Netns, o.Offloads, o.IoUring);
        }
        catch
        {
            LibC.close(fd);
            throw;
        }
    }

    public int Receive(PacketBatch batch, PacketPool pool) => _offloads ? ReceiveOffloaded(batch, pool) : ReceivePlain(batch, pool);

    /// <summary>Without offloads: every frame is complete and at most MTU-sized; read it straight into a pool slot.</summary>
    private int ReceivePlain(PacketBatch batch, PacketPool pool)
    {
        int fd = _fd;
        if (fd < 0) return 0;
        int added = 0;
        while (!batch.IsFull)
        {
            var p = pool.TryRent();
            if (p is null) { RxErrors++; break; }
            var buf = p.ReceiveBuffer();
            long n;
            fixed (byte* b = buf) n = LibC.read(fd, b, buf.Length);
            if (n <= 0)
            {
                p.Release();
                if (n < 0)
                {
                    int e = NativeError.Last;
                    if (e == NativeError.EINTR) continue;
                    if (e != NativeError.EAGAIN) RxErrors++;
                }
                break;
            }
            p.SetLength((int)n);
            batch.Add(p);
            added++;
        }
        RxFrames += added;
        return added;
    }

    /// <summary>With offloads: read into the scratch buffer, then copy/complete/segment into pool packets.</summary>
    private int ReceiveOffloaded(PacketBatch batch, PacketPool pool)
    {
        int fd = _fd;
        if (fd < 0) return 0;
        int before = batch.Count;
        if (_rxRing is not null && _scratchLength == 0 && (_rxHead < _rxCount || (pool.Large?.Available ?? 0) > RingReserve))
        {
            ReceiveRing(batch, pool);
            _waiting!.Set(_rxHead < _rxCount);
            int got = batch.Count - before;
            RxFrames += got;
            return got;
        }
        while (!batch.IsFull)
        {
            if (_scratchLength == 0)
            {
                // Nothing to put the frame in: leave it in the kernel's queue.
                if (pool.Available == 0) { _vnet.PoolEmpty++; break; }
                if (pool.Large?.TryRent() is { } large)
                {
                    int r = ReadLarge(fd, large, batch, pool);
                    if (r < 0) break;
                    if (r == 0) continue;
                    // r > 0: a frame to segment did not fit and now waits in the scratch buffer.
                    break;
                }
                long n = LibC.read(fd, _scratch, ScratchSize);
                if (n <= 0)
                {
                    if (n < 0)
                    {
                        int e = NativeError.Last;
                        if (e == NativeError.EINTR) continue;
                        if (e != NativeError.EAGAIN) RxErrors++;
                    }
                    break;
                }
                if (n <= VnetHeaderSize || n >= ScratchSize) { RxTruncated++; continue; }
                _scratchLength = (int)n;
                _vnet.PendingSegment = 0;
            }
            if (!HandleScratch(batch, pool)) break; // batch or pool ran out: the frame waits
            _scratchLength = 0;
        }
        _waiting!.Set(_scratchLength > 0);
        int added = batch.Count - before;
        RxFrames += added;
        return added;
    }

    /// <summary>Large buffers left to other ports before a ring read takes more.</summary>
    private const int RingReserve = 8;

    /// <summary>
    /// io_uring receive: hands over the frames already read, then, when none wait, reads up to
    /// <see cref="_rxWant"/> frames with one io_uring_enter, each straight into a large buffer
    /// behind its virtio header (an ordinary frame is then copied into a small one, a super-frame
    /// stays whole). How many to ask for adapts: doubled while every read finds a frame, else
    /// what was found plus one (a ping does not pay for 32 empty reads).
    /// </summary>
    private void ReceiveRing(PacketBatch batch, PacketPool pool)
    {
        DeliverRead(batch, pool);
        if (_rxHead < _rxCount || batch.IsFull || pool.Available == 0) return;
        var large = pool.Large!;
        int k = Math.Min(Math.Min(_rxWant, batch.Capacity - batch.Count), Math.Min(RingBatch, large.Available - RingReserve));
        if (k <= 0) return;
        var ring = _rxRing!;
        for (int i = 0; i < k; i++)
        {
            var p = large.TryRent()!;
            p.ReceiveBuffer();
            _rxRead[i] = p;
            _rxRes[i] = int.MinValue;
            _rxIov[2 * i] = new IoVec { Base = &_rxHdr[i], Len = VnetHeaderSize };
            _rxIov[2 * i + 1] = new IoVec { Base = p.DataPointer, Len = (nuint)p.ReceiveCapacity };
            ring.Queue(IoUring.OpReadv, _fd, &_rxIov[2 * i], 2, (ulong)i, IoUring.RwfNoWait);
        }
        // RWF_NOWAIT: each read completes at once, with a frame or -EAGAIN, so no need to wait.
        int r = ring.Submit(0);
        RingReads++;
        int done = 0;
        while (done < k && ring.TryReap(out var cqe)) { _rxRes[(int)cqe.UserData] = cqe.Res; done++; }
        bool refused = false;
        for (int i = 0; i < k; i++) refused |= _rxRes[i] is -NativeError.EOPNOTSUPP or -NativeError.EINVAL;
        if (r < 0 || done < k || refused)
        {
            // A kernel whose TAP cannot read without waiting: plain reads from now on. A read still
            // in flight may yet write into its buffer, so that buffer never goes back to the pool.
            for (int i = 0; i < k; i++)
                if (_rxRes[i] == int.MinValue) { _rxRead[i] = null; RingLostBuffers++; }
            FailRing(ref _rxRing);
        }
        // Keep the frames that arrived, in order; a read that found nothing ends the run.
        int got = 0;
        for (int i = 0; i < k; i++)
        {
            var p = _rxRead[i]!;
            int n = _rxRes[i];
            if (n <= 0 || got < i)
            {
                if (n < 0 && n != -NativeError.EAGAIN && n != int.MinValue && n != -NativeError.EOPNOTSUPP && n != -NativeError.EINVAL) RxErrors++;
                if (n > 0) RxErrors++; // a frame after a gap cannot happen on one queue; count it if it does
                p.Release();
                _rxRead[i] = null;
                continue;
            }
            int len = n - VnetHeaderSize;
            if (len <= 0 || len >= p.ReceiveCapacity) { RxTruncated++; p.Release(); _rxRead[i] = null; got++; continue; }
            p.SetLength(len);
            got++;
        }
        _rxWant = got == k ? Math.Min(2 * _rxWant, RingBatch) : Math.Max(2, got + 1);
        // Compact (truncated frames left holes) so that entries 0.._rxCount-1 are the frames, in order.
        int w = 0;
        for (int i = 0; i < k; i++)
        {
            if (_rxRead[i] is not { } p) continue;
            if (w != i) { _rxRead[w] = p; _rxHdr[w] = _rxHdr[i]; _rxRead[i] = null; }
            w++;
        }
        _rxHead = 0;
        _rxCount = w;
        DeliverRead(batch, pool);
    }

    /// <summary>Hands frames the ring read to the switch, in order, until the batch or the pool runs out.</summary>
    private void DeliverRead(PacketBatch batch, PacketPool pool)
    {
        while (_rxHead < _rxCount && !batch.IsFull)
        {
            if (!_vnet.DeliverInPlace(in _rxHdr[_rxHead], _rxRead[_rxHead]!, batch, pool)) return; // resumed next time
            _rxRead[_rxHead++] = null;
        }
        if (_rxHead == _rxCount) _rxHead = _rxCount = 0;
    }

    /// <summary>A ring that failed (the kernel refused to take or finish a batch) is dropped; the port goes on with plain calls.</summary>
    private void FailRing(ref IoUring? ring)
    {
        RingFailures++;
        ring?.Dispose();
        ring = null;
    }

    /// <summary>Times an io_uring batch failed and the port fell back to plain calls.</summary>
    public long RingFailures;
    /// <summary>Buffers kept out of the pool because a failed ring may still write into them.</summary>
    public long RingLostBuffers;

    /// <summary>
    /// Reads one frame straight into a large pool packet (no copy for a super-frame). A TCP GSO
    /// super-frame stays in it whole; anything else goes through <see cref="VnetDelivery"/> into
    /// ordinary packets and the large one goes back. Returns -1 when nothing was read (stop), 0
    /// when the frame was handled, 1 when a frame being segmented ran out of room and was parked
    /// in the scratch buffer (resumed by the next Receive).
    /// </summary>
    private int ReadLarge(int fd, Packet large, PacketBatch batch, PacketPool pool)
    {
        VirtioNetHdr h;
        IoVec* iov = stackalloc IoVec[2];
        large.ReceiveBuffer();
        int room = large.ReceiveCapacity;
        iov[0].Base = &h;
        iov[0].Len = VnetHeaderSize;
        iov[1].Base = large.DataPointer;
        iov[1].Len = (nuint)room;
        long n;
        do n = NativeMethods.readv(fd, iov, 2);
        while (n < 0 && NativeError.Last == NativeError.EINTR);
        if (n <= 0)
        {
            large.Release();
            if (n < 0 && NativeError.Last != NativeError.EAGAIN) RxErrors++;
            return -1;
        }
        int len = (int)n - VnetHeaderSize;
        if (len <= 0 || len >= room) { large.Release(); RxTruncated++; return 0; }
        large.SetLength(len);
        _vnet.PendingSegment = 0;
        if (_vnet.DeliverInPlace(in h, large, batch, pool)) return 0;
        // Park the rest of the work (header + frame) in the scratch buffer, where the ordinary path resumes it.
        *(VirtioNetHdr*)_scratch = h;
        large.Data.CopyTo(new Span<byte>(_scratch + VnetHeaderSize, ScratchSize - VnetHeaderSize));
        _scratchLength = VnetHeaderSize + len;
        large.Release();
        return 1;
    }

    /// <summary>Turns the frame in the scratch buffer into packets. False: stop, and come back to it.</summary>
    private bool HandleScratch(PacketBatch batch, PacketPool pool)
    {
        VirtioNetHdr vnet = *(VirtioNetHdr*)_scratch;
        var src = new ReadOnlySpan<byte>(_scratch + VnetHeaderSize, _scratchLength - VnetHeaderSize);
        return _vnet.Deliver(in vnet, vnet.CsumStart, src, batch, pool);
    }

    public int Transmit(PacketBatch batch)
    {
        if (_txRing is not null && batch.Count > 1 && Interlocked.CompareExchange(ref _txBusy, 1, 0) == 0)
        {
            try { if (_txRing is not null) return TransmitRing(batch); }
            finally { Volatile.Write(ref _txBusy, 0); }
        }
        return TransmitPlain(batch);
    }

    /// <summary>io_uring transmit: one writev request per frame (virtio header + frame with offloads), all in one io_uring_enter.</summary>
    private int TransmitRing(PacketBatch batch)
    {
        var items = batch.AsSpan();
        var ring = _txRing!;
        int fd = _fd, queued = 0, sent = 0;
        for (int i = 0; i < items.Length && fd >= 0; i++)
        {
            var p = items[i];
            _txRes[i] = int.MinValue;
            IoVec* iov = &_txIov[2 * i];
            int cnt = 1;
            if (_offloads)
            {
                if (!GsoFrame.TryBuildHeader(p, out _txHdr[i])) continue;
                if (p.GsoSize != 0) TxGsoFrames++;
                iov[0] = new IoVec { Base = &_txHdr[i], Len = VnetHeaderSize };
                iov[1] = new IoVec { Base = p.DataPointer, Len = (nuint)p.Length };
                cnt = 2;
            }
            else iov[0] = new IoVec { Base = p.DataPointer, Len = (nuint)p.Length };
            ring.Queue(IoUring.OpWritev, fd, iov, cnt, (ulong)i, IoUring.RwfNoWait);
            queued++;
        }
        if (queued > 0)
        {
            int r = ring.Submit(queued);
            RingWrites++;
            int done = 0;
            while (done < queued && ring.TryReap(out var cqe)) { _txRes[(int)cqe.UserData] = cqe.Res; done++; }
            if (r < 0 || done < queued)
            {
                // The kernel may still hold some of these buffers: keep them out of the pool.
                FailRing(ref _txRing);
                int leaked = 0;
                for (int i = 0; i < items.Length; i++) if (_txRes[i] == int.MinValue) leaked++;
                TxDropped += leaked;
                batch.Clear();
                return 0;
            }
            bool refused = false;
            for (int i = 0; i < items.Length; i++) refused |= _txRes[i] is -NativeError.EOPNOTSUPP or -NativeError.EINVAL;
            if (refused)
            {
                // This kernel's TAP does not take RWF_NOWAIT writes: plain writes from now on.
                FailRing(ref _txRing);
                return TransmitPlain(batch);
            }
            int extra = _offloads ? VnetHeaderSize : 0;
            for (int i = 0; i < items.Length; i++)
                if (_txRes[i] == items[i].Length + extra) sent++;
        }
        foreach (var p in items) p.Release();
        batch.Clear();
        TxFrames += sent;
        TxDropped += items.Length - sent;
        return sent;
    }

    private int TransmitPlain(PacketBatch batch)
    {
        int sent = 0;
        var items = batch.AsSpan();
        int fd = _fd;
        bool full = fd < 0;
        // Transmit may run on any datapath thread: the iovecs and the zeroed header live on the stack.
        VirtioNetHdr zero = default, gsoHdr;
        IoVec* iov = stackalloc IoVec[2];
        iov[0].Base = &zero;
        iov[0].Len = VnetHeaderSize;
        for (int i = 0; i < items.Length; i++)
        {
            var p = items[i];
            if (!full)
            {
                long n;
                if (_offloads)
                {
                    // Ordinary frames leaving the switch are complete: a zeroed header asks nothing of
                    // the kernel. A super-frame goes whole, with its GSO request rebuilt.
                    iov[0].Base = &zero;
                    if (p.GsoSize != 0)
                    {
                        if (!GsoFrame.TryBuildHeader(p, out gsoHdr)) { p.Release(); continue; }
                        iov[0].Base = &gsoHdr;
                        TxGsoFrames++;
                    }
                    iov[1].Base = p.DataPointer;
                    iov[1].Len = (nuint)p.Length;
                    n = NativeMethods.writev(fd, iov, 2);
                    if (n < 0 && NativeError.Last == NativeError.EINTR) n = NativeMethods.writev(fd, iov, 2);
                    if (n > 0) n -= VnetHeaderSize;
                }
                else
                {
                    n = LibC.write(fd, p.DataPointer, p.Length);
                    if (n < 0 && NativeError.Last == NativeError.EINTR) n = LibC.write(fd, p.DataPointer, p.Length);
                }
                if (n == p.Length) sent++;
                // EAGAIN: the device's queue is full; drop the rest of the batch rather than block.
                else if (n < 0 && NativeError.Last == NativeError.EAGAIN) full = true;
            }
            p.Release();
        }
        batch.Clear();
        TxFrames += sent;
        TxDropped += items.Length - sent;
        return sent;
    }

    /// <summary>Closes the fd; the kernel removes a non-persistent TAP, in whatever namespace it is.</summary>
    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd < 0) return;
        LibC.close(fd);
        _waiting?.Dispose();
        // Receive runs on the owning datapath thread, which has stopped polling this port by now.
        if (_scratch is not null) { NativeMemory.AlignedFree(_scratch); _scratch = null; }
        _rxRing?.Dispose();
        _txRing?.Dispose();
        for (int i = _rxHead; i < _rxCount; i++) { _rxRead[i]?.Release(); _rxRead[i] = null; }
        if (_rxIov is not null) { NativeMemory.Free(_rxIov); NativeMemory.Free(_rxHdr); }
        if (_txIov is not null) { NativeMemory.Free(_txIov); NativeMemory.Free(_txHdr); }
    }

    public override string ToString() => Netns is null ? $"tap {Name}" : $"tap {Name} (netns {Netns})";
}
