using System.Runtime.InteropServices;
using Tmds.Linux;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports.Linux;
using VSwitch.Core.Ports.Offload;

namespace VSwitch.Core.Ports;

/// <summary>
/// An existing interface attached through an AF_PACKET socket: a TPACKET_V2 receive ring (V2, not
/// V3: V3 hands a block over only when it fills or its timer retires it, ~1 ms at low rates), and
/// sendmmsg for transmit (one syscall per batch).
/// <para>
/// Offloads: the socket has PACKET_VNET_HDR, so every received frame comes with the virtio header
/// that says what the sender left undone. A partial checksum (NEEDS_CSUM) is completed here; a TCP
/// GSO super-frame is segmented here into MSS-sized frames, each copied into its own pool packet.
/// Frames leaving the port therefore never need offload help; anything else (UDP GSO, non-TCP
/// GSO, truncated frames) is dropped and counted, never thrown. On transmit a zeroed virtio header
/// goes in front of each frame: nothing left to do for the kernel.
/// </para>
/// </summary>
public sealed unsafe class AfPacketPort : IPort, IPortDiagnostics
{
    private int _fd;
    private byte* _ring;
    private readonly nuint _ringBytes;
    private readonly int _frameSize;
    private readonly int _frameCount;
    private int _cursor;
    // Offload work on received frames; it also remembers how far a GSO frame at the cursor got.
    private readonly Offload.VnetDelivery _vnet = new();

    // Transmit scratch, one set per thread sending at the same moment (SenderSlots says why);
    // receive uses only the ring and _vnet, so the two directions share nothing but the fd.
    private readonly SenderSlots<TxScratch> _senders = new(static () => new TxScratch());

    // Counters: Rx* plain fields written only by the thread that owns the port; Tx* added once per
    // batch with an atomic add, since every datapath thread may send.
    public long RxFrames;
    /// <summary>GSO super-frames segmented in software.</summary>
    public long RxGsoFrames => Volatile.Read(ref _vnet.GsoFrames);
    /// <summary>Segments produced from GSO super-frames.</summary>
    public long RxGsoSegments => Volatile.Read(ref _vnet.GsoSegments);
    /// <summary>Partial checksums completed.</summary>
    public long RxChecksumsCompleted => Volatile.Read(ref _vnet.ChecksumsCompleted);
    /// <summary>Frames dropped because they need an offload this port cannot do (UDP GSO, GSO of something not TCP, bad offsets).</summary>
    public long RxUnsupportedOffload => Volatile.Read(ref _vnet.UnsupportedOffload);
    /// <summary>Frames longer than the ring slot (snaplen &lt; len), dropped: GSO super-frames when the slot is small and the peer's GSO/TSO is on.</summary>
    public long RxTruncated;
    /// <summary>Frames (or segments) longer than a pool frame.</summary>
    public long RxOversize => Volatile.Read(ref _vnet.Oversize);
    /// <summary>Receive calls that stopped because the pool was empty.</summary>
    public long RxPoolEmpty => Volatile.Read(ref _vnet.PoolEmpty);
    public long TxFrames;
    public long TxDropped;
    public long TxErrors;
    /// <summary>TCP super-frames sent whole (with a GSO virtio header).</summary>
    public long TxGsoFrames;
    /// <summary>GSO super-frames handed to the switch whole (not segmented).</summary>
    public long RxGsoWhole => Volatile.Read(ref _vnet.GsoWhole);
    /// <summary>Super-frames are sent whole behind a GSO virtio header (PACKET_VNET_HDR).</summary>
    public bool AcceptsGso => true;

    public string Name { get; }
    public int IfIndex { get; }
    public int PollFd => _fd;

    private volatile string? _fault;
    /// <summary>Set once the interface is gone (deleted, or its namespace with it): the port is no longer polled.</summary>
    public string? Fault
    {
        get
        {
            if (_fault is not null) return _fault;
            foreach (var q in _queues) if (q.Fault is { } f) return f;
            return null;
        }
    }
    /// <summary>Errors the socket reported (the interface went down or away), read and cleared from SO_ERROR.</summary>
    public long SocketErrors;

