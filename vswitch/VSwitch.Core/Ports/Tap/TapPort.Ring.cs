using System.Runtime.InteropServices;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports.Linux;

namespace VSwitch.Core.Ports;

// io_uring batches: up to 64 readv (with offloads) or writev requests with RWF_NOWAIT per
// io_uring_enter; a kernel that refuses turns the ring off and the port goes on with plain calls.
public sealed unsafe partial class TapPort
{
    // io_uring (TapOptions.IoUring): one ring for receive (owning thread only), one for transmit
    // (any thread; a thread that finds it busy uses plain writes). See Linux/IoUring.
    private const int RingBatch = PacketBatch.MaxSize;
    private IoUring? _rxRing, _txRing;
    private int _txBusy;
    private readonly IoVec* _rxIov, _txIov;
    private readonly VirtioNetHdr* _rxHdr, _txHdr;
    // Frames read by the ring and not yet handed to the switch (in order); entry i was read into slot i.
    private readonly Packet?[] _rxRead = new Packet?[RingBatch];
    private int _rxHead, _rxCount;
    private int _rxWant = 4;
    private readonly int[] _rxRes = new int[RingBatch];
    private readonly int[] _txRes = new int[RingBatch];
    /// <summary>io_uring_enter calls that read or wrote a batch.</summary>
    public long RingReads, RingWrites;
    /// <summary>Times an io_uring batch failed and the port fell back to plain calls.</summary>
    public long RingFailures;
    /// <summary>Buffers kept out of the pool because a failed ring may still write into them.</summary>
    public long RingLostBuffers;

    /// <summary>Large buffers left to other ports before a ring read takes more.</summary>
    private const int RingReserve = 8;

    /// <summary>
    /// io_uring receive: hands over the frames already read, then, when none wait, reads up to
    /// <see cref="_rxWant"/> frames with one io_uring_enter, each straight into a large buffer
    /// behind its virtio header (an ordinary frame is then copied into a small one, a super-frame
    /// stays whole). How many to ask for adapts: doubled while every read finds a frame, else
    /// what was found plus one (a ping does not pay for 32 empty reads).
    /// </summary>
    private void ReceiveRing(PacketBatch batch, PacketPool pool)
    {
        DeliverRead(batch, pool);
        if (_rxHead < _rxCount || batch.IsFull || pool.Available == 0) return;
        var large = pool.Large!;
        int k = Math.Min(Math.Min(_rxWant, batch.Capacity - batch.Count), Math.Min(RingBatch, large.Available - RingReserve));
        if (k <= 0) return;
        var ring = _rxRing!;
        for (int i = 0; i < k; i++)
        {
            var p = large.TryRent()!;
            p.ReceiveBuffer();
            _rxRead[i] = p;
            _rxRes[i] = int.MinValue;
            _rxIov[2 * i] = new IoVec { Base = &_rxHdr[i], Len = VnetHeaderSize };
            _rxIov[2 * i + 1] = new IoVec { Base = p.DataPointer, Len = (nuint)p.ReceiveCapacity };
            ring.Queue(IoUring.OpReadv, _fd, &_rxIov[2 * i], 2, (ulong)i, IoUring.RwfNoWait);
        }
        // RWF_NOWAIT: each read completes at once, with a frame or -EAGAIN, so no need to wait.
        int r = ring.Submit(0);
        RingReads++;
        int done = 0;
        while (done < k && ring.TryReap(out var cqe)) { _rxRes[(int)cqe.UserData] = cqe.Res; done++; }
        bool refused = false;
        for (int i = 0; i < k; i++) refused |= _rxRes[i] is -NativeError.EOPNOTSUPP or -NativeError.EINVAL;
        if (r < 0 || done < k || refused)
        {
            // A kernel whose TAP cannot read without waiting: plain reads from now on. A read still
            // in flight may yet write into its buffer, so that buffer never goes back to the pool.
            for (int i = 0; i < k; i++)
                if (_rxRes[i] == int.MinValue) { _rxRead[i] = null; RingLostBuffers++; }
            FailRing(ref _rxRing);
        }
        // Keep the frames that arrived, in order. A frame can follow a read that found nothing: the
        // reads run one after the other as they are submitted, and a frame may arrive between two
        // of them. It is still later than every frame before it, so it is kept (dropping it, as this
        // once did, lost about one datagram in a thousand under load: MultiThreadDatapathTests).
        int got = 0;
        for (int i = 0; i < k; i++)
        {
            var p = _rxRead[i]!;
            int n = _rxRes[i];
            if (n <= 0)
            {
                if (n < 0 && n != -NativeError.EAGAIN && n != int.MinValue && n != -NativeError.EOPNOTSUPP && n != -NativeError.EINVAL) RxError(-n);
                p.Release();
                _rxRead[i] = null;
                continue;
            }
            int len = n - VnetHeaderSize;
            if (len <= 0 || len >= p.ReceiveCapacity) { RxTruncated++; p.Release(); _rxRead[i] = null; got++; continue; }
            p.SetLength(len);
            got++;
        }
        _rxWant = got == k ? Math.Min(2 * _rxWant, RingBatch) : Math.Max(2, got + 1);
        // Compact (truncated frames left holes) so that entries 0.._rxCount-1 are the frames, in order.
        int w = 0;
        for (int i = 0; i < k; i++)
        {
            if (_rxRead[i] is not { } p) continue;
            if (w != i) { _rxRead[w] = p; _rxHdr[w] = _rxHdr[i]; _rxRead[i] = null; }
            w++;
        }
        _rxHead = 0;
        _rxCount = w;
        DeliverRead(batch, pool);
    }

