using System.Net;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports;
using VSwitch.Core.Ports.Linux;
using VSwitch.Overlay.Wire;

namespace VSwitch.Overlay;

/// <summary>
/// A VXLAN tunnel endpoint (RFC 7348) over the kernel's UDP sockets: one socket bound to the
/// local VTEP address and port 4789 receives, <see cref="TxSockets"/> sockets bound to ephemeral
/// ports send. Decapsulation strips the 8-byte VXLAN header in place (the inner frame stays where
/// recvmmsg put it); encapsulation prepends it in the buffer's headroom, and the kernel adds UDP,
/// IP and Ethernet. One recvmmsg per receive batch, one sendmmsg per socket per transmit batch.
/// <para>
/// The UDP source port: RFC 7348 section 5 asks for a hash of the inner flow so that underlay
/// ECMP spreads flows. A kernel UDP socket sends from one port, so the sender picks one of
/// <see cref="TxSockets"/> sockets (each its own ephemeral port) by the inner flow's hash: every
/// flow keeps one source port and flows spread over 8 of them.
/// </para>
/// <para>
/// The port is the face the switch sees (<see cref="ITunnelPort"/>, counters, diagnostics); the
/// work is done by its parts: <see cref="VxlanSockets"/> (the sockets and their options),
/// <see cref="VxlanReceiver"/> (recvmmsg, UDP GRO trains, software GRO), <see cref="VxlanTransmitter"/>
/// (sendmmsg, UDP GSO trains, super-frames) and <see cref="VtepTable"/> (per-VTEP counters, which
/// both halves update). One call into a part per batch; nothing per packet.
/// </para>
/// </summary>
public sealed class VxlanPort : ITunnelPort, IPortDiagnostics
{
    public const int TxSockets = VxlanSockets.Count;
    /// <summary>Messages per recvmmsg/sendmmsg.</summary>
    internal const int MaxBatch = 64;

    private readonly VxlanSockets _sockets;
    private readonly VtepTable _vteps;
    private readonly VxlanReceiver _receiver;
    // One receiver per receive socket (RSS queues); _receiver is queue 0's.
    private readonly VxlanReceiver[] _receivers;
    // One transmitter (its sendmmsg messages, iovecs, addresses, GSO header buffers and counters) per
    // thread sending at the same moment: every datapath thread may send on the tunnel (SenderSlots
    // says why not a lock). The receiver has arrays of its own; both share only the sockets and VtepTable.
    private readonly SenderSlots<VxlanTransmitter> _transmitters;
    private volatile bool _udpGso = true;

    /// <summary>Per remote VTEP counters (packets/bytes in and out).</summary>
    public sealed class VtepCounters
    {
        public long RxPackets, RxBytes, TxPackets, TxBytes;
    }

    private VxlanPort(string name, IPAddress local, ushort port, VxlanSockets sockets, VSwitch.Core.Flow.VtepRemoteTable? remotes = null)
    {
        Name = name;
        Local = local;
        UdpPort = port;
        _sockets = sockets;
        _vteps = new VtepTable(remotes ?? VSwitch.Core.Flow.VtepRemote.Shared);
        _receivers = new VxlanReceiver[sockets.RxCount];
        for (int q = 0; q < _receivers.Length; q++) _receivers[q] = new VxlanReceiver(name, sockets, _vteps, q);
        _receiver = _receivers[0];
        _transmitters = new SenderSlots<VxlanTransmitter>(() => new VxlanTransmitter(sockets, port, _vteps) { UdpGso = _udpGso });
    }

    /// <summary>
    /// Whether the port may send UDP GSO at all (trains of ordinary frames and of super-frame
    /// segments). On by default; off for a peer on this host that reads the underlay without
    /// virtio headers (OVS's netdev datapath on a veth), which would see one long datagram.
    /// With it on every datagram carries a UDP checksum, without it a zero one
    /// (<see cref="VxlanSockets.SetUdpChecksum"/> says why).
    /// </summary>
    public bool UdpGso
    {
        // Off when configured off, or when the kernel refused it to a sender (each learns that on its own).
        get
        {
            if (!_udpGso) return false;
            foreach (var t in _transmitters.States()) if (!t.UdpGso) return false;
            return true;
        }
        set
        {
            _udpGso = value;
            foreach (var t in _transmitters.States()) t.UdpGso = value;
            _sockets.SetUdpChecksum(value);
        }
    }

