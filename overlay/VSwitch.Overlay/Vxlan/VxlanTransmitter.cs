using System.Runtime.InteropServices;
using Tmds.Linux;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports.Linux;
using VSwitch.Core.Ports.Offload;
using VSwitch.Overlay.Wire;

namespace VSwitch.Overlay;

/// <summary>
/// The transmit half of a <see cref="VxlanPort"/>: ordinary frames get their VXLAN header in the
/// headroom and leave by one sendmmsg per source-port socket (runs of equal-sized frames to one VTEP
/// as UDP GSO trains gathered by iovec); a TCP super-frame is cut into segments here, each datagram's
/// headers written into a small buffer and its payload gathered from the super-frame, and sent with
/// UDP_SEGMENT. The kernel adds UDP, IP and Ethernet.
/// <para>
/// One instance is one sender's state: <see cref="VxlanPort"/> hands each thread that sends at the
/// same moment a transmitter of its own, so nothing here is shared between threads but the sockets'
/// fds (read-only) and <see cref="VtepTable"/> (atomic transmit counters).
/// </para>
/// </summary>
internal sealed unsafe class VxlanTransmitter : IDisposable
{
    private const int MaxBatch = VxlanPort.MaxBatch;
    private const int TxSockets = VxlanSockets.Count;

    private readonly int[] _tx;
    private readonly ushort _udpPort;
    private readonly VtepTable _vteps;
    private readonly MMsgHdr* _msgs;
    private readonly IoVec* _iovs;
    private readonly SockAddr* _addrs;
    private readonly byte[] _choice = new byte[MaxBatch];
    private readonly uint[] _remotes = new uint[MaxBatch];

    public long TxPackets, TxDropped;
    // Software GSO into UDP GSO (SendSuperFrame): a slot of headers per datagram, header/payload iovec pairs, the cmsg.
    private const int MaxGsoSegments = 64;           // UDP_MAX_SEGMENTS is 64 on older kernels
    private const int MaxUdpPayload = 65535 - 20 - 8; // one IPv4 datagram's worth
    private const int HeaderSlot = 256;               // one datagram's headers (VXLAN + Ethernet + IP + TCP, options included)
    private const int GsoBufferSize = MaxGsoSegments * HeaderSlot;
    private const int GsoCmsgSpace = VxlanSockets.SegmentCmsgSpace;
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
    // A train's datagrams (VXLAN header and frame) fit a 1500-byte underlay (1472 bytes of UDP payload over
    // IPv4, 1452 over IPv6); lowered if the kernel still finds them too large for the route (EINVAL).
    private int _trainSegmentLimit;
    public long TxTrains, TxTrainFrames;
    /// <summary>sendmsg calls that carried a train of datagrams with UDP_SEGMENT.</summary>
    public long TxGsoSends;

    public VxlanTransmitter(VxlanSockets sockets, ushort udpPort, VtepTable vteps)
    {
        _tx = sockets.Tx;
        _trainSegmentLimit = VxlanHeader.MaxDatagram(sockets.IsIPv6);
        _udpPort = udpPort;
        _vteps = vteps;
        _msgs = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)(MaxBatch * sizeof(MMsgHdr)));
        _iovs = (IoVec*)NativeMemory.AllocZeroed((nuint)(MaxBatch * sizeof(IoVec)));
        _addrs = (SockAddr*)NativeMemory.AllocZeroed((nuint)(MaxBatch * sizeof(SockAddr)));
        _gsoBuf = (byte*)NativeMemory.AlignedAlloc(GsoBufferSize, 64);
        _sgIovs = (IoVec*)NativeMemory.AllocZeroed((nuint)(2 * MaxGsoSegments * sizeof(IoVec)));
        _gsoCmsg = (byte*)NativeMemory.AllocZeroed(GsoCmsgSpace);
        _txIovs = (IoVec*)NativeMemory.AllocZeroed((nuint)(MaxBatch * sizeof(IoVec)));
        _txCmsgs = (byte*)NativeMemory.AllocZeroed((nuint)(MaxBatch * GsoCmsgSpace));
        _retryMsgs = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)(MaxBatch * sizeof(MMsgHdr)));
        for (int i = 0; i < MaxBatch; i++) VxlanSockets.WriteSegmentCmsgHeader(_txCmsgs + i * GsoCmsgSpace);
        VxlanSockets.WriteSegmentCmsgHeader(_gsoCmsg);
    }

    /// <summary>Whether trains go out with UDP GSO; turned off here, for good, when the kernel refuses it (see <see cref="VxlanPort.UdpGso"/>).</summary>
    public bool UdpGso
    {
        get => _udpGso;
        set => _udpGso = value;
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
                _remotes[k] = p.TunnelRemote;
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
                    if (m > 0 && _udpGso && _remotes[k] == _remotes[last]
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
                        _msgs[m].Hdr.NameLen = _addrs[k].Length;
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
                if (_choice[i - start] != 0xFF) _vteps.Count(items[i].TunnelRemote, rx: false, items[i].Length - VxlanHeader.HeaderLength);
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

    private SockAddr Destination(uint remote) => SockAddr.OfRemote(remote, _udpPort);

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
        if (ok) _vteps.Count(p.TunnelRemote, rx: false, p.Length);
        return ok;
    }

    /// <summary>The <paramref name="datagrams"/> header/payload iovec pairs as one UDP GSO send of <paramref name="segment"/>-byte datagrams.</summary>
    private bool SendGso(int fd, SockAddr* dst, int datagrams, int bytes, int segment)
    {
        var msg = new MsgHdr { Name = dst, NameLen = dst->Length, Iov = _sgIovs, IovLen = (nuint)(2 * datagrams), Control = _gsoCmsg, ControlLen = GsoCmsgSpace };
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
    private bool SendEach(int fd, SockAddr* dst, int datagrams)
    {
        for (int i = 0; i < datagrams; i++)
        {
            _msgs[i] = default;
            _msgs[i].Hdr.Iov = &_sgIovs[2 * i];
            _msgs[i].Hdr.IovLen = 2;
            _msgs[i].Hdr.Name = dst;
            _msgs[i].Hdr.NameLen = dst->Length;
        }
        return SendMany(fd, datagrams) == datagrams;
    }

    private int _disposed;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        GC.SuppressFinalize(this);
        FreeNative();
    }

    ~VxlanTransmitter()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) FreeNative();
    }

    private void FreeNative()
    {
        NativeMemory.Free(_msgs);
        NativeMemory.Free(_iovs);
        NativeMemory.Free(_addrs);
        NativeMemory.AlignedFree(_gsoBuf);
        NativeMemory.Free(_sgIovs);
        NativeMemory.Free(_gsoCmsg);
        NativeMemory.Free(_txIovs);
        NativeMemory.Free(_txCmsgs);
        NativeMemory.Free(_retryMsgs);
    }
}
