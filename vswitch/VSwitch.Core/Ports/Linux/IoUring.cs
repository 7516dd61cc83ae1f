using System.Runtime.InteropServices;
using Tmds.Linux;

namespace VSwitch.Core.Ports.Linux;

/// <summary>
/// A minimal io_uring (Linux 5.1+): a submission and a completion ring shared with the kernel,
/// used to issue a batch of readv/writev on one descriptor with a single io_uring_enter.
/// <para>
/// Why: a TAP has no batch call (no recvmmsg/sendmmsg), and on a virtual machine every syscall
/// entry and exit is expensive (perf on this 2-vCPU guest: ~45% of the TAP datapath's time at 64
/// bytes was syscall entry/exit). With io_uring, N reads or writes cost one entry. On a descriptor
/// opened O_NONBLOCK, io_uring runs each request inline at submit time and completes it with the
/// byte count or -EAGAIN (it does not park it), so a batch of readv behaves like "read up to N
/// frames" and a batch of writev completes before io_uring_enter returns.
/// </para>
/// Not thread-safe: one user at a time (the caller arranges that).
/// </summary>
public sealed unsafe class IoUring : IDisposable
{
    private const long SysSetup = 425, SysEnter = 426;
    private const uint EnterGetEvents = 1;
    private const ulong OffSqRing = 0, OffCqRing = 0x8000000, OffSqes = 0x10000000;
    private const uint FeatSingleMmap = 1;
    public const byte OpReadv = 1, OpWritev = 2;
    /// <summary>preadv2's RWF_NOWAIT: fail with -EAGAIN instead of waiting (or of io_uring parking the request on poll).</summary>
    public const uint RwfNoWait = 8;

    [StructLayout(LayoutKind.Sequential)]
    private struct Params
    {
        public uint SqEntries, CqEntries, Flags, SqThreadCpu, SqThreadIdle, Features, WqFd, Resv0, Resv1, Resv2;
        // io_sqring_offsets
        public uint SqHead, SqTail, SqRingMask, SqRingEntries, SqFlags, SqDropped, SqArray, SqResv1;
        public ulong SqUserAddr;
        // io_cqring_offsets
        public uint CqHead, CqTail, CqRingMask, CqRingEntries, CqOverflow, CqCqes, CqFlags, CqResv1;
        public ulong CqUserAddr;
    }

    [StructLayout(LayoutKind.Sequential, Size = 64)]
    public struct Sqe
    {
        public byte Opcode, Flags;
        public ushort IoPrio;
        public int Fd;
        public ulong Offset;
        public ulong Addr;
        public uint Len;
        public uint RwFlags;
        public ulong UserData;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Cqe
    {
        public ulong UserData;
        public int Res;
        public uint Flags;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern long syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);

    private int _fd;
    private readonly byte* _sqRing, _cqRing;
    private readonly nuint _sqRingSize, _cqRingSize, _sqesSize;
    private readonly Sqe* _sqes;
    private readonly uint* _sqTail, _sqArray, _cqHead, _cqTail;
    private readonly uint _sqMask, _cqMask;
    private readonly Cqe* _cqes;
    private uint _localTail, _pending;

    public int Entries { get; }

    private IoUring(int fd, in Params p, byte* sq, nuint sqSize, byte* cq, nuint cqSize, Sqe* sqes, nuint sqesSize)
    {
        _fd = fd;
        _sqRing = sq; _sqRingSize = sqSize;
        _cqRing = cq; _cqRingSize = cqSize;
        _sqes = sqes; _sqesSize = sqesSize;
        _sqTail = (uint*)(sq + p.SqTail);
        _sqArray = (uint*)(sq + p.SqArray);
        _sqMask = *(uint*)(sq + p.SqRingMask);
        _cqHead = (uint*)(cq + p.CqHead);
        _cqTail = (uint*)(cq + p.CqTail);
        _cqMask = *(uint*)(cq + p.CqRingMask);
        _cqes = (Cqe*)(cq + p.CqCqes);
        _localTail = *_sqTail;
        Entries = (int)p.SqEntries;
        // The SQ array maps ring slots to SQE indexes; an identity map, set once.
        for (uint i = 0; i < p.SqEntries; i++) _sqArray[i] = i;
    }