    public string Name { get; }
    /// <summary>The local VTEP address, IPv4 or IPv6 (the underlay's family: every remote is of it too).</summary>
    public IPAddress Local { get; }
    /// <summary>True over an IPv6 underlay.</summary>
    public bool IsIPv6 => _sockets.IsIPv6;
    /// <summary>Bytes the underlay carries around a frame: outer IP, UDP and VXLAN (70 over IPv6, 50 over IPv4).</summary>
    public int Overhead => VxlanHeader.Overhead(IsIPv6);

    /// <summary>
    /// Over IPv6, whether datagrams with a zero UDP checksum are taken (off by default, as the kernel's VXLAN
    /// device without udp6zerocsumrx); see <see cref="VxlanSockets.AcceptZeroChecksum"/>.
    /// </summary>
    public bool AcceptZeroChecksum
    {
        get => _acceptZeroChecksum;
        set
        {
            if (!_sockets.AcceptZeroChecksum(value)) throw new PortException($"{Name}: the kernel refused UDP_NO_CHECK6_RX");
            _acceptZeroChecksum = value;
        }
    }
    private bool _acceptZeroChecksum;

    /// <summary>
    /// Over IPv6, whether a datagram from an address that is no configured VTEP gets a handle (set when a VXLAN
    /// network accepts unknown VTEPs); otherwise it is dropped as unknown-vtep on receive, taking no room in the table.
    /// </summary>
    public bool LearnsUnknownVteps
    {
        get => _vteps.LearnUnknown;
        set => _vteps.LearnUnknown = value;
    }
    public ushort UdpPort { get; }
    /// <summary>
    /// An epoll fd over the receive socket and an eventfd that is raised while a train's leftovers
    /// wait in the port (they do not make the socket readable; without it they could sit until the
    /// next datagram or the datapath's idle timeout).
    /// </summary>
    public int PollFd => _receiver.PollFd;
    /// <summary>TCP super-frames are taken whole and segmented here, into UDP GSO sends.</summary>
    public bool AcceptsGso => true;

    // Counters: plain fields of the part that writes them (receive: the owning thread; transmit: each
    // sender's own transmitter, summed here when read).
    public long RxPackets => SumRx(static r => Volatile.Read(ref r.RxPackets));
    public long RxBadHeader => SumRx(static r => Volatile.Read(ref r.RxBadHeader));
    /// <summary>Frames dropped on receive for want of a buffer (pool empty, or more leftovers than fit).</summary>
    public long RxNoBuffer => SumRx(static r => Volatile.Read(ref r.RxNoBuffer));
    public long RxTruncated => SumRx(static r => Volatile.Read(ref r.RxTruncated));

    private long SumRx(Func<VxlanReceiver, long> read) => Sum(_receivers, read);

    /// <summary>Receive queues: sockets sharing the VXLAN port with SO_REUSEPORT (<see cref="Open"/>'s rxQueues).</summary>
    public int RxQueueCount => _receivers.Length;

    public IRxQueue RxQueue(int queue) => _receivers[queue];
    public long TxPackets => SumTx(static t => Volatile.Read(ref t.TxPackets));
    public long TxDropped => SumTx(static t => Volatile.Read(ref t.TxDropped));
    public long TxTrains => SumTx(static t => Volatile.Read(ref t.TxTrains));
    public long TxTrainFrames => SumTx(static t => Volatile.Read(ref t.TxTrainFrames));
    /// <summary>sendmsg calls that carried a train of datagrams with UDP_SEGMENT.</summary>
    public long TxGsoSends => SumTx(static t => Volatile.Read(ref t.TxGsoSends));

    private long SumTx(Func<VxlanTransmitter, long> read) => Sum(_transmitters.States(), read);

    private static long Sum<T>(IEnumerable<T> parts, Func<T, long> read)
    {
        long sum = 0;
        foreach (var p in parts) sum += read(p);
        return sum;
    }

    /// <summary>Opens the endpoint; throws <see cref="PortException"/> naming the address when it cannot bind (not local, port in use).</summary>
    /// <param name="rxQueues">Receive sockets bound to the port with SO_REUSEPORT, each polled by one datapath thread.</param>
    public static VxlanPort Open(string name, uint local, ushort port = VxlanHeader.UdpPort, int rxQueues = 1) =>
        Open(name, new IPAddress(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(local)), port, rxQueues);

