using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Tmds.Linux;
using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Ports;
using VSwitch.Core.Ports.Linux;
using VSwitch.Core.Ports.Offload;
using VSwitch.Core.Wire;
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
/// </summary>
public sealed unsafe class VxlanPort : ITunnelPort, IPortDiagnostics
{
    public const int TxSockets = 8;
    private const int MaxBatch = 64;

    [StructLayout(LayoutKind.Sequential)]
    private struct SockAddrIn
    {
        public ushort Family;
        public ushort Port;   // network order
        public uint Address;  // network order
        public ulong Zero;
    }

    private int _rx;
    private readonly int[] _tx = new int[TxSockets];
    private readonly MMsgHdr* _msgs;
    private readonly IoVec* _iovs;
    private readonly SockAddrIn* _addrs;
    private readonly Packet?[] _rxPackets = new Packet?[MaxBatch];
    private readonly byte[] _choice = new byte[MaxBatch];
    // Lock-free lookups per packet; the API only enumerates.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<uint, VtepCounters> _vteps = new();

    public long RxPackets, RxBadHeader, TxPackets, TxDropped;
    private readonly VSwitch.Core.Ports.Offload.TcpCoalescer _gro = new();
    // UDP GRO receive (ReceiveTrains): cmsg room per message, packets a train produced beyond the batch.
    private const int UdpGro = 104;
    private const int RxCmsgSpace = 32;
    /// <summary>Large buffers left free for the other ports' super-frames before trains are received into them.</summary>
    private const int GroReserve = 16;
    private readonly byte* _rxCmsgs;
    private int _groState; // 0: not tried, 1: on, -1: the kernel refused
    private readonly Packet?[] _pending = new Packet?[4 * MaxBatch];
    private int _pendingHead, _pendingCount;
    private int _packetsPerMessage = 1; // what the last trains gave, after GRO
    /// <summary>Frames dropped on receive for want of a buffer (pool empty, or more leftovers than fit).</summary>
    public long RxNoBuffer, RxTruncated;
    private const int MsgTrunc = 0x20;
    // Software GSO into UDP GSO (SendSuperFrame): a slot of headers per datagram, header/payload iovec pairs, the cmsg.
    private const int SoNoCheck = 11;
    private const int MaxGsoSegments = 64;           // UDP_MAX_SEGMENTS is 64 on older kernels
    private const int MaxUdpPayload = 65535 - 20 - 8; // one IPv4 datagram's worth
    private const int HeaderSlot = 256;               // one datagram's headers (VXLAN + Ethernet + IP + TCP, options included)
    private const int GsoBufferSize = MaxGsoSegments * HeaderSlot;
    private const int GsoCmsgSpace = 24;              // CMSG_SPACE(sizeof(u16)) on 64-bit
    private readonly byte* _gsoBuf;
    private readonly IoVec* _sgIovs;                   // header, payload: two per datagram of a super-frame
    private readonly byte* _gsoCmsg;
    private bool _udpGso = true;
    // Trains of ordinary frames: the messages' iovecs in message order, a UDP_SEGMENT cmsg per
    // message and how many frames each message carries.
    private readonly IoVec* _txIovs;
    private readonly byte* _txCmsgs;
    private readonly int[] _msgFrames = new int[MaxBatch];
    private readonly MMsgHdr* _retryMsgs;
    // A train's datagrams (VXLAN header and frame) fit a 1500-byte underlay (1472 bytes of UDP payload);
    // lowered if the kernel still finds them too large for the route (EINVAL).
    private int _trainSegmentLimit = 1472;
    public long TxTrains, TxTrainFrames;
    /// <summary>sendmsg calls that carried a train of datagrams with UDP_SEGMENT.</summary>
    public long TxGsoSends;

    /// <summary>Per remote VTEP counters (packets/bytes in and out).</summary>
    public sealed class VtepCounters
    {
        public long RxPackets, RxBytes, TxPackets, TxBytes;
    }