    /// <summary>Sets up a ring of <paramref name="entries"/> (a power of two), or returns null with the reason when the kernel has none.</summary>
    public static IoUring? TryCreate(uint entries, out string? error)
    {
        error = null;
        Params p = default;
        long fd = syscall(SysSetup, entries, (long)&p, 0, 0, 0, 0);
        if (fd < 0)
        {
            error = $"io_uring_setup: {NativeError.Name(Marshal.GetLastPInvokeError())}";
            return null;
        }
        byte* sq = null, cq = null;
        Sqe* sqes = null;
        nuint sqSize = p.SqArray + p.SqEntries * sizeof(uint);
        nuint cqSize = p.CqCqes + p.CqEntries * (uint)sizeof(Cqe);
        nuint sqesSize = p.SqEntries * (uint)sizeof(Sqe);
        bool single = (p.Features & FeatSingleMmap) != 0;
        if (single) sqSize = cqSize = Math.Max(sqSize, cqSize);
        try
        {
            sq = Map(sqSize, (int)fd, OffSqRing);
            cq = single ? sq : Map(cqSize, (int)fd, OffCqRing);
            sqes = (Sqe*)Map(sqesSize, (int)fd, OffSqes);
            return new IoUring((int)fd, in p, sq, sqSize, cq, single ? 0 : cqSize, sqes, sqesSize);
        }
        catch (PortException e)
        {
            if (sq is not null) LibC.munmap(sq, (uint)sqSize);
            if (cq is not null && cq != sq) LibC.munmap(cq, (uint)cqSize);
            LibC.close((int)fd);
            error = e.Message;
            return null;
        }

        static byte* Map(nuint size, int fd, ulong offset)
        {
            void* m = LibC.mmap(null, (uint)size, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED | 0x8000 /* MAP_POPULATE */, fd, (long)offset);
            if (m == LibC.MAP_FAILED) NativeError.Throw("io_uring", "mmap");
            return (byte*)m;
        }
    }

    /// <summary>Queues a readv or writev of <paramref name="iovCount"/> iovecs; false when the ring is full (submit first).</summary>
    public bool Queue(byte opcode, int fd, IoVec* iov, int iovCount, ulong userData, uint rwFlags = 0)
    {
        if (_pending == (uint)Entries) return false;
        var sqe = &_sqes[_localTail & _sqMask];
        *sqe = default;
        sqe->Opcode = opcode;
        sqe->Fd = fd;
        sqe->Addr = (ulong)iov;
        sqe->Len = (uint)iovCount;
        sqe->UserData = userData;
        sqe->RwFlags = rwFlags;
        _localTail++;
        _pending++;
        return true;
    }

    /// <summary>
    /// Hands the queued requests to the kernel and waits until <paramref name="waitFor"/> of them
    /// have completed (0: do not wait). Returns how many were submitted, or -errno.
    /// </summary>
    public int Submit(int waitFor)
    {
        uint n = _pending;
        if (n == 0 && waitFor == 0) return 0;
        Volatile.Write(ref *_sqTail, _localTail);
        _pending = 0;
        long r;
        do r = syscall(SysEnter, _fd, n, waitFor, waitFor > 0 ? EnterGetEvents : 0, 0, 0);
        while (r < 0 && Marshal.GetLastPInvokeError() == NativeError.EINTR);
        return r < 0 ? -Marshal.GetLastPInvokeError() : (int)r;
    }

    /// <summary>Takes the next completion, if any.</summary>
    public bool TryReap(out Cqe cqe)
    {
        uint head = *_cqHead;
        if (head == Volatile.Read(ref *_cqTail)) { cqe = default; return false; }
        cqe = _cqes[head & _cqMask];
        Volatile.Write(ref *_cqHead, head + 1);
        return true;
    }

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd < 0) return;
        LibC.munmap(_sqes, (uint)_sqesSize);
        if (_cqRingSize != 0) LibC.munmap(_cqRing, (uint)_cqRingSize);
        LibC.munmap(_sqRing, (uint)_sqRingSize);
        LibC.close(fd);
    }
}
