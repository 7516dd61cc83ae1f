using Tmds.Linux;
using VSwitch.Core.Ports.Linux;

namespace VSwitch.Core.Ports.AfXdp;

/// <summary>
/// An AF_XDP socket bound to one queue of an interface, with its UMEM (<see cref="FrameCount"/> frames of
/// <see cref="FrameSize"/> bytes, registered with XDP_UMEM_REG) and its four rings mapped at their page offsets.
/// Set-up only: the port does the I/O on the rings. The first half of the frames is for receive (handed to the
/// kernel through the fill ring at once), the second half for transmit.
/// <para>
/// The UMEM is a memfd mapped shared, not anonymous memory: the kernel pins the pages of the memfd, so a
/// successor process given the socket and the memfd (<see cref="Adopt"/>, a hitless restart) maps the very
/// pages the kernel reads and writes, and the frames in the rings stay valid across the hand-over.
/// </para>
/// </summary>
public sealed unsafe class XskSocket : IDisposable
{
    private int _fd;
    private int _umemFd;
    private byte* _umem;
    private readonly nuint _umemBytes;
    private readonly (nint Addr, nuint Len)[] _maps = new (nint, nuint)[4];

    public int Fd => _fd;
    /// <summary>The memfd the UMEM lives in (handed to a successor with the socket).</summary>
    public int UmemFd => _umemFd;
    public byte* Umem => _umem;
    public int FrameSize { get; }
    public int FrameCount { get; }
    public uint RingSize { get; }
    public XskRing Rx { get; private set; } = null!;
    public XskRing Tx { get; private set; } = null!;
    public XskRing Fill { get; private set; } = null!;
    public XskRing Completion { get; private set; } = null!;
    /// <summary>Frames one sendto kick may send in copy mode: the ring size where the kernel lets it be set, else its fixed 32.</summary>
    public int TxBudget { get; private set; } = 32;
    /// <summary>The kernel says frames are not copied (XDP_OPTIONS_ZEROCOPY).</summary>
    public bool ZeroCopy { get; private set; }

    private XskSocket(int fd, int umemFd, byte* umem, nuint umemBytes, int frameSize, int frameCount, uint ringSize)
    {
        _fd = fd;
        _umemFd = umemFd;
        _umem = umem;
        _umemBytes = umemBytes;
        FrameSize = frameSize;
        FrameCount = frameCount;
        RingSize = ringSize;
    }

