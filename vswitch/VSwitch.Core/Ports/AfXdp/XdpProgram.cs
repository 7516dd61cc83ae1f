using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;
using VSwitch.Core.Ports.Linux;

namespace VSwitch.Core.Ports.AfXdp;

/// <summary>
/// The XDP side of an AF_XDP port, by raw bpf() syscalls: an XSKMAP (queue index → socket), a
/// five-instruction program <c>return bpf_redirect_map(&amp;xsks, ctx->rx_queue_index, XDP_PASS)</c>
/// (frames of a queue with no socket in the map go on to the kernel's stack), and a bpf_link that
/// attaches it to the interface. A link, not netlink's IFLA_XDP: the kernel detaches the program when
/// the link's fd closes, so a crashed daemon leaves no program behind on the interface.
/// <para>
/// Why not libxdp/libbpf (Debian has both): they would add a native dependency and its dispatcher
/// program (libxdp's multiprog needs /sys/fs/bpf, not mounted here) for what is one map, one program of
/// five instructions and one syscall to attach it.
/// </para>
/// </summary>
public sealed unsafe class XdpProgram : IDisposable
{
    private const int BPF_MAP_CREATE = 0, BPF_MAP_UPDATE_ELEM = 2, BPF_PROG_LOAD = 5, BPF_LINK_CREATE = 28;
    private const uint BPF_MAP_TYPE_XSKMAP = 17, BPF_PROG_TYPE_XDP = 6, BPF_XDP = 37;
    private const int BPF_FUNC_redirect_map = 51;
    private const byte BPF_PSEUDO_MAP_FD = 1;
    private const int XDP_PASS = 2;
    public const uint XDP_FLAGS_SKB_MODE = 1 << 1, XDP_FLAGS_DRV_MODE = 1 << 2;

