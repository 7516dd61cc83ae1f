using System.Runtime.InteropServices;
using Tmds.Linux;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports.Linux;

namespace VSwitch.Core.Ports;

// Receive with offloads (IFF_VNET_HDR): a virtio header in front of every frame, read into a large
// pool buffer (or the scratch buffer), then kept whole, completed or segmented by VnetDelivery.
public sealed unsafe partial class TapPort
{
    // Offloads only: the last frame read (virtio header + frame) and what is left of it.
    private byte* _scratch;
    private int _scratchLength; // > 0: a frame is waiting in the scratch buffer
    // Offload work on received frames; it also remembers how far the waiting frame got.
    private readonly Offload.VnetDelivery _vnet = new();
    // With offloads, frames can wait inside the port (in the scratch buffer, or read by the ring
    // beyond the batch): PollFd is then an epoll set of the TAP fd and a "frames waiting" eventfd.
    private readonly WaitingSignal? _waiting;

    /// <summary>With offloads: read into the scratch buffer, then copy/complete/segment into pool packets.</summary>
    private int ReceiveOffloaded(PacketBatch batch, PacketPool pool)
    {
        int fd = _fd;
        if (fd < 0) return 0;
        int before = batch.Count;
        if (_rxRing is not null && _scratchLength == 0 && (_rxHead < _rxCount || (pool.Large?.Available ?? 0) > RingReserve))
        {
            ReceiveRing(batch, pool);
            _waiting!.Set(_rxHead < _rxCount);
            int got = batch.Count - before;
            RxFrames += got;
            return got;
        }
        while (!batch.IsFull)
        {
            if (_scratchLength == 0)
            {
                // Nothing to put the frame in: leave it in the kernel's queue.
                if (pool.Available == 0) { _vnet.PoolEmpty++; break; }
                if (pool.Large?.TryRent() is { } large)
                {
                    int r = ReadLarge(fd, large, batch, pool);
                    if (r < 0) break;
                    if (r == 0) continue;
                    // r > 0: a frame to segment did not fit and now waits in the scratch buffer.
                    break;
                }
                long n = LibC.read(fd, _scratch, ScratchSize);
                if (n <= 0)
                {
                    if (n < 0)
                    {
                        int e = NativeError.Last;
                        if (e == NativeError.EINTR) continue;
                        if (e != NativeError.EAGAIN) RxError(e);
                    }
                    break;
                }
                if (n <= VnetHeaderSize || n >= ScratchSize) { RxTruncated++; continue; }
                _scratchLength = (int)n;
                _vnet.PendingSegment = 0;
            }
            if (!HandleScratch(batch, pool)) break; // batch or pool ran out: the frame waits
            _scratchLength = 0;
        }
        _waiting!.Set(_scratchLength > 0);
        int added = batch.Count - before;
        RxFrames += added;
        return added;
    }

    /// <summary>
    /// Reads one frame straight into a large pool packet (no copy for a super-frame). A TCP GSO
    /// super-frame stays in it whole; anything else goes through <see cref="Offload.VnetDelivery"/> into
    /// ordinary packets and the large one goes back. Returns -1 when nothing was read (stop), 0
    /// when the frame was handled, 1 when a frame being segmented ran out of room and was parked
    /// in the scratch buffer (resumed by the next Receive).
    /// </summary>
    private int ReadLarge(int fd, Packet large, PacketBatch batch, PacketPool pool)
    {
        VirtioNetHdr h;
        IoVec* iov = stackalloc IoVec[2];
        large.ReceiveBuffer();
        int room = large.ReceiveCapacity;
        iov[0].Base = &h;
        iov[0].Len = VnetHeaderSize;
        iov[1].Base = large.DataPointer;
        iov[1].Len = (nuint)room;
        long n;
        do n = NativeMethods.readv(fd, iov, 2);
        while (n < 0 && NativeError.Last == NativeError.EINTR);
        if (n <= 0)
        {
            large.Release();
            if (n < 0 && NativeError.Last is var e && e != NativeError.EAGAIN) RxError(e);
            return -1;
        }
        int len = (int)n - VnetHeaderSize;
        if (len <= 0 || len >= room) { large.Release(); RxTruncated++; return 0; }
        large.SetLength(len);
        _vnet.PendingSegment = 0;
        if (_vnet.DeliverInPlace(in h, large, batch, pool)) return 0;
        // Park the rest of the work (header + frame) in the scratch buffer, where the ordinary path resumes it.
        *(VirtioNetHdr*)_scratch = h;
        large.Data.CopyTo(new Span<byte>(_scratch + VnetHeaderSize, ScratchSize - VnetHeaderSize));
        _scratchLength = VnetHeaderSize + len;
        large.Release();
        return 1;
    }

    /// <summary>Turns the frame in the scratch buffer into packets. False: stop, and come back to it.</summary>
    private bool HandleScratch(PacketBatch batch, PacketPool pool)
    {
        VirtioNetHdr vnet = *(VirtioNetHdr*)_scratch;
        var src = new ReadOnlySpan<byte>(_scratch + VnetHeaderSize, _scratchLength - VnetHeaderSize);
        return _vnet.Deliver(in vnet, vnet.CsumStart, src, batch, pool);
    }

    /// <summary>The "frame waiting" signal and the scratch buffer (offloads only).</summary>
    private void DisposeOffload()
    {
        _waiting?.Dispose();
        if (_scratch is not null) { NativeMemory.AlignedFree(_scratch); _scratch = null; }
    }
}
