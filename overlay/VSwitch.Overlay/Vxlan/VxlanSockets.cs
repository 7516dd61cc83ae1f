using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Tmds.Linux;
using VSwitch.Core.Ports.Linux;
using VSwitch.Core.Wire;

namespace VSwitch.Overlay;

/// <summary>struct sockaddr_in: what the VXLAN sockets bind to and send to.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct SockAddrIn
{
    public ushort Family;
    public ushort Port;   // network order
    public uint Address;  // network order
    public ulong Zero;

    /// <summary>IPv4 <paramref name="address"/>:<paramref name="port"/>, both in host order.</summary>
    public static SockAddrIn Of(uint address, ushort port) => new()
    {
        Family = (ushort)LibC.AF_INET, Port = BinaryPrimitives.ReverseEndianness(port), Address = BinaryPrimitives.ReverseEndianness(address),
    };
}

/// <summary>
/// The kernel UDP sockets of a VXLAN endpoint and their options: one socket bound to the local VTEP
/// address and the VXLAN port receives (UDP_GRO asked for once, on first use), <see cref="Count"/>
/// sockets bound to ephemeral ports send (SO_NO_CHECK when UDP GSO is off). Also the layout of the
/// UDP_SEGMENT and UDP_GRO control messages the receiver and transmitter exchange with the kernel.
/// Set-up and teardown only: nothing here runs per packet.
/// </summary>
internal sealed unsafe class VxlanSockets : IDisposable
{
    /// <summary>Source-port sockets (see <see cref="VxlanPort"/> for why several).</summary>
    public const int Count = 8;

    private const int SolUdp = 17;
    /// <summary>UDP_SEGMENT: a send's datagram size (UDP GSO).</summary>
    private const int UdpSegment = 103;
    /// <summary>UDP_GRO: the option on the receive socket, and the cmsg that gives a train's datagram size.</summary>
    private const int UdpGro = 104;
    private const int SoNoCheck = 11;
    private const int SoRcvBufForce = 33;
    /// <summary>CMSG_SPACE(sizeof(u16)) on 64-bit: one UDP_SEGMENT cmsg.</summary>
    public const int SegmentCmsgSpace = 24;

    private readonly string _name;
    // Per receive socket: 0: not tried, 1: on, -1: the kernel refused.
    private int[] _groState = new int[1];

    private VxlanSockets(string name)
    {
        _name = name;
        Array.Fill(Tx, -1);
    }

    /// <summary>The receive socket (local VTEP address, VXLAN port), or -1 once disposed.</summary>
    public int Rx { get; private set; } = -1;
    /// <summary>The source-port sockets; an entry is -1 once disposed.</summary>
    public int[] Tx { get; } = new int[Count];
    /// <summary>True once the kernel agreed to hand over UDP GSO trains whole (UDP_GRO).</summary>
    public bool GroEnabled => _groState[0] > 0;

    /// <summary>
    /// Receive sockets of queues 1.. (RSS): bound to the same address and port as <see cref="Rx"/>, all with
    /// SO_REUSEPORT, so that the kernel spreads datagrams over them by a hash of the outer 4-tuple (the sender's
    /// source port carries the inner flow's hash: one inner flow, one socket, no reordering). Empty with one queue.
    /// </summary>
    public int[] QueueRx { get; private set; } = [];

    /// <summary>Receive sockets, queue 0 (<see cref="Rx"/>) included.</summary>
    public int RxCount => 1 + QueueRx.Length;

    /// <summary>The receive socket of queue <paramref name="queue"/>.</summary>
    public int RxOf(int queue) => queue == 0 ? Rx : QueueRx[queue - 1];