    /// <summary>
    /// The poll set reported an error: read (and so clear) the socket's pending error, which would
    /// otherwise wake the thread on every wait, and find out whether the interface still exists.
    /// </summary>
    public void OnPollError()
    {
        if (_fd < 0) return;
        int err = 0, len = sizeof(int);
        if (LibC.getsockopt(_fd, LibC.SOL_SOCKET, LibC.SO_ERROR, &err, (socklen_t*)&len) == 0 && err != 0) SocketErrors++;
        if (_fault is null && NativeMethods.IfNameToIndex(Name) != IfIndex)
            _fault = $"interface {Name} is gone (deleted, or moved away with its namespace)";
    }
    public int RingFrameSize => _frameSize;
    /// <summary>Bytes of the mapped receive ring (blocks × block size), to map it again in a successor.</summary>
    public long RingBytes => (long)_ringBytes;
    /// <summary>The next ring slot this port reads: a successor continues from it (the slots after it wait, marked for user space).</summary>
    public int RingCursor => _cursor;
    /// <summary>The socket, to hand it to a successor process; -1 once disposed.</summary>
    public int SocketFd => _fd;
    /// <summary>Receive-ring slots: what was asked for, rounded up to whole blocks.</summary>
    public int RingFrameCount => _frameCount;
    /// <summary>The largest frame a slot holds whole; a longer one (a GSO super-frame in a small slot) is counted in <see cref="RxTruncated"/> and dropped.</summary>
    public int LargestFrame => AfPacketOptions.LargestFrame(_frameSize);

    private AfPacketPort(string name, int ifIndex, int fd, byte* ring, nuint ringBytes, int frameSize, int frameCount)
    {
        Name = name;
        IfIndex = ifIndex;
        _fd = fd;
        _ring = ring;
        _ringBytes = ringBytes;
        _frameSize = frameSize;
        _frameCount = frameCount;
    }

    /// <summary>One sender's sendmmsg messages, iovec pairs (virtio header, frame) and GSO headers, in native memory.</summary>
    private sealed class TxScratch
    {
        public readonly MMsgHdr* Msgs;
        public readonly IoVec* Iovs;
        public readonly byte* ZeroVnetHdr;
        public readonly VirtioNetHdr* Hdrs;