    /// <summary>Hands frames the ring read to the switch, in order, until the batch or the pool runs out.</summary>
    private void DeliverRead(PacketBatch batch, PacketPool pool)
    {
        while (_rxHead < _rxCount && !batch.IsFull)
        {
            if (!_vnet.DeliverInPlace(in _rxHdr[_rxHead], _rxRead[_rxHead]!, batch, pool)) return; // resumed next time
            _rxRead[_rxHead++] = null;
        }
        if (_rxHead == _rxCount) _rxHead = _rxCount = 0;
    }

    /// <summary>A ring that failed (the kernel refused to take or finish a batch) is dropped; the port goes on with plain calls.</summary>
    private void FailRing(ref IoUring? ring)
    {
        Interlocked.Increment(ref RingFailures); // receive and transmit rings both fail here
        ring?.Dispose();
        ring = null;
    }

    /// <summary>io_uring transmit: one writev request per frame (virtio header + frame with offloads), all in one io_uring_enter.</summary>
    private int TransmitRing(PacketBatch batch)
    {
        var items = batch.AsSpan();
        var ring = _txRing!;
        int fd = _fd, queued = 0, sent = 0, gso = 0;
        for (int i = 0; i < items.Length && fd >= 0; i++)
        {
            var p = items[i];
            _txRes[i] = int.MinValue;
            IoVec* iov = &_txIov[2 * i];
            int cnt = 1;
            if (_offloads)
            {
                if (!Offload.GsoFrame.TryBuildHeader(p, out _txHdr[i])) continue;
                if (p.GsoSize != 0) gso++;
                iov[0] = new IoVec { Base = &_txHdr[i], Len = VnetHeaderSize };
                iov[1] = new IoVec { Base = p.DataPointer, Len = (nuint)p.Length };
                cnt = 2;
            }
            else iov[0] = new IoVec { Base = p.DataPointer, Len = (nuint)p.Length };
            ring.Queue(IoUring.OpWritev, fd, iov, cnt, (ulong)i, IoUring.RwfNoWait);
            queued++;
        }
        if (queued > 0)
        {
            int r = ring.Submit(queued);
            RingWrites++; // only the holder of the ring (_txBusy) writes it
            int done = 0;
            while (done < queued && ring.TryReap(out var cqe)) { _txRes[(int)cqe.UserData] = cqe.Res; done++; }
            if (r < 0 || done < queued)
            {
                // The kernel may still hold some of these buffers: keep them out of the pool.
                FailRing(ref _txRing);
                int leaked = 0;
                for (int i = 0; i < items.Length; i++) if (_txRes[i] == int.MinValue) leaked++;
                CountTransmit(0, leaked, gso);
                batch.Clear();
                return 0;
            }
            bool refused = false;
            for (int i = 0; i < items.Length; i++) refused |= _txRes[i] is -NativeError.EOPNOTSUPP or -NativeError.EINVAL;
            if (refused)
            {
                // This kernel's TAP does not take RWF_NOWAIT writes: plain writes from now on.
                FailRing(ref _txRing);
                return TransmitPlain(batch);
            }
            int extra = _offloads ? VnetHeaderSize : 0;
            bool linkDown = false;
            for (int i = 0; i < items.Length; i++)
            {
                if (_txRes[i] == items[i].Length + extra) sent++;
                else linkDown |= _txRes[i] == -NativeError.EIO;
            }
            if (linkDown || _linkDown) _linkDown = linkDown && sent == 0;
        }
        foreach (var p in items) p.Release();
        batch.Clear();
        CountTransmit(sent, items.Length - sent, gso);
        return sent;
    }

    /// <summary>The rings, the frames they read and nobody took, and their iovecs and headers.</summary>
    private void DisposeRings()
    {
        _rxRing?.Dispose();
        _txRing?.Dispose();
        for (int i = _rxHead; i < _rxCount; i++) { _rxRead[i]?.Release(); _rxRead[i] = null; }
        if (_rxIov is not null) { NativeMemory.Free(_rxIov); NativeMemory.Free(_rxHdr); }
        if (_txIov is not null) { NativeMemory.Free(_txIov); NativeMemory.Free(_txHdr); }
    }
}