    /// <summary>Opens and binds every socket; throws <see cref="PortException"/> naming the address when it cannot bind (not local, port in use).</summary>
    public static VxlanSockets Open(string name, uint local, ushort port, int rxQueues = 1)
    {
        if (rxQueues is < 1 or > 64) throw new ArgumentOutOfRangeException(nameof(rxQueues), rxQueues, $"{name}: receive queues must be 1..64");
        var s = new VxlanSockets(name);
        try
        {
            // SO_REUSEPORT only with several queues: with one, binding a port another process holds stays an error.
            s.Rx = Socket(name, local, port, receiveBuffer: 8 << 20, reusePort: rxQueues > 1);
            s.QueueRx = new int[rxQueues - 1];
            Array.Fill(s.QueueRx, -1);
            s._groState = new int[rxQueues];
            for (int q = 1; q < rxQueues; q++) s.QueueRx[q - 1] = Socket(name, local, port, receiveBuffer: 8 << 20, reusePort: true);
            for (int i = 0; i < Count; i++)
            {
                s.Tx[i] = Socket(name, local, 0, receiveBuffer: 0);
            }
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Sockets another process opened and bound, handed over (a hitless restart): the receive socket and the
    /// source-port sockets, in that order. They are taken as they are; UDP_GRO is asked for again on first use.
    /// </summary>
    public static VxlanSockets Adopt(string name, int rx, ReadOnlySpan<int> tx, ReadOnlySpan<int> queueRx = default)
    {
        if (tx.Length != Count) throw new ArgumentException($"{name}: {Count} source-port sockets expected, {tx.Length} given", nameof(tx));
        var s = new VxlanSockets(name) { Rx = rx, QueueRx = queueRx.ToArray(), _groState = new int[1 + queueRx.Length] };
        tx.CopyTo(s.Tx);
        return s;
    }

    private static int Socket(string name, uint local, ushort port, int receiveBuffer, bool reusePort = false)
    {
        int fd = LibC.socket(LibC.AF_INET, LibC.SOCK_DGRAM | LibC.SOCK_NONBLOCK | LibC.SOCK_CLOEXEC, 0);
        if (fd < 0) NativeError.Throw(name, "socket(AF_INET, SOCK_DGRAM)");
        int one = 1;
        LibC.setsockopt(fd, LibC.SOL_SOCKET, LibC.SO_REUSEADDR, &one, sizeof(int));
        if (reusePort && LibC.setsockopt(fd, LibC.SOL_SOCKET, LibC.SO_REUSEPORT, &one, sizeof(int)) < 0)
        {
            int e = NativeError.Last;
            LibC.close(fd);
            throw NativeError.Error(name, "setsockopt(SO_REUSEPORT)", e);
        }
        if (receiveBuffer > 0)
        {
            // SO_RCVBUFFORCE passes the sysctl limit as root; fall back to SO_RCVBUF otherwise.
            if (LibC.setsockopt(fd, LibC.SOL_SOCKET, SoRcvBufForce, &receiveBuffer, sizeof(int)) < 0)
                LibC.setsockopt(fd, LibC.SOL_SOCKET, LibC.SO_RCVBUF, &receiveBuffer, sizeof(int));
        }
        var sa = SockAddrIn.Of(local, port);
        if (LibC.bind(fd, (sockaddr*)&sa, (uint)sizeof(SockAddrIn)) < 0)
        {
            int e = NativeError.Last;
            LibC.close(fd);
            throw NativeError.Error($"{name} ({AddressFormat.IPv4(local)}:{port})", "bind", e);
        }
        return fd;
    }

    /// <summary>Asks the kernel, once, to hand over UDP GSO trains whole (UDP_GRO); false when it will not.</summary>
    public bool EnableGro(int queue = 0)
    {
        if (_groState[queue] == 0)
        {
            int one = 1;
            _groState[queue] = LibC.setsockopt(RxOf(queue), SolUdp, UdpGro, &one, sizeof(int)) == 0 ? 1 : -1;
        }
        return _groState[queue] > 0;
    }

    /// <summary>Whether the source-port sockets send a UDP checksum (SO_NO_CHECK off) or a zero one.</summary>
    public void SetUdpChecksum(bool on)
    {
        // UDP GSO needs the UDP checksum (the kernel refuses it with SO_NO_CHECK), so with it on
        // every datagram carries one, filled by the kernel or the underlay's offload: no
        // setsockopt per send (measured: two of them cost more than the sendmsg they wrapped).
        // Without it, a zero outer checksum, as RFC 7348 allows over IPv4 and as the kernel's
        // VXLAN device sends: on a veth the kernel would otherwise leave the checksum to an
        // offload, and a userspace receiver there (OVS's netdev datapath) drops it as bad.
        int noCheck = on ? 0 : 1;
        foreach (int fd in Tx)
            if (fd >= 0) LibC.setsockopt(fd, LibC.SOL_SOCKET, SoNoCheck, &noCheck, sizeof(int));
    }

    /// <summary>struct cmsghdr { size_t len; int level; int type; } of a UDP_SEGMENT cmsg; the u16 segment size follows at +16.</summary>
    public static void WriteSegmentCmsgHeader(byte* c)
    {
        *(nuint*)c = 16 + sizeof(ushort);
        *(int*)(c + 8) = SolUdp;
        *(int*)(c + 12) = UdpSegment;
    }

    /// <summary>The segment size from a UDP_GRO cmsg, or 0 when the message is one datagram.</summary>
    public static int GroSegmentSize(in MsgHdr h)
    {
        if (h.Control is null || h.ControlLen < 20) return 0;
        byte* c = (byte*)h.Control;
        return *(int*)(c + 8) == SolUdp && *(int*)(c + 12) == UdpGro ? *(int*)(c + 16) : 0;
    }

    public void Dispose()
    {
        if (Rx >= 0) { LibC.close(Rx); Rx = -1; }
        for (int i = 0; i < QueueRx.Length; i++)
            if (QueueRx[i] >= 0) { LibC.close(QueueRx[i]); QueueRx[i] = -1; }
        for (int i = 0; i < Tx.Length; i++)
            if (Tx[i] >= 0) { LibC.close(Tx[i]); Tx[i] = -1; }
    }
}
