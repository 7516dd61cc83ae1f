using System.Runtime.InteropServices;

namespace VSwitch.Core.Ports.Linux;

// What Tmds.LibC 0.5.0 lacks: the TUN and AF_PACKET constants and structs, sendmmsg/recvmmsg,
// if_nametoindex and setns. Values are from the kernel's uapi headers (x86-64 and arm64 agree on
// all of them: the ioctl numbers are _IOW('T', n, int) and the structs have no arch padding).

/// <summary>TUN/TAP ioctls and flags (linux/if_tun.h).</summary>
public static class Tun
{
    public const uint TUNSETIFF = 0x400454ca;       // _IOW('T', 202, int)
    public const uint TUNSETPERSIST = 0x400454cb;   // _IOW('T', 203, int)
    public const uint TUNSETOFFLOAD = 0x400454d0;   // _IOW('T', 208, unsigned int); flags by value
    public const uint TUNGETIFF = 0x800454d2;       // _IOR('T', 210, unsigned int)
    public const uint TUNSETVNETHDRSZ = 0x400454d8; // _IOW('T', 216, int); pointer to int

    public const short IFF_TUN = 0x0001;
    public const short IFF_TAP = 0x0002;
    public const short IFF_MULTI_QUEUE = 0x0100;
    public const short IFF_NO_PI = 0x1000;
    public const short IFF_VNET_HDR = 0x4000;

    public const int TUN_F_CSUM = 0x01;
    public const int TUN_F_TSO4 = 0x02;
    public const int TUN_F_TSO6 = 0x04;
    public const int TUN_F_TSO_ECN = 0x08;
}

/// <summary>Interface ioctls on any socket (linux/sockios.h, net/if.h).</summary>
public static class SockIos
{
    public const uint SIOCGIFFLAGS = 0x8913;
    public const uint SIOCSIFFLAGS = 0x8914;
    public const uint SIOCGIFMTU = 0x8921;
    public const uint SIOCSIFMTU = 0x8922;
    public const uint SIOCSIFNAME = 0x8923;
    public const uint SIOCSIFHWADDR = 0x8924;
    public const uint SIOCGIFHWADDR = 0x8927;
    public const uint SIOCGIFINDEX = 0x8933;

    public const short IFF_UP = 0x1;
    public const short IFF_RUNNING = 0x40;
    public const short IFF_PROMISC = 0x100;

    public const ushort ARPHRD_ETHER = 1;
    public const int IFNAMSIZ = 16;
}

/// <summary>AF_PACKET socket options and ring constants (linux/if_packet.h).</summary>
public static class AfPacket
{
    public const int AF_PACKET = 17;
    public const int SOL_PACKET = 263;
    public const ushort ETH_P_ALL = 0x0003;

    public const int PACKET_ADD_MEMBERSHIP = 1;
    public const int PACKET_DROP_MEMBERSHIP = 2;
    public const int PACKET_RX_RING = 5;
    public const int PACKET_STATISTICS = 6;
    public const int PACKET_VERSION = 10;
    public const int PACKET_HDRLEN = 11;
    public const int PACKET_RESERVE = 12;
    public const int PACKET_TX_RING = 13;
    public const int PACKET_VNET_HDR = 15;
    public const int PACKET_QDISC_BYPASS = 20;
    public const int PACKET_IGNORE_OUTGOING = 23;
    /// <summary>Joins a fanout group: the int is the group id | mode &lt;&lt; 16 | flags &lt;&lt; 16; read back: id | mode &lt;&lt; 16 | flags &lt;&lt; 24.</summary>
    public const int PACKET_FANOUT = 18;
    public const int PACKET_FANOUT_HASH = 0;
    /// <summary>The kernel picks an unused group id (give 0); read it back with getsockopt(PACKET_FANOUT).</summary>
    public const int PACKET_FANOUT_FLAG_UNIQUEID = 0x2000;

    public const ushort PACKET_MR_PROMISC = 1;

    public const int TPACKET_V1 = 0;
    public const int TPACKET_V2 = 1;
    public const int TPACKET_V3 = 2;
    public const int TPACKET_ALIGNMENT = 16;

    public const uint TP_STATUS_KERNEL = 0;
    public const uint TP_STATUS_USER = 1 << 0;
    public const uint TP_STATUS_COPY = 1 << 1;
    public const uint TP_STATUS_LOSING = 1 << 2;
    public const uint TP_STATUS_CSUMNOTREADY = 1 << 3;
    public const uint TP_STATUS_VLAN_VALID = 1 << 4;
    public const uint TP_STATUS_VLAN_TPID_VALID = 1 << 6;
    public const uint TP_STATUS_CSUM_VALID = 1 << 7;

    public const int MSG_DONTWAIT = 0x40;
}

/// <summary>struct ifreq: a name and a 24-byte union (flags, mtu, ifindex or a sockaddr).</summary>
[StructLayout(LayoutKind.Explicit, Size = 40)]
public unsafe struct IfReq
{
    [FieldOffset(0)] public fixed byte Name[16];
    [FieldOffset(16)] public short Flags;
    [FieldOffset(16)] public int IntValue;      // ifr_mtu, ifr_ifindex
    [FieldOffset(16)] public ushort AddrFamily; // ifr_hwaddr.sa_family
    [FieldOffset(18)] public fixed byte AddrData[14];
    [FieldOffset(16)] public fixed byte NewName[16]; // ifr_newname