        public TxScratch()
        {
            Msgs = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)(PacketBatch.MaxSize * sizeof(MMsgHdr)));
            Iovs = (IoVec*)NativeMemory.AllocZeroed((nuint)(2 * PacketBatch.MaxSize * sizeof(IoVec)));
            ZeroVnetHdr = (byte*)NativeMemory.AllocZeroed(VirtioNetHdr.Size);
            Hdrs = (VirtioNetHdr*)NativeMemory.AllocZeroed((nuint)(PacketBatch.MaxSize * sizeof(VirtioNetHdr)));
            for (int i = 0; i < PacketBatch.MaxSize; i++)
            {
                Iovs[2 * i].Base = ZeroVnetHdr;
                Iovs[2 * i].Len = VirtioNetHdr.Size;
                Msgs[i].Hdr.Iov = &Iovs[2 * i];
                Msgs[i].Hdr.IovLen = 2;
            }
        }

        public void Free()
        {
            NativeMemory.Free(Msgs);
            NativeMemory.Free(Iovs);
            NativeMemory.Free(ZeroVnetHdr);
            NativeMemory.Free(Hdrs);
        }
    }

    public static AfPacketPort Open(string interfaceName) => Open(new AfPacketOptions { Interface = interfaceName });

    /// <summary>Attaches the interface: one socket and ring, or with <see cref="AfPacketOptions.Queues"/> above 1 a fanout group of them.</summary>
    public static AfPacketPort Open(AfPacketOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        if (o.Validate() is { } bad) throw new ArgumentException($"{(o.Interface.Length > 0 ? o.Interface : "afpacket")}: {bad}", nameof(o));
        var port = OpenSocket(o);
        if (o.Queues == 1) return port;
        try
        {
            // The first socket makes the group with an id the kernel picks (no clash with another process's group
            // on this interface); the others join it by that id. Hash mode: one flow, one socket, no reordering.
            SetInt(port._fd, o.Interface, AfPacket.PACKET_FANOUT, AfPacket.PACKET_FANOUT_HASH | AfPacket.PACKET_FANOUT_FLAG_UNIQUEID << 16, "PACKET_FANOUT, hash, unique id");
            int group = port.FanoutGroup;
            var queues = new List<AfPacketPort>();
            try
            {
                for (int q = 1; q < o.Queues; q++)
                {
                    var s = OpenSocket(o);
                    queues.Add(s);
                    SetInt(s._fd, o.Interface, AfPacket.PACKET_FANOUT, group | AfPacket.PACKET_FANOUT_HASH << 16, $"PACKET_FANOUT, hash, group {group} (queue {q})");
                }
            }
            catch
            {
                foreach (var s in queues) s.Dispose();
                throw;
            }
            port._queues = [.. queues];
            return port;
        }
        catch
        {
            port.Dispose();
            throw;
        }
    }

    // Queues 1.. of a fanout group: each a port of its own (socket, ring, cursor), used only for receive.
    // Queue 0 is this port, which also does every transmit.
    private AfPacketPort[] _queues = [];

    /// <summary>Receive queues: 1, or the fanout group's sockets.</summary>
    public int RxQueueCount => 1 + _queues.Length;

    public IRxQueue RxQueue(int queue) => queue == 0 ? this : _queues[queue - 1];

    /// <summary>Queue <paramref name="queue"/> as a port of its own (its socket, ring and cursor, for a hand-over).</summary>
    public AfPacketPort Queue(int queue) => queue == 0 ? this : _queues[queue - 1];

    /// <summary>The fanout group this socket belongs to, or -1 when none.</summary>
    public int FanoutGroup
    {
        get
        {
            int v = 0;
            uint len = sizeof(int);
            if (_fd < 0 || LibC.getsockopt(_fd, AfPacket.SOL_PACKET, AfPacket.PACKET_FANOUT, &v, (socklen_t*)&len) < 0 || v == 0) return -1;
            return v & 0xFFFF;
        }
    }

    /// <summary>Adds the queues a predecessor handed over (their sockets are in the fanout group already); see <see cref="Adopt"/>.</summary>
    public void AdoptQueues(ReadOnlySpan<int> fds)
    {
        var queues = new AfPacketPort[fds.Length];
        for (int i = 0; i < fds.Length; i++)
        {
            try { queues[i] = Adopt(fds[i], Name, RingBytes, _frameSize, _frameCount); }
            catch
            {
                for (int k = 0; k < i; k++) queues[k].Dispose();
                throw;
            }
        }
        _queues = queues;
    }

    private static AfPacketPort OpenSocket(AfPacketOptions o)
    {
        string name = o.Interface;

        int ifIndex = NativeMethods.IfNameToIndex(name);
        if (ifIndex == 0) throw new PortException($"{name}: no such interface in this network namespace", NativeError.ENODEV);

        // Blocks must be page multiples; frames never straddle blocks. Aim at ~1 MiB blocks: one
        // allocation each (the kernel falls back to vmalloc if it cannot find contiguous pages).
        int page = Environment.SystemPageSize;
        int framesPerBlock = Math.Max(1, (1 << 20) / o.RingFrameSize);
        long blockSize = (long)framesPerBlock * o.RingFrameSize;
        blockSize = (blockSize + page - 1) / page * page;
        framesPerBlock = (int)(blockSize / o.RingFrameSize);
        int blocks = (o.RingFrameCount + framesPerBlock - 1) / framesPerBlock;
        var req = new TPacketReq
        {
            BlockSize = (uint)blockSize,
            BlockNr = (uint)blocks,
            FrameSize = (uint)o.RingFrameSize,
            FrameNr = (uint)(blocks * framesPerBlock),
        };

        // Protocol 0: receive nothing until bind() names the interface, so the ring never holds
        // frames from other interfaces.
        int fd = LibC.socket(AfPacket.AF_PACKET, LibC.SOCK_RAW | LibC.SOCK_NONBLOCK | LibC.SOCK_CLOEXEC, 0);
        if (fd < 0) NativeError.Throw(name, "socket(AF_PACKET, SOCK_RAW)");
        byte* ring = null;
        nuint ringBytes = (nuint)(blockSize * blocks);
        try
        {
            SetInt(fd, name, AfPacket.PACKET_VNET_HDR, 1, "PACKET_VNET_HDR"); // before the ring exists
            SetInt(fd, name, AfPacket.PACKET_VERSION, AfPacket.TPACKET_V2, "PACKET_VERSION");
            if (LibC.setsockopt(fd, AfPacket.SOL_PACKET, AfPacket.PACKET_RX_RING, &req, (uint)sizeof(TPacketReq)) < 0)
                NativeError.Throw(name, $"setsockopt(PACKET_RX_RING, {req.FrameNr} frames of {req.FrameSize} in {req.BlockNr} blocks of {req.BlockSize})");
            void* m = LibC.mmap(null, checked((uint)ringBytes), LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, 0);
            if (m == LibC.MAP_FAILED) NativeError.Throw(name, "mmap(rx ring)");
            ring = (byte*)m;

            var sll = new SockAddrLl
            {
                Family = AfPacket.AF_PACKET,
                Protocol = (ushort)((AfPacket.ETH_P_ALL >> 8) | ((AfPacket.ETH_P_ALL & 0xFF) << 8)),
                IfIndex = ifIndex,
            };
            if (LibC.bind(fd, (sockaddr*)&sll, (uint)sizeof(SockAddrLl)) < 0) NativeError.Throw(name, "bind(AF_PACKET)");
            if (o.Promiscuous)
            {
                var mreq = new PacketMreq { IfIndex = ifIndex, Type = AfPacket.PACKET_MR_PROMISC };
                if (LibC.setsockopt(fd, AfPacket.SOL_PACKET, AfPacket.PACKET_ADD_MEMBERSHIP, &mreq, (uint)sizeof(PacketMreq)) < 0)
                    NativeError.Throw(name, "setsockopt(PACKET_ADD_MEMBERSHIP, PROMISC)");
            }
            // Never read back our own transmits (nor anything else leaving through this interface).
            SetInt(fd, name, AfPacket.PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING");
            return new AfPacketPort(name, ifIndex, fd, ring, ringBytes, (int)req.FrameSize, (int)req.FrameNr);
        }
        catch
        {
            if (ring is not null) LibC.munmap(ring, checked((uint)ringBytes));
            LibC.close(fd);
            throw;
        }
    }

    /// <summary>
    /// A port over an AF_PACKET socket another process set up and handed over (a hitless restart passes it
    /// with SCM_RIGHTS): bound, with its TPACKET_V2 ring, whose geometry and read position come with it.
    /// The ring is mapped again here (the kernel lets a ring be mapped more than once); reading goes on where the
    /// predecessor stopped (<see cref="ResumeAt"/>), so frames that arrived meanwhile are read in order. On failure the fd is left open for the caller.
    /// </summary>
    public static AfPacketPort Adopt(int fd, string name, long ringBytes, int frameSize, int frameCount)
    {
        if (fd < 0) throw new ArgumentOutOfRangeException(nameof(fd), fd, $"{name}: not a file descriptor");
        if (frameSize < AfPacketOptions.MinRingFrameSize || frameCount < 1 || ringBytes < (long)frameSize * frameCount)
            throw new ArgumentOutOfRangeException(nameof(ringBytes), $"{name}: ring of {ringBytes} bytes does not hold {frameCount} frames of {frameSize}");
        int ifIndex = NativeMethods.IfNameToIndex(name);
        if (ifIndex == 0) throw new PortException($"{name}: no such interface in this network namespace", NativeError.ENODEV);
        void* m = LibC.mmap(null, checked((uint)ringBytes), LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, 0);
        if (m == LibC.MAP_FAILED) NativeError.Throw(name, "mmap(rx ring) of an adopted socket");
        return new AfPacketPort(name, ifIndex, fd, (byte*)m, (nuint)ringBytes, frameSize, frameCount);
    }

    /// <summary>
    /// Where an adopted port goes on reading: the predecessor's <see cref="RingCursor"/> once it stopped. Called
    /// before the port is polled (the datapath threads do not run yet).
    /// </summary>
    public void ResumeAt(int cursor)
    {
        if ((uint)cursor >= (uint)_frameCount) throw new ArgumentOutOfRangeException(nameof(cursor), cursor, $"{Name}: the ring has {_frameCount} slots");
        _cursor = cursor;
    }

    private static void SetInt(int fd, string name, int option, int value, string optionName)
    {
        if (LibC.setsockopt(fd, AfPacket.SOL_PACKET, option, &value, sizeof(int)) < 0)
            NativeError.Throw(name, $"setsockopt({optionName}, {value})");
    }

    public int Receive(PacketBatch batch, PacketPool pool)
    {
        if (_fd < 0) return 0;
        int before = batch.Count;
        while (!batch.IsFull)
        {
            byte* frame = _ring + (nint)_cursor * _frameSize;
            var hdr = (TPacket2Hdr*)frame;
            uint status = Volatile.Read(ref hdr->Status);
            if ((status & AfPacket.TP_STATUS_USER) == 0) break;
            if (!Handle(frame, hdr, status, batch, pool)) break; // keep the slot: batch or pool ran out
            Volatile.Write(ref hdr->Status, AfPacket.TP_STATUS_KERNEL);
            if (++_cursor == _frameCount) _cursor = 0;
        }
        int added = batch.Count - before;
        RxFrames += added;
        return added;
    }

    /// <summary>Turns one ring slot into packets. False: stop here and come back to this slot.</summary>
    private bool Handle(byte* frame, TPacket2Hdr* hdr, uint status, PacketBatch batch, PacketPool pool)
    {
        if (hdr->SnapLen < hdr->Len) { RxTruncated++; return true; }
        byte* data = frame + hdr->Mac;
        int len = (int)hdr->SnapLen;
        VirtioNetHdr vnet = *(VirtioNetHdr*)(data - VirtioNetHdr.Size);
        int csumStart = vnet.CsumStart;

        if ((status & AfPacket.TP_STATUS_VLAN_VALID) != 0 && _vnet.PendingSegment == 0)
        {
            // The kernel took the tag out into the header: put it back in front of the ethertype,
            // in place (the slot has room before the frame; the virtio header was copied above).
            ushort tpid = (status & AfPacket.TP_STATUS_VLAN_TPID_VALID) != 0 ? hdr->VlanTpid : (ushort)0x8100;
            Buffer.MemoryCopy(data, data - 4, 12, 12);
            data -= 4;
            data[12] = (byte)(tpid >> 8); data[13] = (byte)tpid;
            data[14] = (byte)(hdr->VlanTci >> 8); data[15] = (byte)hdr->VlanTci;
            len += 4;
            csumStart += 4;
            // Remember the new shape so a resumed GSO frame does not insert the tag again.
            hdr->Mac -= 4;
            hdr->SnapLen = (uint)len;
            hdr->Len = (uint)len;
            *(VirtioNetHdr*)(data - VirtioNetHdr.Size) = vnet with { CsumStart = (ushort)csumStart };
            hdr->Status = status & ~AfPacket.TP_STATUS_VLAN_VALID;
        }
        return _vnet.Deliver(in vnet, csumStart, new ReadOnlySpan<byte>(data, len), batch, pool);
    }

    public int Transmit(PacketBatch batch)
    {
        var items = batch.AsSpan();
        int n = items.Length;
        int sent = 0, errors = 0, gso = 0, fd = _fd;
        if (fd >= 0 && n > 0)
        {
            int slot = _senders.Take(out var tx);
            try
            {
                var iovs = tx.Iovs;
                int m = 0;
                for (int i = 0; i < n; i++)
                {
                    var p = items[i];
                    // Ordinary frames are complete (zeroed header); a super-frame goes whole with its GSO
                    // request, and the veth (or the kernel's software GSO) cuts it if it must.
                    iovs[2 * m].Base = tx.ZeroVnetHdr;
                    if (p.GsoSize != 0)
                    {
                        if (!GsoFrame.TryBuildHeader(p, out tx.Hdrs[m])) { errors++; continue; }
                        iovs[2 * m].Base = &tx.Hdrs[m];
                        gso++;
                    }
                    iovs[2 * m + 1].Base = p.DataPointer;
                    iovs[2 * m + 1].Len = (nuint)p.Length;
                    m++;
                }
                n = m;
                int off = 0;
                while (off < n)
                {
                    int r = NativeMethods.sendmmsg(fd, tx.Msgs + off, (uint)(n - off), AfPacket.MSG_DONTWAIT);
                    if (r > 0) { sent += r; off += r; continue; }
                    int e = NativeError.Last;
                    if (r < 0 && e == NativeError.EINTR) continue;
                    // Socket buffer or device queue full: drop the rest rather than block the datapath.
                    if (r == 0 || e == NativeError.EAGAIN || e == NativeError.ENOBUFS) break;
                    // This one frame is bad (too big for the MTU, interface down): skip it, send the rest.
                    errors++;
                    off++;
                }
            }
            finally { _senders.Return(slot); }
        }
        for (int i = 0; i < items.Length; i++) items[i].Release();
        batch.Clear();
        Interlocked.Add(ref TxFrames, sent);
        if (items.Length != sent) Interlocked.Add(ref TxDropped, items.Length - sent);
        if (errors != 0) Interlocked.Add(ref TxErrors, errors);
        if (gso != 0) Interlocked.Add(ref TxGsoFrames, gso);
        return sent;
    }

    /// <summary>
    /// The kernel's counters for this socket since the last call (reading resets them):
    /// frames delivered to the ring and frames dropped because the ring was full.
    /// </summary>
    private long _ringDrops;
    private readonly object _statsGate = new();

    /// <summary>
    /// Frames the kernel dropped because the receive ring was full, since the port opened.
    /// PACKET_STATISTICS clears the kernel's counters on every read, so they are accumulated here.
    /// </summary>
    public long RingDrops
    {
        get
        {
            if (_fd < 0) return _ringDrops;
            lock (_statsGate)
            {
                try { _ringDrops += ReadKernelStats().Drops; }
                catch (PortException) { }
                return _ringDrops;
            }
        }
    }

    // A fanout group's counters are the sum of its sockets'.
    public IReadOnlyList<KeyValuePair<string, long>> Diagnostics() => QueueDiagnostics.Sum(OwnDiagnostics(), _queues.Select(q => q.OwnDiagnostics()));

    private KeyValuePair<string, long>[] OwnDiagnostics() =>
    [
        new("rx-ring-full-drops", RingDrops),
        new("socket-errors", Volatile.Read(ref SocketErrors)),
        new("rx-frames", Volatile.Read(ref RxFrames)),
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
        new("tx-errors", Volatile.Read(ref TxErrors)),
        new("tx-gso-frames", Volatile.Read(ref TxGsoFrames)),
    ];

    public (uint Packets, uint Drops) ReadKernelStats()
    {
        var st = default(TPacketStats);
        uint len = (uint)sizeof(TPacketStats);
        if (LibC.getsockopt(_fd, AfPacket.SOL_PACKET, AfPacket.PACKET_STATISTICS, &st, (socklen_t*)&len) < 0)
            NativeError.Throw(Name, "getsockopt(PACKET_STATISTICS)");
        return (st.Packets, st.Drops);
    }

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd < 0) return;
        foreach (var q in _queues) q.Dispose();
        LibC.munmap(_ring, (uint)_ringBytes);
        _ring = null;
        LibC.close(fd);
        // The runtime disposes a port only once every datapath thread has passed a quiescent point.
        _senders.Free(static t => t.Free());
    }

    public override string ToString() => $"af_packet {Name} (ifindex {IfIndex})";
}