    /// <summary>Opens the endpoint on an IPv4 or IPv6 address (AF_INET or AF_INET6 sockets); throws <see cref="PortException"/> naming the address when it cannot bind.</summary>
    /// <param name="rxQueues">Receive sockets bound to the port with SO_REUSEPORT, each polled by one datapath thread.</param>
    public static VxlanPort Open(string name, IPAddress local, ushort port = VxlanHeader.UdpPort, int rxQueues = 1) => Open(name, local, port, null, rxQueues);

    /// <summary>
    /// As <see cref="Open(string, IPAddress, ushort, int)"/>, with IPv6 sources interned in <paramref name="remotes"/> instead
    /// of the process's table: for tests of the table's bounds. The daemon never does this (a handle must name one
    /// address in every table of the process, and transmit and the views read the shared table).
    /// </summary>
    public static VxlanPort Open(string name, IPAddress local, ushort port, VSwitch.Core.Flow.VtepRemoteTable? remotes, int rxQueues = 1)
    {
        var sockets = VxlanSockets.Open(name, local, port, rxQueues);
        try
        {
            return new VxlanPort(name, local, port, sockets, remotes);
        }
        catch
        {
            sockets.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The endpoint over sockets another process opened and handed over (a hitless restart passes them with
    /// SCM_RIGHTS): <paramref name="fds"/> is the receive socket then the <see cref="TxSockets"/> source-port
    /// sockets, as <see cref="SocketFds"/> gives them. On failure the fds are left open for the caller.
    /// </summary>
    public static VxlanPort Adopt(string name, IPAddress local, ushort port, ReadOnlySpan<int> fds, bool udpGso)
    {
        if (fds.Length < 1 + TxSockets) throw new ArgumentException($"{name}: at least {1 + TxSockets} sockets expected, {fds.Length} given", nameof(fds));
        var sockets = VxlanSockets.Adopt(name, local.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6, fds[0], fds[1..(1 + TxSockets)], fds[(1 + TxSockets)..]);
        return new VxlanPort(name, local, port, sockets) { UdpGso = udpGso };
    }

    /// <summary>The receive socket, the source-port sockets, then the other queues' receive sockets, to hand them to a successor process.</summary>
    public int[] SocketFds() => [_sockets.Rx, .. _sockets.Tx, .. _sockets.QueueRx];

    public int Receive(PacketBatch batch, PacketPool pool) => _receiver.Receive(batch, pool);

    public int Transmit(PacketBatch batch)
    {
        int slot = _transmitters.Take(out var t);
        try { return t.Transmit(batch); }
        finally { _transmitters.Return(slot); }
    }

    /// <summary>A copy of the per-VTEP counters, by <see cref="VSwitch.Core.Flow.VtepRemote"/> handle.</summary>
    public Dictionary<uint, VtepCounters> Vteps() => _vteps.Snapshot();

    public IReadOnlyList<KeyValuePair<string, long>> Diagnostics() =>
    [
        new("rx-packets", RxPackets),
        new("rx-bad-vxlan", RxBadHeader),
        new("rx-vtep-table-full", Volatile.Read(ref _receiver.RxVtepTableFull)),
        new("rx-udp-gro", _sockets.GroEnabled ? 1 : 0),
        new("rx-no-buffer", RxNoBuffer),
        new("rx-truncated", RxTruncated),
        new("rx-gro-super-frames", SumRx(static r => Volatile.Read(ref r.Gro.SuperFrames))),
        new("rx-gro-segments-joined", SumRx(static r => Volatile.Read(ref r.Gro.SegmentsJoined))),
        new("rx-gro-bad-checksum", SumRx(static r => Volatile.Read(ref r.Gro.BadChecksum))),
        new("rx-queues", _receivers.Length),
        new("tx-packets", TxPackets),
        new("tx-dropped", TxDropped),
        new("tx-gso-sends", TxGsoSends),
        new("tx-udp-gso", UdpGso ? 1 : 0),
        new("tx-trains", TxTrains),
        new("tx-train-frames", TxTrainFrames),
    ];

    public void Dispose()
    {
        _sockets.Dispose();
        foreach (var r in _receivers) r.Dispose();
        // The runtime disposes a port only once every datapath thread has passed a quiescent point.
        _transmitters.Free(static t => t.Dispose());
    }
}