    public void SetName(string name)
    {
        if (name.Length >= SockIos.IFNAMSIZ)
            throw new ArgumentException($"interface name '{name}' is longer than {SockIos.IFNAMSIZ - 1} characters", nameof(name));
        fixed (byte* p = Name)
        {
            new Span<byte>(p, 16).Clear();
            for (int i = 0; i < name.Length; i++)
            {
                if (name[i] > 127 || name[i] <= ' ' || name[i] == '/')
                    throw new ArgumentException($"interface name '{name}' has an invalid character", nameof(name));
                p[i] = (byte)name[i];
            }
        }
    }

    public string GetName()
    {
        fixed (byte* p = Name)
        {
            int n = 0;
            while (n < 16 && p[n] != 0) n++;
            return System.Text.Encoding.ASCII.GetString(p, n);
        }
    }
}

/// <summary>struct tpacket2_hdr: the header in front of each frame of a TPACKET_V2 ring.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct TPacket2Hdr
{
    public uint Status;
    public uint Len;
    public uint SnapLen;
    public ushort Mac;
    public ushort Net;
    public uint Sec;
    public uint NSec;
    public ushort VlanTci;
    public ushort VlanTpid;
    public uint Padding;
}

/// <summary>struct tpacket_req: the ring geometry for PACKET_RX_RING / PACKET_TX_RING (V1/V2).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct TPacketReq
{
    public uint BlockSize;
    public uint BlockNr;
    public uint FrameSize;
    public uint FrameNr;
}

/// <summary>struct sockaddr_ll (20 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct SockAddrLl
{
    public ushort Family;
    public ushort Protocol; // network byte order
    public int IfIndex;
    public ushort HaType;
    public byte PktType;
    public byte HaLen;
    public fixed byte Addr[8];
}

/// <summary>struct packet_mreq for PACKET_ADD_MEMBERSHIP.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct PacketMreq
{
    public int IfIndex;
    public ushort Type;
    public ushort ALen;
    public fixed byte Address[8];
}

/// <summary>struct tpacket_stats (PACKET_STATISTICS; reading it resets the kernel's counters).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct TPacketStats
{
    public uint Packets;
    public uint Drops;
}

/// <summary>
/// struct virtio_net_hdr (10 bytes, host byte order): what a frame still needs (checksum, segmentation).
/// Used by PACKET_VNET_HDR sockets and IFF_VNET_HDR TAPs.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1, Size = 10)]
public struct VirtioNetHdr
{
    public const int Size = 10;
    public const byte F_NEEDS_CSUM = 1;
    public const byte F_DATA_VALID = 2;
    public const byte GSO_NONE = 0;
    public const byte GSO_TCPV4 = 1;
    public const byte GSO_UDP = 3;
    public const byte GSO_TCPV6 = 4;
    public const byte GSO_UDP_L4 = 5;
    public const byte GSO_ECN = 0x80;

    public byte Flags;
    public byte GsoType;
    public ushort HdrLen;
    public ushort GsoSize;
    public ushort CsumStart;
    public ushort CsumOffset;
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct IoVec
{
    public void* Base;
    public nuint Len;
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct MsgHdr
{
    public void* Name;
    public uint NameLen;
    public IoVec* Iov;
    public nuint IovLen;
    public void* Control;
    public nuint ControlLen;
    public int Flags;
}

[StructLayout(LayoutKind.Sequential)]
public struct MMsgHdr
{
    public MsgHdr Hdr;
    public uint Len;
}

/// <summary>libc functions Tmds.LibC 0.5.0 does not bind. All set errno (read it with Marshal.GetLastPInvokeError).</summary>
public static unsafe class NativeMethods
{
    public const int CLONE_NEWNET = 0x40000000;

    [DllImport("libc", SetLastError = true)]
    public static extern int sendmmsg(int fd, MMsgHdr* msgvec, uint vlen, int flags);

    [DllImport("libc", SetLastError = true)]
    public static extern nint sendmsg(int fd, MsgHdr* msg, int flags);

    [DllImport("libc", SetLastError = true)]
    public static extern int recvmmsg(int fd, MMsgHdr* msgvec, uint vlen, int flags, void* timeout);

    [DllImport("libc", SetLastError = true)]
    public static extern uint if_nametoindex(byte* ifname);

    [DllImport("libc", SetLastError = true)]
    public static extern int setns(int fd, int nstype);

    [DllImport("libc", SetLastError = true)]
    public static extern int ioctl(int fd, nuint request, void* arg);

    [DllImport("libc", SetLastError = true)]
    public static extern int ioctl(int fd, nuint request, nint arg);

    [DllImport("libc", SetLastError = true)]
    public static extern nint writev(int fd, IoVec* iov, int iovcnt);

    [DllImport("libc", SetLastError = true)]
    public static extern nint readv(int fd, IoVec* iov, int iovcnt);

    /// <summary>The calling thread's kernel id (its /proc/self/task/TID).</summary>
    [DllImport("libc")]
    public static extern int gettid();

    /// <summary>The index of an interface in the caller's namespace, or 0 when there is none.</summary>
    public static int IfNameToIndex(string name)
    {
        Span<byte> buf = stackalloc byte[SockIos.IFNAMSIZ + 1];
        if (name.Length >= SockIos.IFNAMSIZ) return 0;
        for (int i = 0; i < name.Length; i++) buf[i] = (byte)name[i];
        buf[name.Length] = 0;
        fixed (byte* p = buf) return (int)if_nametoindex(p);
    }
}
