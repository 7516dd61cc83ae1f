using Tmds.Linux;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports.Linux;

namespace VSwitch.Core.Ports;

// Plain I/O: one read() or write() (writev with offloads) per frame; the path without io_uring,
// and where a ring falls back to.
public sealed unsafe partial class TapPort
{
    /// <summary>Without offloads: every frame is complete and at most MTU-sized; read it straight into a pool slot.</summary>
    private int ReceivePlain(PacketBatch batch, PacketPool pool)
    {
        int fd = _fd;
        if (fd < 0) return 0;
        int added = 0;
        while (!batch.IsFull)
        {
            var p = pool.TryRent();
            if (p is null) { RxErrors++; break; }
            var buf = p.ReceiveBuffer();
            long n;
            fixed (byte* b = buf) n = LibC.read(fd, b, buf.Length);
            if (n <= 0)
            {
                p.Release();
                if (n < 0)
                {
                    int e = NativeError.Last;
                    if (e == NativeError.EINTR) continue;
                    if (e != NativeError.EAGAIN) RxError(e);
                }
                break;
            }
            p.SetLength((int)n);
            batch.Add(p);
            added++;
        }
        RxFrames += added;
        return added;
    }

    private int TransmitPlain(PacketBatch batch)
    {
        int sent = 0, gso = 0;
        var items = batch.AsSpan();
        int fd = _fd;
        bool full = fd < 0;
        // Transmit may run on any datapath thread: the iovecs and the zeroed header live on the stack.
        VirtioNetHdr zero = default, gsoHdr;
        IoVec* iov = stackalloc IoVec[2];
        iov[0].Base = &zero;
        iov[0].Len = VnetHeaderSize;
        for (int i = 0; i < items.Length; i++)
        {
            var p = items[i];
            if (!full)
            {
                long n;
                if (_offloads)
                {
                    // Ordinary frames leaving the switch are complete: a zeroed header asks nothing of
                    // the kernel. A super-frame goes whole, with its GSO request rebuilt.
                    iov[0].Base = &zero;
                    if (p.GsoSize != 0)
                    {
                        if (!Offload.GsoFrame.TryBuildHeader(p, out gsoHdr)) { p.Release(); continue; }
                        iov[0].Base = &gsoHdr;
                        gso++;
                    }
                    iov[1].Base = p.DataPointer;
                    iov[1].Len = (nuint)p.Length;
                    n = NativeMethods.writev(fd, iov, 2);
                    if (n < 0 && NativeError.Last == NativeError.EINTR) n = NativeMethods.writev(fd, iov, 2);
                    if (n > 0) n -= VnetHeaderSize;
                }
                else
                {
                    n = LibC.write(fd, p.DataPointer, p.Length);
                    if (n < 0 && NativeError.Last == NativeError.EINTR) n = LibC.write(fd, p.DataPointer, p.Length);
                }
                if (n == p.Length) { sent++; if (_linkDown) _linkDown = false; }
                else if (n < 0)
                {
                    int e = NativeError.Last;
                    // EAGAIN: the device's queue is full; drop the rest of the batch rather than block.
                    if (e == NativeError.EAGAIN) full = true;
                    else if (e == NativeError.EIO) _linkDown = true;
                }
            }
            p.Release();
        }
        batch.Clear();
        CountTransmit(sent, items.Length - sent, gso);
        return sent;
    }
}
