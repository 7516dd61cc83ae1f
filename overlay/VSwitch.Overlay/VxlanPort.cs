using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Tmds.Linux;
using VSwitch.Core.Buffers;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Ports;
using VSwitch.Core.Ports.Linux;
using VSwitch.Core.Wire;

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
        _rx = -1;
        Array.Fill(_tx, -1);
    }

    public string Name { get; }
    /// <summary>The local VTEP address (IPv4, host order).</summary>
    public uint Local { get; }
    public ushort UdpPort { get; }
    public int PollFd => _rx;

    /// <summary>Opens the endpoint; throws <see cref="PortException"/> naming the address when it cannot bind (not local, port in use).</summary>
    public static VxlanPort Open(string name, uint local, ushort port = VxlanHeader.UdpPort)
    {
        var p = new VxlanPort(name, local, port);
        try
        {
            p._rx = Socket(name, local, port, receiveBuffer: 8 << 20);
            for (int i = 0; i < TxSockets; i++)
            {
                p._tx[i] = Socket(name, local, 0, receiveBuffer: 0);
                // A zero outer UDP checksum, as RFC 7348 allows over IPv4 and as the kernel's VXLAN
                // device and OVS send: on a veth the kernel would otherwise leave the checksum to an
                // offload, and a userspace receiver (OVS's netdev datapath) drops it as bad.
                int one = 1;
                LibC.setsockopt(p._tx[i], LibC.SOL_SOCKET, 11 /* SO_NO_CHECK */, &one, sizeof(int));
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
            throw NativeError.Error($"{name} ({FlowKeyFormat.IPv4(local)}:{port})", "bind", e);
        }
        return fd;
    }

    public int Receive(PacketBatch batch, PacketPool pool)
    {
        int before = batch.Count;
        int want = Math.Min(batch.Capacity - batch.Count, MaxBatch);
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
        }
        int got = n == 0 ? 0 : NativeMethods.recvmmsg(_rx, _msgs, (uint)n, LibC.MSG_DONTWAIT, null);
        if (got < 0) got = 0;
        for (int i = 0; i < n; i++)
        {
            var p = _rxPackets[i]!;
            _rxPackets[i] = null;
            if (i >= got) { p.Release(); continue; }
            p.SetLength((int)_msgs[i].Len);
            uint remote = BinaryPrimitives.ReverseEndianness(_addrs[i].Address);
            p.TunnelRemote = remote;
            if (!VxlanHeader.TryCreate(p.Data, out var vx, out var reason))
            {
                // Counted by the classifier under this reason, like any bad frame.
                p.Drop = reason == DropReason.None ? DropReason.BadVxlan : reason;
                RxBadHeader++;
            }
            else
            {
                p.TunnelId = vx.Vni;
                p.TrimFront(VxlanHeader.HeaderLength);
                Count(remote, rx: true, p.Length);
            }
            batch.Add(p);
        }
        RxPackets += got;
        // Software GRO: a TCP flow's consecutive segments become one super-frame (a TAP with
        // offloads takes it in one write instead of one per segment).
        if (got > 1) _gro.Coalesce(batch, before, pool);
        return batch.Count - before;
    }

    public int Transmit(PacketBatch batch)
    {
        int n = batch.Count, sent = 0;
        var items = batch.AsSpan();
        for (int start = 0; start < n; start += MaxBatch)
        {
            int end = Math.Min(n, start + MaxBatch);
            for (int i = start; i < end; i++)
            {
                var p = items[i];
                int k = i - start;
                if (p.Headroom < VxlanHeader.HeaderLength || p.TunnelRemote == 0) { _choice[k] = 0xFF; continue; }
                VxlanHeader.Write(p.Prepend(VxlanHeader.HeaderLength), p.TunnelId);
                _addrs[k] = new SockAddrIn { Family = (ushort)LibC.AF_INET, Port = BinaryPrimitives.ReverseEndianness(UdpPort), Address = BinaryPrimitives.ReverseEndianness(p.TunnelRemote) };
                _iovs[k] = new IoVec { Base = p.DataPointer, Len = (nuint)p.Length };
                _choice[k] = (byte)(p.Key.Hash64() % TxSockets);
            }
            // One sendmmsg per source-port socket that has packets in this batch.
            for (int s = 0; s < TxSockets; s++)
            {
                int m = 0;
                for (int i = start; i < end; i++)
                {
                    int k = i - start;
                    if (_choice[k] != s) continue;
                    _msgs[m] = default;
                    _msgs[m].Hdr.Iov = &_iovs[k];
                    _msgs[m].Hdr.IovLen = 1;
                    _msgs[m].Hdr.Name = &_addrs[k];
                    _msgs[m].Hdr.NameLen = (uint)sizeof(SockAddrIn);
                    m++;
                }
                int off = 0;
                while (off < m)
                {
                    int r = NativeMethods.sendmmsg(_tx[s], _msgs + off, (uint)(m - off), LibC.MSG_DONTWAIT);
                    if (r > 0) { sent += r; off += r; continue; }
                    if (r < 0 && NativeError.Last == NativeError.EINTR) continue;
                    if (r < 0 && NativeError.Last is not (NativeError.EAGAIN or NativeError.ENOBUFS)) { off++; continue; } // one bad destination
                    break;
                }
            }
            for (int i = start; i < end; i++)
                if (_choice[i - start] != 0xFF) Count(items[i].TunnelRemote, rx: false, items[i].Length - VxlanHeader.HeaderLength);
        }
        foreach (var p in items) p.Release();
        batch.Clear();
        TxPackets += sent;
        TxDropped += n - sent;
        return sent;
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
        new("rx-gro-super-frames", Volatile.Read(ref _gro.SuperFrames)),
        new("rx-gro-segments-joined", Volatile.Read(ref _gro.SegmentsJoined)),
        new("rx-gro-bad-checksum", Volatile.Read(ref _gro.BadChecksum)),
        new("tx-packets", Volatile.Read(ref TxPackets)),
        new("tx-dropped", Volatile.Read(ref TxDropped)),
    ];

    public void Dispose()
    {
        if (_rx >= 0) { LibC.close(_rx); _rx = -1; }
        for (int i = 0; i < _tx.Length; i++)
            if (_tx[i] >= 0) { LibC.close(_tx[i]); _tx[i] = -1; }
    }

    ~VxlanPort()
    {
        NativeMemory.Free(_msgs);
        NativeMemory.Free(_iovs);
        NativeMemory.Free(_addrs);
    }
}
