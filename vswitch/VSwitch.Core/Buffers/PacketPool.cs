using System.Runtime.InteropServices;

namespace VSwitch.Core.Buffers;

/// <summary>
/// A pool of packet buffers carved from one pinned slab. Each slot holds headroom followed by a
/// frame, so encapsulation can prepend headers without copying the frame (VPP's pre-data area,
/// DPDK's mbuf headroom). The slab is pinned so ports can hand slot addresses to the kernel
/// (readv, recvmmsg, PACKET_MMAP copies) without pinning per call.
/// A pool belongs to one datapath thread: it is deliberately not thread-safe, so that taking and
/// returning a buffer costs a few instructions and no atomic operation.
/// </summary>
public sealed unsafe class PacketPool
{
    public const int DefaultFrameSize = 2048;
    public const int DefaultHeadroom = 128;

    private readonly byte[] _slab;
    private readonly byte* _base;
    private readonly Packet[] _free;
    private int _freeCount;

    public PacketPool(int count, int frameSize = DefaultFrameSize, int headroom = DefaultHeadroom)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "pool needs at least one slot");
        if (frameSize < 64) throw new ArgumentOutOfRangeException(nameof(frameSize), frameSize, "frame size must be at least 64 bytes");
        if (headroom < 64) throw new ArgumentOutOfRangeException(nameof(headroom), headroom, "headroom must be at least 64 bytes (room for VXLAN)");
        FrameSize = frameSize;
        Headroom = headroom;
        // Round slots to a cache line so that two slots never share one.
        SlotSize = (headroom + frameSize + 63) & ~63;
        Capacity = count;
        _slab = GC.AllocateArray<byte>(checked(count * SlotSize), pinned: true);
        _base = (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(_slab, 0);
        _free = new Packet[count];
        for (int i = 0; i < count; i++)
            _free[i] = new Packet(this, _slab, i * SlotSize, SlotSize);
        _freeCount = count;
    }

    /// <summary>
    /// The same thread's pool of large slots (64 KiB frames) for TCP super-frames kept whole
    /// between ports that can take them (TAP and AF_PACKET with virtio headers); null when there is
    /// none, and then such frames are segmented on receive.
    /// </summary>
    public PacketPool? Large { get; set; }

    /// <summary>Frame size of a large pool: a 64 KiB GSO frame (IP total length ≤ 65535) plus Ethernet and two VLAN tags, rounded up.</summary>
    public const int LargeFrameSize = 64 * 1024 + 512;

    public int Capacity { get; }
    public int FrameSize { get; }
    public int Headroom { get; }
    public int SlotSize { get; }
    public int Available => _freeCount;
    public int InUse => Capacity - _freeCount;

    /// <summary>Takes a buffer, or null when the pool is empty (the caller counts a drop).</summary>
    public Packet? TryRent()
    {
        if (_freeCount == 0) return null;
        var p = _free[--_freeCount];
        p.OnRent();
        return p;
    }

    /// <summary>Returns a buffer. Returning one twice is a bug in the caller and throws.</summary>
    public void Return(Packet packet)
    {
        if (!ReferenceEquals(packet.Pool, this))
            throw new InvalidOperationException("packet returned to a pool it does not belong to");
        if (!packet.InUse)
            throw new InvalidOperationException($"packet slot {packet.SlotIndex} returned twice (double free)");
        packet.InUse = false;
        _free[_freeCount++] = packet;
    }

    /// <summary>The address of a slot's first byte; the slab is pinned for the pool's life.</summary>
    internal byte* SlotPointer(int slotBase) => _base + slotBase;
}
