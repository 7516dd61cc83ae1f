using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Tmds.Linux;
using VSwitch.Core.Flow;
using VSwitch.Core.Ports.Linux;
using VSwitch.Core.Wire;

namespace VSwitch.Overlay;

/// <summary>
/// struct sockaddr_in or struct sockaddr_in6 in the room of the larger (28 bytes): what the VXLAN sockets bind
/// to, send to and hear from. One type for both families, so the receiver's and transmitter's native arrays do not
/// change with the underlay; <see cref="Length"/> is what the kernel is told.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 28)]
internal unsafe struct SockAddr
{
    [FieldOffset(0)] public ushort Family;
    [FieldOffset(2)] public ushort Port;      // network order
    [FieldOffset(4)] public uint Address;     // sockaddr_in: network order (sockaddr_in6: flow info, 0)
    [FieldOffset(8)] private fixed byte _address6[16]; // sockaddr_in6: network order
    [FieldOffset(24)] public uint ScopeId;

    public readonly bool IsIPv6 => Family == LibC.AF_INET6;
    /// <summary>The size of the family's sockaddr.</summary>
    public readonly uint Length => IsIPv6 ? 28u : 16u;

    /// <summary>The IPv6 address, big-endian as the flow key keeps IPv6 addresses.</summary>
    public readonly UInt128 Address6
    {
        get { fixed (byte* a = _address6) return BinaryPrimitives.ReadUInt128BigEndian(new ReadOnlySpan<byte>(a, 16)); }
    }

    /// <summary>IPv4 <paramref name="address"/>:<paramref name="port"/>, both in host order.</summary>
    public static SockAddr Of(uint address, ushort port) => new()
    {
        Family = (ushort)LibC.AF_INET, Port = BinaryPrimitives.ReverseEndianness(port), Address = BinaryPrimitives.ReverseEndianness(address),
    };

    /// <summary>IPv6 <paramref name="address"/> (big-endian) : <paramref name="port"/> (host order).</summary>
    public static SockAddr Of6(UInt128 address, ushort port)
    {
        var sa = new SockAddr { Family = (ushort)LibC.AF_INET6, Port = BinaryPrimitives.ReverseEndianness(port) };
        BinaryPrimitives.WriteUInt128BigEndian(new Span<byte>(sa._address6, 16), address);
        return sa;
    }

    /// <summary>The local endpoint's address of either family.</summary>
    public static SockAddr Of(IPAddress address, ushort port) => address.AddressFamily == AddressFamily.InterNetworkV6
        ? Of6(AddressFormat.ToKey(address), port)
        : Of((uint)AddressFormat.ToKey(address), port);

    /// <summary>A remote VTEP by its <see cref="VtepRemote"/> handle: an IPv4 address, or an interned IPv6 one.</summary>
    public static SockAddr OfRemote(uint remote, ushort port) =>
        VtepRemote.IsIPv6(remote) ? Of6(VtepRemote.Address6(remote), port) : Of(remote, port);
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
    /// <summary>UDP_NO_CHECK6_RX: accept a zero UDP checksum over IPv6 (RFC 6936).</summary>
    private const int UdpNoCheck6Rx = 102;
    private const int SoRcvBufForce = 33;
    private const int Ipv6V6Only = 26;
    /// <summary>CMSG_SPACE(sizeof(u16)) on 64-bit: one UDP_SEGMENT cmsg.</summary>
    public const int SegmentCmsgSpace = 24;

    private readonly string _name;
    // Per receive socket: 0: not tried, 1: on, -1: the kernel refused.
    private int[] _groState = new int[1];

    private VxlanSockets(string name, bool ipv6)
    {
        _name = name;
        IsIPv6 = ipv6;
        Array.Fill(Tx, -1);
    }

    /// <summary>True for an IPv6 underlay (AF_INET6 sockets): every remote is then an IPv6 VTEP.</summary>
    public bool IsIPv6 { get; }

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
    public static VxlanSockets Open(string name, IPAddress local, ushort port, int rxQueues = 1)
    {
        if (rxQueues is < 1 or > 64) throw new ArgumentOutOfRangeException(nameof(rxQueues), rxQueues, $"{name}: receive queues must be 1..64");
        var s = new VxlanSockets(name, local.AddressFamily == AddressFamily.InterNetworkV6);
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
    public static VxlanSockets Adopt(string name, bool ipv6, int rx, ReadOnlySpan<int> tx, ReadOnlySpan<int> queueRx = default)
    {
        if (tx.Length != Count) throw new ArgumentException($"{name}: {Count} source-port sockets expected, {tx.Length} given", nameof(tx));
        var s = new VxlanSockets(name, ipv6) { Rx = rx, QueueRx = queueRx.ToArray(), _groState = new int[1 + queueRx.Length] };
        tx.CopyTo(s.Tx);
        return s;
    }

    private static int Socket(string name, IPAddress local, ushort port, int receiveBuffer, bool reusePort = false)
    {
        var sa = SockAddr.Of(local, port);
        int fd = LibC.socket(sa.Family, LibC.SOCK_DGRAM | LibC.SOCK_NONBLOCK | LibC.SOCK_CLOEXEC, 0);
        if (fd < 0) NativeError.Throw(name, sa.IsIPv6 ? "socket(AF_INET6, SOCK_DGRAM)" : "socket(AF_INET, SOCK_DGRAM)");
        int one = 1;
        LibC.setsockopt(fd, LibC.SOL_SOCKET, LibC.SO_REUSEADDR, &one, sizeof(int));
        // Bound to one IPv6 address, the socket never hears IPv4; said outright so no sysctl changes that.
        if (sa.IsIPv6) LibC.setsockopt(fd, LibC.IPPROTO_IPV6, Ipv6V6Only, &one, sizeof(int));
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
        if (LibC.bind(fd, (sockaddr*)&sa, sa.Length) < 0)
        {
            int e = NativeError.Last;
            LibC.close(fd);
            throw NativeError.Error(sa.IsIPv6 ? $"{name} ([{local}]:{port})" : $"{name} ({local}:{port})", "bind", e);
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
        // Over IPv6 the checksum is not optional (RFC 8200 8.1; RFC 6935/6936 allow zero only on tunnels that
        // agree to it, the kernel's vxlan with udp6zerocsumtx): the kernel always fills it, as the kernel's
        // VXLAN device does by default. SO_NO_CHECK does not touch IPv6 sockets anyway.
        if (IsIPv6) return;
        int noCheck = on ? 0 : 1;
        foreach (int fd in Tx)
            if (fd >= 0) LibC.setsockopt(fd, LibC.SOL_SOCKET, SoNoCheck, &noCheck, sizeof(int));
    }

    /// <summary>
    /// Over IPv6, whether the receive socket takes datagrams with a zero UDP checksum (UDP_NO_CHECK6_RX): off by
    /// default, as the kernel (and its VXLAN device without udp6zerocsumrx) drops them; on for a peer that sends
    /// them (a kernel VXLAN device with udp6zerocsumtx). No effect on an IPv4 endpoint, where zero is always allowed.
    /// </summary>
    public bool AcceptZeroChecksum(bool on)
    {
        if (!IsIPv6) return true;
        int v = on ? 1 : 0;
        return LibC.setsockopt(Rx, SolUdp, UdpNoCheck6Rx, &v, sizeof(int)) == 0;
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