    /// <summary>Opens, registers, maps and binds. <paramref name="bindFlags"/>: XDP_COPY or XDP_ZEROCOPY (XDP_USE_NEED_WAKEUP is added). Throws <see cref="PortException"/> naming the call and errno.</summary>
    public static XskSocket Open(string device, int ifIndex, int queue, uint ringSize, int frameSize, ushort bindFlags)
    {
        int fd = LibC.socket(Xsk.AF_XDP, LibC.SOCK_RAW | LibC.SOCK_CLOEXEC, 0);
        if (fd < 0) NativeError.Throw(device, "socket(AF_XDP)");
        int frames = checked((int)ringSize * 2);
        nuint bytes = (nuint)((long)frames * frameSize);
        var s = new XskSocket(fd, -1, null, bytes, frameSize, frames, ringSize);
        try
        {
            s._umemFd = XskCalls.memfd_create("vswitch-umem-" + device, XskCalls.MFD_CLOEXEC);
            if (s._umemFd < 0) NativeError.Throw(device, "memfd_create(UMEM)");
            if (XskCalls.ftruncate(s._umemFd, (long)bytes) < 0) NativeError.Throw(device, $"ftruncate(UMEM memfd, {bytes})");
            s.MapUmem(device);
            s.Setup(device, ifIndex, queue, bindFlags);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A socket a predecessor process opened and bound, with the memfd of its UMEM: maps the UMEM and the four rings
    /// again (XDP_MMAP_OFFSETS, mmap at the rings' page offsets: the kernel allows it on a bound socket) and changes
    /// nothing the kernel sees. The rings' indices are the predecessor's until <see cref="XskRing.Resync"/>. On failure
    /// the descriptors are left open for the caller. Throws <see cref="PortException"/> naming the call and errno.
    /// </summary>
    public static XskSocket Adopt(int fd, int umemFd, string device, uint ringSize, int frameSize, int frameCount)
    {
        if (ringSize == 0 || (ringSize & (ringSize - 1)) != 0 || frameSize is not (2048 or 4096) || frameCount != 2 * (long)ringSize)
            throw new PortException($"{device}: handed-over AF_XDP geometry is not one this port makes (ring {ringSize}, {frameCount} frames of {frameSize})", NativeError.EINVAL);
        nuint bytes = (nuint)((long)frameCount * frameSize);
        long size = XskCalls.lseek(umemFd, 0, 2 /* SEEK_END */);
        if (size < 0) NativeError.Throw(device, "lseek(UMEM memfd)");
        if ((ulong)size < bytes)
            throw new PortException($"{device}: the handed-over UMEM memfd holds {size} bytes, not {bytes}", NativeError.EINVAL);
        var s = new XskSocket(fd, umemFd, null, bytes, frameSize, frameCount, ringSize);
        try
        {
            s.MapUmem(device);
            s.MapRings(device);
            s.SetTxBudget();
            return s;
        }
        catch
        {
            s.Unmap(); // the descriptors stay the caller's
            throw;
        }
    }

    private void MapUmem(string device)
    {
        void* umem = XskCalls.mmap(null, _umemBytes, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, _umemFd, 0);
        if (umem == XskCalls.MapFailed) NativeError.Throw(device, $"mmap(UMEM of {FrameCount} frames of {FrameSize})");
        _umem = (byte*)umem;
    }

    private void MapRings(string device)
    {
        uint n = RingSize;
        XdpMmapOffsets off;
        uint len = (uint)sizeof(XdpMmapOffsets);
        if (LibC.getsockopt(_fd, Xsk.SOL_XDP, Xsk.XDP_MMAP_OFFSETS, &off, (socklen_t*)&len) < 0)
            NativeError.Throw(device, "getsockopt(XDP_MMAP_OFFSETS)");
        Rx = new XskRing(Map(device, 0, Xsk.XDP_PGOFF_RX_RING, off.Rx, (uint)sizeof(XdpDesc), "rx"), off.Rx, n, sizeof(XdpDesc));
        Tx = new XskRing(Map(device, 1, Xsk.XDP_PGOFF_TX_RING, off.Tx, (uint)sizeof(XdpDesc), "tx"), off.Tx, n, sizeof(XdpDesc));
        Fill = new XskRing(Map(device, 2, Xsk.XDP_UMEM_PGOFF_FILL_RING, off.Fill, sizeof(ulong), "fill"), off.Fill, n, sizeof(ulong));
        Completion = new XskRing(Map(device, 3, Xsk.XDP_UMEM_PGOFF_COMPLETION_RING, off.Completion, sizeof(ulong), "completion"), off.Completion, n, sizeof(ulong));
    }

    /// <summary>A whole batch per kick instead of 32 frames; older kernels refuse the option (ENOPROTOOPT) and keep their 32. Then reads the mode the kernel gave.</summary>
    private void SetTxBudget()
    {
        int budget = (int)Math.Min(RingSize, 1024u);
        if (LibC.setsockopt(_fd, Xsk.SOL_XDP, Xsk.XDP_MAX_TX_SKB_BUDGET, &budget, sizeof(int)) == 0) TxBudget = budget;
        uint opt = 0, len = sizeof(uint);
        if (LibC.getsockopt(_fd, Xsk.SOL_XDP, Xsk.XDP_OPTIONS, &opt, (socklen_t*)&len) == 0)
            ZeroCopy = (opt & Xsk.XDP_OPTIONS_ZEROCOPY) != 0;
    }

    private void Setup(string device, int ifIndex, int queue, ushort bindFlags)
    {
        var reg = new XdpUmemReg { Addr = (ulong)_umem, Len = _umemBytes, ChunkSize = (uint)FrameSize };
        if (LibC.setsockopt(_fd, Xsk.SOL_XDP, Xsk.XDP_UMEM_REG, &reg, (uint)sizeof(XdpUmemReg)) < 0)
            NativeError.Throw(device, $"setsockopt(XDP_UMEM_REG, {FrameCount} frames of {FrameSize})");
        uint n = RingSize;
        SetRingSize(device, Xsk.XDP_UMEM_FILL_RING, n, "XDP_UMEM_FILL_RING");
        SetRingSize(device, Xsk.XDP_UMEM_COMPLETION_RING, n, "XDP_UMEM_COMPLETION_RING");
        SetRingSize(device, Xsk.XDP_RX_RING, n, "XDP_RX_RING");
        SetRingSize(device, Xsk.XDP_TX_RING, n, "XDP_TX_RING");
        MapRings(device);

        // The receive half of the UMEM goes to the kernel before bind, so the first frame finds room.
        uint k = Fill.Free(n);
        for (uint i = 0; i < k; i++) Fill.AddressToProduce(i) = (ulong)i * (ulong)FrameSize;
        Fill.Submit(k);

        var sxdp = new SockAddrXdp
        {
            Family = Xsk.AF_XDP,
            Flags = (ushort)(bindFlags | Xsk.XDP_USE_NEED_WAKEUP),
            IfIndex = (uint)ifIndex,
            QueueId = (uint)queue,
        };
        if (LibC.bind(_fd, (sockaddr*)&sxdp, (uint)sizeof(SockAddrXdp)) < 0)
        {
            int e = NativeError.Last;
            string mode = (bindFlags & Xsk.XDP_ZEROCOPY) != 0 ? "XDP_ZEROCOPY" : "XDP_COPY";
            string hint = e == NativeError.EINVAL ? $" (is queue {queue} one of the interface's receive queues?)" : "";
            var ex = NativeError.Error(device, $"bind(AF_XDP, queue {queue}, {mode})", e);
            throw new PortException(ex.Message + hint, e);
        }
        SetTxBudget();
    }

    private void SetRingSize(string device, int option, uint size, string name)
    {
        int v = (int)size;
        if (LibC.setsockopt(_fd, Xsk.SOL_XDP, option, &v, sizeof(int)) < 0) NativeError.Throw(device, $"setsockopt({name}, {size})");
    }

    private byte* Map(string device, int slot, long pgoff, in XdpRingOffset off, uint entrySize, string name)
    {
        nuint len = (nuint)(off.Desc + RingSize * entrySize);
        void* m = XskCalls.mmap(null, len, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED | 0x8000 /* MAP_POPULATE */, _fd, pgoff);
        if (m == XskCalls.MapFailed) NativeError.Throw(device, $"mmap({name} ring)");
        _maps[slot] = ((nint)m, len);
        return (byte*)m;
    }

    /// <summary>What the kernel dropped for this socket (rx ring full, fill ring empty, bad descriptors).</summary>
    public XdpStatistics Statistics()
    {
        XdpStatistics st = default;
        uint len = (uint)sizeof(XdpStatistics);
        if (_fd >= 0) LibC.getsockopt(_fd, Xsk.SOL_XDP, Xsk.XDP_STATISTICS, &st, (socklen_t*)&len);
        return st;
    }

    /// <summary>
    /// Closes the socket and the UMEM's memfd and unmaps the rings and the UMEM. The kernel takes the socket out of
    /// the XSKMAP once its last descriptor closes: after a hand-over, the successor's copies keep it.
    /// </summary>
    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd < 0) return;
        LibC.close(fd);
        int mfd = Interlocked.Exchange(ref _umemFd, -1);
        if (mfd >= 0) LibC.close(mfd);
        Unmap();
    }

    private void Unmap()
    {
        for (int i = 0; i < _maps.Length; i++)
            if (_maps[i].Addr != 0) { XskCalls.munmap((void*)_maps[i].Addr, _maps[i].Len); _maps[i] = default; }
        if (_umem is not null) { XskCalls.munmap(_umem, _umemBytes); _umem = null; }
    }
}
