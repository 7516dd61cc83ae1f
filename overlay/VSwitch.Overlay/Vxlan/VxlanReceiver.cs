using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Tmds.Linux;
using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Ports;
using VSwitch.Core.Ports.Linux;
using VSwitch.Core.Ports.Offload;
using VSwitch.Overlay.Wire;

namespace VSwitch.Overlay;

/// <summary>
/// The receive half of a <see cref="VxlanPort"/>, run only by the thread that owns the port: one
/// recvmmsg per batch on the VXLAN socket, decapsulation in place (the inner frame stays where
/// recvmmsg put it), UDP GRO trains walked datagram by datagram, and software GRO
/// (<see cref="TcpCoalescer"/>) joining a TCP flow's segments into super-frames.
/// </summary>
internal sealed unsafe class VxlanReceiver : IRxQueue, IDisposable
{
    private const int MaxBatch = VxlanPort.MaxBatch;

    private readonly VxlanSockets _sockets;
    private readonly VtepTable _vteps;
    private readonly WaitingSignal _waiting;
    private readonly MMsgHdr* _msgs;
    private readonly IoVec* _iovs;
    private readonly SockAddr* _addrs;
    private readonly Packet?[] _rxPackets = new Packet?[MaxBatch];

    public long RxPackets, RxBadHeader;
    /// <summary>Datagrams from an IPv6 VTEP that found the table of IPv6 remotes full (<see cref="VtepRemote"/>).</summary>
    public long RxVtepTableFull;
    // The last IPv6 source and its handle: a batch mostly comes from one or two VTEPs, so most datagrams skip the table.
    private UInt128 _lastSource6;
    private uint _lastRemote6;
    private readonly TcpCoalescer _gro = new();
    // UDP GRO receive (ReceiveTrains): cmsg room per message, packets a train produced beyond the batch.
    private const int RxCmsgSpace = 32;
    /// <summary>Large buffers left free for the other ports' super-frames before trains are received into them.</summary>
    private const int GroReserve = 16;
    private readonly byte* _rxCmsgs;
    private readonly Packet?[] _pending = new Packet?[4 * MaxBatch];
    private int _pendingHead, _pendingCount;
    private int _packetsPerMessage = 1; // what the last trains gave, after GRO
    /// <summary>Frames dropped on receive for want of a buffer (pool empty, or more leftovers than fit).</summary>
    public long RxNoBuffer, RxTruncated;
    private const int MsgTrunc = 0x20;

    // Which of the endpoint's receive sockets this receiver reads (one receiver per queue).
    private readonly int _queue;
    private readonly int _fd;