    private VxlanPort(string name, uint local, ushort port)
    {
        Name = name;
        Local = local;
        UdpPort = port;
        _msgs = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)(MaxBatch * sizeof(MMsgHdr)));
        _iovs = (IoVec*)NativeMemory.AllocZeroed((nuint)(MaxBatch * sizeof(IoVec)));
        _addrs = (SockAddrIn*)NativeMemory.AllocZeroed((nuint)(MaxBatch * sizeof(SockAddrIn)));
        _gsoBuf = (byte*)NativeMemory.AlignedAlloc(GsoBufferSize, 64);
        _rxCmsgs = (byte*)NativeMemory.AllocZeroed((nuint)(MaxBatch * RxCmsgSpace));
        _sgIovs = (IoVec*)NativeMemory.AllocZeroed((nuint)(2 * MaxGsoSegments * sizeof(IoVec)));
        _gsoCmsg = (byte*)NativeMemory.AllocZeroed(GsoCmsgSpace);
        _txIovs = (IoVec*)NativeMemory.AllocZeroed((nuint)(MaxBatch * sizeof(IoVec)));
        _txCmsgs = (byte*)NativeMemory.AllocZeroed((nuint)(MaxBatch * GsoCmsgSpace));
        _retryMsgs = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)(MaxBatch * sizeof(MMsgHdr)));
        for (int i = 0; i < MaxBatch; i++) WriteSegmentCmsgHeader(_txCmsgs + i * GsoCmsgSpace);
        WriteSegmentCmsgHeader(_gsoCmsg);
        _rx = -1;
        Array.Fill(_tx, -1);
    }

    /// <summary>struct cmsghdr { size_t len; int level; int type; } of a UDP_SEGMENT cmsg; the u16 segment size follows at +16.</summary>
    private static void WriteSegmentCmsgHeader(byte* c)
    {
        *(nuint*)c = 16 + sizeof(ushort);
        *(int*)(c + 8) = 17;   // SOL_UDP
        *(int*)(c + 12) = 103; // UDP_SEGMENT
    }

    /// <summary>
    /// Whether the port may send UDP GSO at all (trains of ordinary frames and of super-frame
    /// segments). On by default; off for a peer on this host that reads the underlay without
    /// virtio headers (OVS's netdev datapath on a veth), which would see one long datagram.
    /// </summary>
    public bool UdpGso
    {
        get => _udpGso;
        set
        {
            _udpGso = value;
            // UDP GSO needs the UDP checksum (the kernel refuses it with SO_NO_CHECK), so with it on
            // every datagram carries one, filled by the kernel or the underlay's offload: no
            // setsockopt per send (measured: two of them cost more than the sendmsg they wrapped).
            // Without it, a zero outer checksum, as RFC 7348 allows over IPv4 and as the kernel's
            // VXLAN device sends: on a veth the kernel would otherwise leave the checksum to an
            // offload, and a userspace receiver there (OVS's netdev datapath) drops it as bad.
            int noCheck = value ? 0 : 1;
            foreach (int fd in _tx)
                if (fd >= 0) LibC.setsockopt(fd, LibC.SOL_SOCKET, SoNoCheck, &noCheck, sizeof(int));
        }
    }

    public string Name { get; }
    /// <summary>The local VTEP address (IPv4, host order).</summary>
    public uint Local { get; }
    public ushort UdpPort { get; }
    /// <summary>
    /// An epoll fd over the receive socket and an eventfd that is raised while a train's leftovers
    /// wait in the port (they do not make the socket readable; without it they could sit until the
    /// next datagram or the datapath's idle timeout).
    /// </summary>
    public int PollFd => _waiting?.PollFd ?? -1;
    private WaitingSignal? _waiting;
    /// <summary>TCP super-frames are taken whole and segmented here, into UDP GSO sends.</summary>
    public bool AcceptsGso => true;

    /// <summary>Opens the endpoint; throws <see cref="PortException"/> naming the address when it cannot bind (not local, port in use).</summary>
    public static VxlanPort Open(string name, uint local, ushort port = VxlanHeader.UdpPort)
    {
        var p = new VxlanPort(name, local, port);
        try
        {
            p._rx = Socket(name, local, port, receiveBuffer: 8 << 20);
            p._waiting = new WaitingSignal(name, p._rx);
            for (int i = 0; i < TxSockets; i++)
            {
                p._tx[i] = Socket(name, local, 0, receiveBuffer: 0);
            }
            return p;
        }
        catch
        {
            p.Dispose();
            throw;
        }
    }

    private static int Socket(string name, uint local, ushort port, int receiveBuffer)
    {
        int fd = LibC.socket(LibC.AF_INET, LibC.SOCK_DGRAM | LibC.SOCK_NONBLOCK | LibC.SOCK_CLOEXEC, 0);
        if (fd < 0) NativeError.Throw(name, "socket(AF_INET, SOCK_DGRAM)");
        int one = 1;
        LibC.setsockopt(fd, LibC.SOL_SOCKET, LibC.SO_REUSEADDR, &one, sizeof(int));
        if (receiveBuffer > 0)
        {
            // SO_RCVBUFFORCE passes the sysctl limit as root; fall back to SO_RCVBUF otherwise.
            if (LibC.setsockopt(fd, LibC.SOL_SOCKET, 33 /* SO_RCVBUFFORCE */, &receiveBuffer, sizeof(int)) < 0)
                LibC.setsockopt(fd, LibC.SOL_SOCKET, LibC.SO_RCVBUF, &receiveBuffer, sizeof(int));
        }
        var sa = new SockAddrIn { Family = (ushort)LibC.AF_INET, Port = BinaryPrimitives.ReverseEndianness(port), Address = BinaryPrimitives.ReverseEndianness(local) };
        if (LibC.bind(fd, (sockaddr*)&sa, (uint)sizeof(SockAddrIn)) < 0)
        {
            int e = NativeError.Last;
            LibC.close(fd);
            throw NativeError.Error($"{name} ({AddressFormat.IPv4(local)}:{port})", "bind", e);
        }
        return fd;
    }

    public int Receive(PacketBatch batch, PacketPool pool)
    {
        int n = ReceiveCore(batch, pool);
        _waiting!.Set(_pendingHead < _pendingCount);
        return n;
    }

    private int ReceiveCore(PacketBatch batch, PacketPool pool)
    {
        int before = batch.Count;
        // What the last train left over (more packets than the batch had room for) goes first.
        while (_pendingHead < _pendingCount && !batch.IsFull)
        {
            batch.Add(_pending[_pendingHead]!);
            _pending[_pendingHead++] = null;
        }
        if (_pendingHead < _pendingCount) return batch.Count - before;
        _pendingHead = _pendingCount = 0;
        if (pool.Large is { } large && large.Available >= GroReserve && EnableGro())
            return ReceiveTrains(batch, pool, large, before);
        int n = PrepareReceive(pool, Math.Min(batch.Capacity - batch.Count, MaxBatch), withCmsg: false);
        int got = n == 0 ? 0 : NativeMethods.recvmmsg(_rx, _msgs, (uint)n, LibC.MSG_DONTWAIT, null);
        if (got < 0) got = 0;
        for (int i = 0; i < n; i++)
        {
            var p = _rxPackets[i]!;
            _rxPackets[i] = null;
            if (i >= got) { p.Release(); continue; }
            // With UDP_GRO on, a train read here (no large buffer was free) does not fit: drop it, counted, rather than forward its first bytes.
            if ((_msgs[i].Hdr.Flags & MsgTrunc) != 0) { RxTruncated++; p.Release(); continue; }
            p.SetLength((int)_msgs[i].Len);
            uint remote = BinaryPrimitives.ReverseEndianness(_addrs[i].Address);
            p.TunnelRemote = remote;
            var reason = VxlanCodec.Decapsulate(p);
            if (reason != DropReason.None)
            {
                // Counted by the pipeline under this reason, like any bad frame.
                p.Drop = reason;
                RxBadHeader++;
            }
            else Count(remote, rx: true, p.Length);
            batch.Add(p);
        }
        RxPackets += got;
        // Software GRO: a TCP flow's consecutive segments become one super-frame (a TAP with
        // offloads takes it in one write instead of one per segment).
        if (got > 1) _gro.Coalesce(batch, before, pool);
        return batch.Count - before;
    }

    /// <summary>Asks the kernel, once, to hand over UDP GSO trains whole (UDP_GRO); false when it will not.</summary>
    private bool EnableGro()
    {
        if (_groState == 0)
        {
            int one = 1;
            _groState = LibC.setsockopt(_rx, 17 /* SOL_UDP */, UdpGro, &one, sizeof(int)) == 0 ? 1 : -1;
        }
        return _groState > 0;
    }

    /// <summary>
    /// With UDP_GRO: every message lands in a large buffer, because one message may be a train of
    /// up to 64 datagrams that a peer sent with UDP GSO (the kernel then gives their common size
    /// in a UDP_GRO cmsg). A lone datagram is copied into an ordinary packet; a train is walked
    /// datagram by datagram, decapsulated, and its TCP segments joined into super-frames as it
    /// goes (<see cref="TcpCoalescer"/>); whatever does not join is copied out on its own. The
    /// kernel never cuts the train into 40-odd socket buffers, and the TAP on the far side gets one
    /// write per super-frame.
    /// </summary>
    private int ReceiveTrains(PacketBatch batch, PacketPool pool, PacketPool large, int before)
    {
        // A message may be a train of up to 64 frames: ask for only as many messages as the batch
        // (and the leftovers' room) can take at the last rate of packets per message, so that
        // trains of small frames are not read only to be dropped for want of room.
        int room = Math.Min(batch.Capacity - batch.Count, MaxBatch);
        if (room <= 0) return batch.Count - before;
        int want = Math.Clamp(room / _packetsPerMessage, 1, room);
        int n = PrepareReceive(large, Math.Min(want, large.Available - GroReserve / 2), withCmsg: true);
        int got = n == 0 ? 0 : NativeMethods.recvmmsg(_rx, _msgs, (uint)n, LibC.MSG_DONTWAIT, null);
        if (got < 0) got = 0;
        long datagrams = 0;
        for (int i = 0; i < n; i++)
        {
            var train = _rxPackets[i]!;
            _rxPackets[i] = null;
            if (i >= got) { train.Release(); continue; }
            int len = (int)_msgs[i].Len;
            train.SetLength(len);
            uint remote = BinaryPrimitives.ReverseEndianness(_addrs[i].Address);
            int size = GroSegmentSize(in _msgs[i].Hdr);
            if (size <= 0 || size >= len) size = len;
            var data = train.Data;
            for (int off = 0; off < len; off += size)
            {
                var d = data.Slice(off, Math.Min(size, len - off));
                datagrams++;
                if (!VxlanHeader.TryCreate(d, out var vx, out var reason))
                {
                    RxBadHeader++;
                    // Counted by the classifier under this reason, like any bad frame.
                    if (CopyOut(d, pool, batch) is { } bad) { bad.TunnelRemote = remote; bad.Drop = reason; }
                    continue;
                }
                var inner = d[VxlanHeader.HeaderLength..];
                Count(remote, rx: true, inner.Length);
                if (size == len) // a lone datagram
                {
                    if (CopyOut(inner, pool, batch) is { } one) { one.TunnelId = vx.Vni; one.TunnelRemote = remote; }
                    continue;
                }
                if (_gro.TryAppend(inner, vx.Vni, remote)) continue;
                if (_gro.Finish() is { } done) Output(done, batch);
                if (_gro.TryStart(inner, vx.Vni, remote, large)) continue;
                if (CopyOut(inner, pool, batch) is { } p) { p.TunnelId = vx.Vni; p.TunnelRemote = remote; }
            }
            if (_gro.Finish() is { } last) Output(last, batch);
            train.Release();
        }
        RxPackets += datagrams;
        // Up at once, down slowly: one lone datagram after a run of trains must not open the door to 64 trains.
        if (got > 0) _packetsPerMessage = Math.Max(Math.Max(1, (batch.Count - before + _pendingCount + got - 1) / got), _packetsPerMessage - (_packetsPerMessage + 7) / 8);
        if (got > 1) _gro.Coalesce(batch, before, pool);
        return batch.Count - before;
    }

    /// <summary>Rents up to <paramref name="want"/> buffers from <paramref name="pool"/> and points one recvmmsg message at each; returns how many.</summary>
    private int PrepareReceive(PacketPool pool, int want, bool withCmsg)
    {
        int n = 0;
        for (; n < want; n++)
        {
            var p = pool.TryRent();
            if (p is null) break;
            p.ReceiveBuffer();
            _rxPackets[n] = p;
            _iovs[n] = new IoVec { Base = p.DataPointer, Len = (nuint)p.ReceiveCapacity };
            _msgs[n] = default;
            _msgs[n].Hdr.Iov = &_iovs[n];
            _msgs[n].Hdr.IovLen = 1;
            _msgs[n].Hdr.Name = &_addrs[n];
            _msgs[n].Hdr.NameLen = (uint)sizeof(SockAddrIn);
            if (withCmsg)
            {
                _msgs[n].Hdr.Control = _rxCmsgs + n * RxCmsgSpace;
                _msgs[n].Hdr.ControlLen = RxCmsgSpace;
            }
        }
        return n;
    }

    /// <summary>The segment size from a UDP_GRO cmsg, or 0 when the message is one datagram.</summary>
    private static int GroSegmentSize(in MsgHdr h)
    {
        if (h.Control is null || h.ControlLen < 20) return 0;
        byte* c = (byte*)h.Control;
        return *(int*)(c + 8) == 17 && *(int*)(c + 12) == UdpGro ? *(int*)(c + 16) : 0;
    }

    /// <summary>Copies a frame into an ordinary packet (a large one if it is bigger) and outputs it; null when no buffer was free.</summary>
    private Packet? CopyOut(ReadOnlySpan<byte> frame, PacketPool pool, PacketBatch batch)
    {
        var p = frame.Length <= pool.FrameSize ? pool.TryRent() : pool.Large?.TryRent();
        if (p is null) { RxNoBuffer++; return null; }
        p.CopyFrom(frame);
        Output(p, batch);
        return p;
    }

    /// <summary>Into the batch, or, when it is full, into the leftovers the next Receive hands out first.</summary>
    private void Output(Packet p, PacketBatch batch)
    {
        if (!batch.IsFull) batch.Add(p);
        else if (_pendingCount < _pending.Length) _pending[_pendingCount++] = p;
        else { RxNoBuffer++; p.Release(); }
    }

    public int Transmit(PacketBatch batch)
    {
        int n = batch.Count, sent = 0;
        var items = batch.AsSpan();
        // In order: runs of ordinary frames go out by sendmmsg, a super-frame on its own in
        // between (so that a flow's packets never overtake each other).
        int run = 0;
        for (int i = 0; i < n; i++)
        {
            if (items[i].GsoSize == 0) continue;
            if (run < i) sent += SendFrames(items[run..i]);
            if (SendSuperFrame(items[i])) sent++;
            run = i + 1;
        }
        if (run < n) sent += SendFrames(items[run..n]);
        foreach (var p in items) p.Release();
        batch.Clear();
        TxPackets += sent;
        TxDropped += n - sent;
        return sent;
    }

    /// <summary>
    /// Ordinary frames: VXLAN header into the headroom, one sendmmsg per source-port socket per 64.
    /// Consecutive frames of a socket that go to the same VTEP with the same length (the last may
    /// be shorter) become one message: their buffers as the iovecs and a UDP_SEGMENT cmsg, so the
    /// kernel builds one UDP GSO packet for them, the underlay veth carries it whole and a peer
    /// with UDP_GRO reads it in one message. A 64-byte flood or a stream of TCP ACKs then costs the
    /// kernel one pass per batch instead of one per frame (WireGuard and QUIC stacks batch the same way).
    /// </summary>
    private int SendFrames(ReadOnlySpan<Packet> items)
    {
        int n = items.Length, sent = 0;
        for (int start = 0; start < n; start += MaxBatch)
        {
            int end = Math.Min(n, start + MaxBatch);
            for (int i = start; i < end; i++)
            {
                var p = items[i];
                int k = i - start;
                if (p.TunnelRemote == 0 || !VxlanCodec.Encapsulate(p)) { _choice[k] = 0xFF; continue; }
                _addrs[k] = Destination(p.TunnelRemote);
                _iovs[k] = new IoVec { Base = p.DataPointer, Len = (nuint)p.Length };
                _choice[k] = (byte)(p.Key.Hash64() % TxSockets);
            }
            // One sendmmsg per source-port socket that has packets in this batch.
            for (int s = 0; s < TxSockets; s++)
            {
                int m = 0, iv = 0;
                bool anyTrain = false;
                int size = 0, total = 0, last = -1;
                for (int i = start; i < end; i++)
                {
                    int k = i - start;
                    if (_choice[k] != s) continue;
                    int len = (int)_iovs[k].Len;
                    _txIovs[iv] = _iovs[k];
                    if (m > 0 && _udpGso && _addrs[k].Address == _addrs[last].Address
                        && len <= size && size <= _trainSegmentLimit && (int)_txIovs[iv - 1].Len == size
                        && _msgFrames[m - 1] < MaxGsoSegments && total + len <= MaxUdpPayload)
                    {
                        // Joins the open message as one more segment.
                        _msgFrames[m - 1]++;
                        anyTrain = true;
                        _msgs[m - 1].Hdr.IovLen++;
                        total += len;
                    }
                    else
                    {
                        _msgs[m] = default;
                        _msgs[m].Hdr.Iov = &_txIovs[iv];
                        _msgs[m].Hdr.IovLen = 1;
                        _msgs[m].Hdr.Name = &_addrs[k];
                        _msgs[m].Hdr.NameLen = (uint)sizeof(SockAddrIn);
                        _msgFrames[m] = 1;
                        size = total = len;
                        m++;
                    }
                    last = k;
                    iv++;
                }
                if (m == 0) continue;
                for (int j = 0; j < m && anyTrain; j++)
                {
                    if (_msgFrames[j] < 2) continue;
                    byte* c = _txCmsgs + j * GsoCmsgSpace;
                    *(ushort*)(c + 16) = (ushort)_msgs[j].Hdr.Iov->Len;
                    _msgs[j].Hdr.Control = c;
                    _msgs[j].Hdr.ControlLen = GsoCmsgSpace;
                }
                sent += anyTrain ? SendTrains(_tx[s], m) : SendMany(_tx[s], m);
            }
            for (int i = start; i < end; i++)
                if (_choice[i - start] != 0xFF) Count(items[i].TunnelRemote, rx: false, items[i].Length - VxlanHeader.HeaderLength);
        }
        return sent;
    }

    /// <summary>
    /// The prepared messages when some are trains. Returns the frames sent. When the kernel refuses a train
    /// (EINVAL: its segments do not fit the route's MTU; EIO/EOPNOTSUPP: no UDP GSO here), the rest
    /// goes datagram by datagram, and the port stops building trains of that size, or at all.
    /// </summary>
    private int SendTrains(int fd, int m)
    {
        int off = 0, frames = 0;
        bool refused = false;
        while (off < m)
        {
            int r = NativeMethods.sendmmsg(fd, _msgs + off, (uint)(m - off), LibC.MSG_DONTWAIT);
            if (r > 0)
            {
                for (int j = off; j < off + r; j++)
                {
                    frames += _msgFrames[j];
                    if (_msgFrames[j] > 1) { TxTrains++; TxTrainFrames += _msgFrames[j]; }
                }
                off += r;
                continue;
            }
            int err = NativeError.Last;
            if (r < 0 && err == NativeError.EINTR) continue;
            if (r < 0 && err is NativeError.EAGAIN or NativeError.ENOBUFS) break;
            if (r < 0 && _msgFrames[off] > 1 && err is NativeError.EIO or NativeError.EINVAL or NativeError.EOPNOTSUPP)
            {
                if (err == NativeError.EINVAL) _trainSegmentLimit = Math.Min(_trainSegmentLimit, (int)_msgs[off].Hdr.Iov->Len - 1);
                else _udpGso = false;
                refused = true;
                break;
            }
            off++; // one bad destination
        }
        if (!refused) return frames;
        // The rest one datagram per message, from the same iovecs.
        int left = 0;
        for (int j = off; j < m; j++)
        {
            var h = _msgs[j].Hdr;
            for (int f = 0; f < _msgFrames[j]; f++)
            {
                _retryMsgs[left] = default;
                _retryMsgs[left].Hdr.Iov = &h.Iov[f];
                _retryMsgs[left].Hdr.IovLen = 1;
                _retryMsgs[left].Hdr.Name = h.Name;
                _retryMsgs[left].Hdr.NameLen = h.NameLen;
                left++;
            }
        }
        return frames + SendMany(fd, _retryMsgs, left);
    }

    private SockAddrIn Destination(uint remote) => new()
    {
        Family = (ushort)LibC.AF_INET, Port = BinaryPrimitives.ReverseEndianness(UdpPort), Address = BinaryPrimitives.ReverseEndianness(remote),
    };

    /// <summary>sendmmsg of the first <paramref name="m"/> prepared messages; returns how many went.</summary>
    private int SendMany(int fd, int m) => SendMany(fd, _msgs, m);

    private static int SendMany(int fd, MMsgHdr* msgs, int m)
    {
        int off = 0, sent = 0;
        while (off < m)
        {
            int r = NativeMethods.sendmmsg(fd, msgs + off, (uint)(m - off), LibC.MSG_DONTWAIT);
            if (r > 0) { sent += r; off += r; continue; }
            if (r < 0 && NativeError.Last == NativeError.EINTR) continue;
            if (r < 0 && NativeError.Last is not (NativeError.EAGAIN or NativeError.ENOBUFS)) { off++; continue; } // one bad destination
            break;
        }
        return sent;
    }

    /// <summary>
    /// A TCP super-frame: cut into MSS-sized inner frames (software GSO) and handed to the kernel
    /// with UDP_SEGMENT: one sendmsg per up to 44 datagrams (65 507 bytes of UDP payload at MTU 1450)
    /// instead of one each, and the underlay (a veth) carries them as one UDP GSO packet. Only each
    /// datagram's headers (VXLAN, Ethernet, IP, TCP with its checksum) are written, into a slot of a
    /// small buffer; the payload is gathered straight from the super-frame by a second iovec, so the
    /// 64 KB are read once (for the checksum) and copied only by the kernel. If the kernel refuses
    /// UDP GSO the same iovecs go out by sendmmsg, one message per datagram, and the port stops asking.
    /// </summary>
    private bool SendSuperFrame(Packet p)
    {
        if (p.TunnelRemote == 0 || !TcpSegmenter.TryParse(p.Data, p.GsoSize, out var g)) return false;
        int hdr = VxlanHeader.HeaderLength + g.HeaderLength;     // one datagram's headers
        int full = hdr + g.Mss;                                  // one datagram's UDP payload
        int perSend = Math.Min(MaxGsoSegments, MaxUdpPayload / full);
        if (perSend < 1 || hdr > HeaderSlot) return false;
        int fd = _tx[p.Key.Hash64() % TxSockets];
        var dst = Destination(p.TunnelRemote);
        var frame = p.Data;
        byte* data = p.DataPointer;
        int count = g.SegmentCount;
        bool ok = true;
        for (int first = 0; first < count && ok; first += perSend)
        {
            int last = Math.Min(count, first + perSend), bytes = 0;
            for (int i = first; i < last; i++)
            {
                int j = i - first;
                byte* h = _gsoBuf + j * HeaderSlot;
                var slot = new Span<byte>(h, hdr);
                VxlanHeader.Write(slot, p.TunnelId);
                TcpSegmenter.WriteSegmentHeaders(frame, g, i, slot[VxlanHeader.HeaderLength..]);
                int start = i * g.Mss, payload = Math.Min(g.Mss, g.PayloadLength - start);
                _sgIovs[2 * j] = new IoVec { Base = h, Len = (nuint)hdr };
                _sgIovs[2 * j + 1] = new IoVec { Base = data + g.HeaderLength + start, Len = (nuint)payload };
                bytes += hdr + payload;
            }
            ok = _udpGso && last - first > 1 ? SendGso(fd, &dst, last - first, bytes, full) : SendEach(fd, &dst, last - first);
        }
        if (ok) Count(p.TunnelRemote, rx: false, p.Length);
        return ok;
    }

    /// <summary>The <paramref name="datagrams"/> header/payload iovec pairs as one UDP GSO send of <paramref name="segment"/>-byte datagrams.</summary>
    private bool SendGso(int fd, SockAddrIn* dst, int datagrams, int bytes, int segment)
    {
        var msg = new MsgHdr { Name = dst, NameLen = (uint)sizeof(SockAddrIn), Iov = _sgIovs, IovLen = (nuint)(2 * datagrams), Control = _gsoCmsg, ControlLen = GsoCmsgSpace };
        *(ushort*)(_gsoCmsg + 16) = (ushort)segment;
        long r;
        do r = NativeMethods.sendmsg(fd, &msg, LibC.MSG_DONTWAIT);
        while (r < 0 && NativeError.Last == NativeError.EINTR);
        int err = NativeError.Last;
        if (r == bytes) { TxGsoSends++; return true; }
        if (r < 0 && err is NativeError.EAGAIN or NativeError.ENOBUFS) return false;
        // EIO/EINVAL/EOPNOTSUPP: no UDP GSO on this path. Send these datagram by datagram and stop asking.
        _udpGso = false;
        return SendEach(fd, dst, datagrams);
    }

    /// <summary>The header/payload iovec pairs in _sgIovs, one sendmmsg message (one datagram) each.</summary>
    private bool SendEach(int fd, SockAddrIn* dst, int datagrams)
    {
        for (int i = 0; i < datagrams; i++)
        {
            _msgs[i] = default;
            _msgs[i].Hdr.Iov = &_sgIovs[2 * i];
            _msgs[i].Hdr.IovLen = 2;
            _msgs[i].Hdr.Name = dst;
            _msgs[i].Hdr.NameLen = (uint)sizeof(SockAddrIn);
        }
        return SendMany(fd, datagrams) == datagrams;
    }

    private void Count(uint remote, bool rx, int bytes)
    {
        if (!_vteps.TryGetValue(remote, out var c))
        {
            if (_vteps.Count >= 4096) return;
            c = _vteps.GetOrAdd(remote, static _ => new VtepCounters());
        }
        if (rx) { c.RxPackets++; c.RxBytes += bytes; }
        else { Interlocked.Increment(ref c.TxPackets); Interlocked.Add(ref c.TxBytes, bytes); }
    }

    /// <summary>A copy of the per-VTEP counters.</summary>
    public Dictionary<uint, VtepCounters> Vteps() => new(_vteps);

    public IReadOnlyList<KeyValuePair<string, long>> Diagnostics() =>
    [
        new("rx-packets", Volatile.Read(ref RxPackets)),
        new("rx-bad-vxlan", Volatile.Read(ref RxBadHeader)),
        new("rx-udp-gro", _groState > 0 ? 1 : 0),
        new("rx-no-buffer", Volatile.Read(ref RxNoBuffer)),
        new("rx-truncated", Volatile.Read(ref RxTruncated)),
        new("rx-gro-super-frames", Volatile.Read(ref _gro.SuperFrames)),
        new("rx-gro-segments-joined", Volatile.Read(ref _gro.SegmentsJoined)),
        new("rx-gro-bad-checksum", Volatile.Read(ref _gro.BadChecksum)),
        new("tx-packets", Volatile.Read(ref TxPackets)),
        new("tx-dropped", Volatile.Read(ref TxDropped)),
        new("tx-gso-sends", Volatile.Read(ref TxGsoSends)),
        new("tx-udp-gso", _udpGso ? 1 : 0),
        new("tx-trains", Volatile.Read(ref TxTrains)),
        new("tx-train-frames", Volatile.Read(ref TxTrainFrames)),
    ];

    public void Dispose()
    {
        if (_rx >= 0) { LibC.close(_rx); _rx = -1; }
        _waiting?.Dispose();
        for (int i = 0; i < _tx.Length; i++)
            if (_tx[i] >= 0) { LibC.close(_tx[i]); _tx[i] = -1; }
    }

    ~VxlanPort()
    {
        NativeMemory.Free(_msgs);
        NativeMemory.Free(_iovs);
        NativeMemory.Free(_addrs);
        NativeMemory.AlignedFree(_gsoBuf);
        NativeMemory.Free(_rxCmsgs);
        NativeMemory.Free(_sgIovs);
        NativeMemory.Free(_gsoCmsg);
        NativeMemory.Free(_txIovs);
        NativeMemory.Free(_txCmsgs);
        NativeMemory.Free(_retryMsgs);
    }
}