    private static readonly long SysBpf = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 321,
        Architecture.Arm64 => 280,
        var a => throw new PlatformNotSupportedException($"bpf() syscall number for {a} is not known"),
    };

    private int _mapFd;
    private int _progFd;
    private int _linkFd = -1;
    private readonly string _device;

    public int MapFd => _mapFd;
    public int ProgFd => _progFd;
    /// <summary>The bpf_link that keeps the program on the interface (-1 when not attached).</summary>
    public int LinkFd => _linkFd;

    private XdpProgram(string device, int mapFd, int progFd)
    {
        _device = device;
        _mapFd = mapFd;
        _progFd = progFd;
    }

    /// <summary>
    /// The map, program and link a predecessor process made (a hitless restart): the program stays attached, and the
    /// map keeps pointing at the handed-over socket, for as long as any process holds the link's descriptor.
    /// </summary>
    public static XdpProgram Adopt(string device, int mapFd, int progFd, int linkFd) => new(device, mapFd, progFd) { _linkFd = linkFd };

    /// <summary>Makes the map (entries for queues 0..<paramref name="queues"/>-1) and loads the program. Throws a <see cref="PortException"/> naming the errno (EPERM: no CAP_BPF/CAP_NET_ADMIN).</summary>
    public static XdpProgram Load(string device, int queues)
    {
        byte* attr = stackalloc byte[144];
        new Span<byte>(attr, 144).Clear();
        *(uint*)(attr + 0) = BPF_MAP_TYPE_XSKMAP;
        *(uint*)(attr + 4) = 4;               // key: queue index
        *(uint*)(attr + 8) = 4;               // value: socket fd
        *(uint*)(attr + 12) = (uint)queues;   // max_entries
        WriteName(attr + 28, "vsw_xsks");
        int mapFd = (int)Bpf(BPF_MAP_CREATE, attr);
        if (mapFd < 0) throw Refused(device, "bpf(BPF_MAP_CREATE, XSKMAP)");
        try
        {
            int progFd = LoadProgram(device, mapFd);
            return new XdpProgram(device, mapFd, progFd);
        }
        catch
        {
            LibC.close(mapFd);
            throw;
        }
    }

    /// <summary>The program's instructions, with the map's fd in the ld_imm64 (BPF_PSEUDO_MAP_FD) the verifier relocates.</summary>
    public static ulong[] Instructions(int mapFd) =>
    [
        Insn(0x61, 2, 1, 16, 0),                     // r2 = *(u32 *)(r1 + 16)   ctx->rx_queue_index
        Insn(0x18, 1, BPF_PSEUDO_MAP_FD, 0, mapFd),  // r1 = map (ld_imm64, first half)
        Insn(0x00, 0, 0, 0, 0),                      //            (second half)
        Insn(0xb7, 3, 0, 0, XDP_PASS),               // r3 = XDP_PASS: what to do when the queue has no socket
        Insn(0x85, 0, 0, 0, BPF_FUNC_redirect_map),  // call bpf_redirect_map
        Insn(0x95, 0, 0, 0, 0),                      // exit (r0)
    ];

    private static ulong Insn(byte code, byte dst, byte src, short off, int imm) =>
        code | (ulong)(byte)(dst | (src << 4)) << 8 | (ulong)(ushort)off << 16 | (ulong)(uint)imm << 32;

    private static int LoadProgram(string device, int mapFd)
    {
        ulong[] insns = Instructions(mapFd);
        byte* license = stackalloc byte[] { (byte)'G', (byte)'P', (byte)'L', 0 };
        byte* attr = stackalloc byte[144];
        const int logSize = 16 * 1024;
        byte* log = stackalloc byte[logSize];
        fixed (ulong* code = insns)
        {
            for (int attempt = 0; attempt < 2; attempt++)
            {
                new Span<byte>(attr, 144).Clear();
                *(uint*)(attr + 0) = BPF_PROG_TYPE_XDP;
                *(uint*)(attr + 4) = (uint)insns.Length;
                *(ulong*)(attr + 8) = (ulong)code;
                *(ulong*)(attr + 16) = (ulong)license;
                if (attempt == 1)
                {
                    // Second try only to have the verifier say why.
                    log[0] = 0;
                    *(uint*)(attr + 24) = 1;
                    *(uint*)(attr + 28) = logSize;
                    *(ulong*)(attr + 32) = (ulong)log;
                }
                WriteName(attr + 48, "vsw_xsk_redir");
                *(uint*)(attr + 68) = BPF_XDP;   // expected_attach_type: what BPF_LINK_CREATE will ask for
                int fd = (int)Bpf(BPF_PROG_LOAD, attr);
                if (fd >= 0) return fd;
                int errno = NativeError.Last;
                if (errno != NativeError.EACCES && errno != NativeError.EINVAL || attempt == 1)
                {
                    string verifier = attempt == 1 ? Marshal.PtrToStringUTF8((nint)log)?.Trim() ?? "" : "";
                    var e = NativeError.Error(device, "bpf(BPF_PROG_LOAD, XDP)", errno);
                    throw new PortException(e.Message + Hint(errno) + (verifier.Length > 0 ? "; verifier: " + verifier : ""), errno);
                }
            }
        }
        throw new InvalidOperationException("unreachable");
    }

    /// <summary>Puts the socket in the map at its queue: frames of that queue now go to it.</summary>
    public void SetSocket(int queue, int socketFd)
    {
        byte* attr = stackalloc byte[144];
        new Span<byte>(attr, 144).Clear();
        uint key = (uint)queue, value = (uint)socketFd;
        *(uint*)(attr + 0) = (uint)_mapFd;
        *(ulong*)(attr + 8) = (ulong)&key;
        *(ulong*)(attr + 16) = (ulong)&value;
        if (Bpf(BPF_MAP_UPDATE_ELEM, attr) < 0) throw Refused(_device, $"bpf(BPF_MAP_UPDATE_ELEM, queue {queue})");
    }

    /// <summary>Attaches the program to the interface through a bpf_link, native (driver) or generic (SKB) XDP. Throws when the kernel or driver refuses.</summary>
    public void Attach(int ifIndex, bool native)
    {
        if (_linkFd >= 0) throw new InvalidOperationException($"{_device}: program already attached");
        byte* attr = stackalloc byte[144];
        new Span<byte>(attr, 144).Clear();
        *(uint*)(attr + 0) = (uint)_progFd;
        *(uint*)(attr + 4) = (uint)ifIndex;
        *(uint*)(attr + 8) = BPF_XDP;
        *(uint*)(attr + 12) = native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
        int fd = (int)Bpf(BPF_LINK_CREATE, attr);
        if (fd < 0) throw Refused(_device, $"bpf(BPF_LINK_CREATE, {(native ? "native" : "generic")} XDP)");
        _linkFd = fd;
    }

    /// <summary>Detaches the program (closing the link is what detaches it).</summary>
    public void Detach()
    {
        int fd = Interlocked.Exchange(ref _linkFd, -1);
        if (fd >= 0) LibC.close(fd);
    }

    public void Dispose()
    {
        Detach();
        int p = Interlocked.Exchange(ref _progFd, -1);
        if (p >= 0) LibC.close(p);
        int m = Interlocked.Exchange(ref _mapFd, -1);
        if (m >= 0) LibC.close(m);
    }

    private static long Bpf(int cmd, byte* attr) => XskCalls.syscall(SysBpf, cmd, attr, 144);

    private static void WriteName(byte* at, string name)
    {
        int n = Encoding.ASCII.GetBytes(name, new Span<byte>(at, 15));
        at[n] = 0;
    }

    private static PortException Refused(string device, string call)
    {
        int errno = NativeError.Last;
        var e = NativeError.Error(device, call, errno);
        return new PortException(e.Message + Hint(errno), errno);
    }

    private static string Hint(int errno) => errno switch
    {
        NativeError.EPERM => " (the daemon needs CAP_BPF and CAP_NET_ADMIN, or root, to load and attach XDP programs)",
        NativeError.EBUSY or NativeError.EEXIST => " (another XDP program is attached to the interface: `ip link set DEV xdp off`, or another port already uses it)",
        NativeError.EOPNOTSUPP => " (the driver does not support this XDP mode)",
        _ => "",
    };
}