    public VxlanReceiver(string name, VxlanSockets sockets, VtepTable vteps, int queue = 0)
    {
        _sockets = sockets;
        _vteps = vteps;
        _queue = queue;
        _fd = sockets.RxOf(queue);
        _waiting = new WaitingSignal(name, _fd);
        _msgs = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)(MaxBatch * sizeof(MMsgHdr)));
        _iovs = (IoVec*)NativeMemory.AllocZeroed((nuint)(MaxBatch * sizeof(IoVec)));
        _addrs = (SockAddr*)NativeMemory.AllocZeroed((nuint)(MaxBatch * sizeof(SockAddr)));
        _rxCmsgs = (byte*)NativeMemory.AllocZeroed((nuint)(MaxBatch * RxCmsgSpace));
    }

    /// <summary>The receive socket and the "leftovers wait" eventfd, as one epoll fd (see <see cref="VxlanPort.PollFd"/>).</summary>
    public int PollFd => _waiting.PollFd;
    /// <summary>Software GRO's counters.</summary>
    public TcpCoalescer Gro => _gro;

    public int Receive(PacketBatch batch, PacketPool pool)
    {
        int n = ReceiveCore(batch, pool);
        _waiting.Set(_pendingHead < _pendingCount);
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
        if (pool.Large is { } large && large.Available >= GroReserve && _sockets.EnableGro(_queue))
            return ReceiveTrains(batch, pool, large, before);
        int n = PrepareReceive(pool, Math.Min(batch.Capacity - batch.Count, MaxBatch), withCmsg: false);
        int got = n == 0 ? 0 : NativeMethods.recvmmsg(_fd, _msgs, (uint)n, LibC.MSG_DONTWAIT, null);
        if (got < 0) got = 0;
        for (int i = 0; i < n; i++)
        {
            var p = _rxPackets[i]!;
            _rxPackets[i] = null;
            if (i >= got) { p.Release(); continue; }
            // With UDP_GRO on, a train read here (no large buffer was free) does not fit: drop it, counted, rather than forward its first bytes.
            if ((_msgs[i].Hdr.Flags & MsgTrunc) != 0) { RxTruncated++; p.Release(); continue; }
            p.SetLength((int)_msgs[i].Len);
            uint remote = Remote(in _addrs[i], out var refused);
            p.TunnelRemote = remote;
            var reason = remote == 0 ? refused : VxlanCodec.Decapsulate(p);
            if (remote == 0) { p.Drop = reason; if (reason == DropReason.VtepTableFull) RxVtepTableFull++; }
            else if (reason != DropReason.None)
            {
                // Counted by the pipeline under this reason, like any bad frame.
                p.Drop = reason;
                RxBadHeader++;
            }
            else _vteps.Count(remote, rx: true, p.Length);
            batch.Add(p);
        }
        RxPackets += got;
        // Software GRO: a TCP flow's consecutive segments become one super-frame (a TAP with
        // offloads takes it in one write instead of one per segment).
        if (got > 1) _gro.Coalesce(batch, before, pool);
        return batch.Count - before;
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
        int got = n == 0 ? 0 : NativeMethods.recvmmsg(_fd, _msgs, (uint)n, LibC.MSG_DONTWAIT, null);
        if (got < 0) got = 0;
        long datagrams = 0;
        for (int i = 0; i < n; i++)
        {
            var train = _rxPackets[i]!;
            _rxPackets[i] = null;
            if (i >= got) { train.Release(); continue; }
            int len = (int)_msgs[i].Len;
            train.SetLength(len);
            uint remote = Remote(in _addrs[i], out var refused);
            if (remote == 0)
            {
                // No handle for this IPv6 VTEP: the train's datagrams are dropped, counted once under the reason.
                if (refused == DropReason.VtepTableFull) RxVtepTableFull++;
                if (CopyOut(train.Data[..Math.Min(len, VxlanHeader.HeaderLength)], pool, batch) is { } full) full.Drop = refused;
                train.Release();
                continue;
            }
            int size = VxlanSockets.GroSegmentSize(in _msgs[i].Hdr);
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
                _vteps.Count(remote, rx: true, inner.Length);
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

    /// <summary>
    /// The remote VTEP handle of a datagram's source: an IPv4 address as it is, an IPv6 one interned
    /// (<see cref="VtepRemote"/>); 0 when it has none, and why: an IPv6 source that is no configured VTEP while no network
    /// accepts unknown ones (unknown-vtep), or the table is full (vtep-table-full).
    /// </summary>
    private uint Remote(in SockAddr a, out DropReason refused)
    {
        refused = DropReason.None;
        if (!a.IsIPv6) return BinaryPrimitives.ReverseEndianness(a.Address);
        var address = a.Address6;
        if (address == _lastSource6 && _lastRemote6 != 0) return _lastRemote6;
        uint remote;
        if (!_vteps.Remotes.TryGet(address, out remote))
        {
            if (!_vteps.LearnUnknown) { refused = DropReason.UnknownVtep; return 0; }
            if (!_vteps.Remotes.TryIntern(address, out remote)) { refused = DropReason.VtepTableFull; return 0; }
        }
        _lastSource6 = address;
        _lastRemote6 = remote;
        return remote;
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
            _msgs[n].Hdr.NameLen = (uint)sizeof(SockAddr);
            if (withCmsg)
            {
                _msgs[n].Hdr.Control = _rxCmsgs + n * RxCmsgSpace;
                _msgs[n].Hdr.ControlLen = RxCmsgSpace;
            }
        }
        return n;
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

    /// <summary>Closes the epoll fd and the eventfd (the socket is <see cref="VxlanSockets"/>').</summary>
    public void Dispose() => _waiting.Dispose();

    ~VxlanReceiver()
    {
        NativeMemory.Free(_msgs);
        NativeMemory.Free(_iovs);
        NativeMemory.Free(_addrs);
        NativeMemory.Free(_rxCmsgs);
    }
}
