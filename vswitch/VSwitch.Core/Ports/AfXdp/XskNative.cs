using System.Runtime.InteropServices;

namespace VSwitch.Core.Ports.AfXdp;

// AF_XDP sockets (linux/if_xdp.h) and the few bpf() commands the port needs (linux/bpf.h), by raw
// syscalls: no libbpf/libxdp at run time. Values checked against the kernel's uapi headers with a C
// program (offsetof) on this machine; x86-64 and arm64 agree on all of them but the bpf syscall number.

/// <summary>AF_XDP socket options, bind flags and mmap page offsets.</summary>
public static class Xsk
{
    public const int AF_XDP = 44;
    public const int SOL_XDP = 283;

    public const int XDP_MMAP_OFFSETS = 1;
    public const int XDP_RX_RING = 2;
    public const int XDP_TX_RING = 3;
    public const int XDP_UMEM_REG = 4;
    public const int XDP_UMEM_FILL_RING = 5;
    public const int XDP_UMEM_COMPLETION_RING = 6;
    public const int XDP_STATISTICS = 7;
    public const int XDP_OPTIONS = 8;
    /// <summary>Frames the copy-mode transmit of one sendto may send (kernel 6.17+; before, a fixed 32).</summary>
    public const int XDP_MAX_TX_SKB_BUDGET = 9;

    public const ushort XDP_COPY = 1 << 1;
    public const ushort XDP_ZEROCOPY = 1 << 2;
    public const ushort XDP_USE_NEED_WAKEUP = 1 << 3;

    public const uint XDP_RING_NEED_WAKEUP = 1;
    public const uint XDP_OPTIONS_ZEROCOPY = 1;

    public const long XDP_PGOFF_RX_RING = 0;
    public const long XDP_PGOFF_TX_RING = 0x80000000;
    public const long XDP_UMEM_PGOFF_FILL_RING = 0x100000000;
    public const long XDP_UMEM_PGOFF_COMPLETION_RING = 0x180000000;

    public const int MSG_DONTWAIT = 0x40;
}

[StructLayout(LayoutKind.Sequential)]
public struct SockAddrXdp
{
    public ushort Family;
    public ushort Flags;
    public uint IfIndex;
    public uint QueueId;
    public uint SharedUmemFd;
}

/// <summary>struct xdp_umem_reg (with flags and tx_metadata_len zero: 32 bytes, what every kernel since 5.x takes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XdpUmemReg
{
    public ulong Addr;
    public ulong Len;
    public uint ChunkSize;
    public uint Headroom;
    public uint Flags;
    public uint TxMetadataLen;
}

[StructLayout(LayoutKind.Sequential)]
public struct XdpRingOffset
{
    public ulong Producer;
    public ulong Consumer;
    public ulong Desc;
    public ulong Flags;
}

[StructLayout(LayoutKind.Sequential)]
public struct XdpMmapOffsets
{
    public XdpRingOffset Rx;
    public XdpRingOffset Tx;
    public XdpRingOffset Fill;
    public XdpRingOffset Completion;
}

/// <summary>struct xdp_desc: a frame in the UMEM (rx and tx rings).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XdpDesc
{
    public ulong Addr;
    public uint Len;
    public uint Options;
}

/// <summary>struct xdp_statistics: what the kernel dropped on this socket's behalf.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XdpStatistics
{
    public ulong RxDropped;
    public ulong RxInvalidDescs;
    public ulong TxInvalidDescs;
    public ulong RxRingFull;
    public ulong RxFillRingEmptyDescs;
    public ulong TxRingEmptyDescs;
}

/// <summary>The libc calls the AF_XDP port uses that Tmds.LibC 0.5.0 lacks or types too narrowly (mmap's 64-bit page offsets).</summary>
internal static unsafe class XskCalls
{
    [DllImport("libc", SetLastError = true)]
    public static extern void* mmap(void* addr, nuint length, int prot, int flags, int fd, long offset);

    [DllImport("libc", SetLastError = true)]
    public static extern int munmap(void* addr, nuint length);

    [DllImport("libc", SetLastError = true)]
    public static extern nint sendto(int fd, void* buf, nuint len, int flags, void* addr, uint addrLen);

    [DllImport("libc", SetLastError = true)]
    public static extern nint recvfrom(int fd, void* buf, nuint len, int flags, void* addr, uint* addrLen);

    [DllImport("libc", SetLastError = true)]
    public static extern long syscall(long number, long a1, void* a2, long a3);

    /// <summary>The UMEM's memory: a memfd a successor process can map again (a hitless restart hands it over).</summary>
    [DllImport("libc", SetLastError = true)]
    public static extern int memfd_create([MarshalAs(UnmanagedType.LPUTF8Str)] string name, uint flags);

    [DllImport("libc", SetLastError = true)]
    public static extern int ftruncate(int fd, long length);

    [DllImport("libc", SetLastError = true)]
    public static extern long lseek(int fd, long offset, int whence);

    public const uint MFD_CLOEXEC = 1;

    public static readonly void* MapFailed = (void*)-1;
}
