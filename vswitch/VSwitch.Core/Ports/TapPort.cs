using Tmds.Linux;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports.Linux;

namespace VSwitch.Core.Ports;

/// <summary>
/// A TAP device: the switch holds the character-device side, the device itself usually lives in a
/// container's namespace. Opened with IFF_TAP | IFF_NO_PI and no IFF_VNET_HDR, so the kernel
/// segments and checksums whatever it hands us (frames read here are complete), and frames we write
/// must carry complete checksums (which AfPacketPort guarantees by completing/segmenting on receive).
/// One read() per frame and one write() per frame is all a TAP offers.
/// </summary>
public sealed unsafe class TapPort : IPort, IPortDiagnostics
{
    private int _fd;

    private TapPort(int fd, string name, string? netns)
    {
        _fd = fd;
        Name = name;
        Netns = netns;
    }

    public string Name { get; }
    /// <summary>The namespace the device was moved into, or null.</summary>
    public string? Netns { get; }
    public int PollFd => _fd;

    public long RxFrames;
    public long TxFrames;
    /// <summary>Frames not sent because the device queue was full (EAGAIN) or the device was down.</summary>
    public long TxDropped;
    /// <summary>Frames dropped on receive because the pool was empty or a read failed.</summary>
    public long RxErrors;

    /// <summary>
    /// Creates the TAP, sets MAC and MTU, moves it into the namespace, adds addresses and the
    /// default route there and brings it up. On any failure the fd is closed, so no device is left.
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, long>> Diagnostics() =>
    [
        new("rx-frames", Volatile.Read(ref RxFrames)),
        new("rx-errors", Volatile.Read(ref RxErrors)),
        new("tx-frames", Volatile.Read(ref TxFrames)),
        new("tx-dropped", Volatile.Read(ref TxDropped)),
    ];

    public static TapPort Create(TapOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        string label = string.IsNullOrEmpty(o.Name) ? "tap" : o.Name;
        var req = default(IfReq);
        req.SetName(o.Name ?? "");
        // Fail early, before a device exists, on mistakes the user can make.
        if (o.Netns is not null) NetConfig.CheckNetns(o.Netns);
        foreach (var a in o.Addresses) NetConfig.ParseCidr(a);

        int fd;
        fixed (byte* path = "/dev/net/tun\0"u8)
            fd = LibC.open(path, LibC.O_RDWR | LibC.O_NONBLOCK | LibC.O_CLOEXEC, 0);
        if (fd < 0) NativeError.Throw(label, "open(/dev/net/tun)");
        try
        {
            req.Flags = Tun.IFF_TAP | Tun.IFF_NO_PI;
            if (NativeMethods.ioctl(fd, Tun.TUNSETIFF, &req) < 0) NativeError.Throw(label, "ioctl(TUNSETIFF)");
            string name = req.GetName();
            if (o.Persistent && NativeMethods.ioctl(fd, Tun.TUNSETPERSIST, 1) < 0) NativeError.Throw(name, "ioctl(TUNSETPERSIST)");
            try
            {
                // MAC and MTU by ioctl while the device is still in our namespace.
                if (o.Mac is ulong mac) NetConfig.SetMac(name, mac);
                if (o.Mtu is int mtu) NetConfig.SetMtu(name, mtu);
                if (o.Netns is not null) NetConfig.MoveToNetns(name, o.Netns);
                foreach (var a in o.Addresses) NetConfig.AddAddress(name, a, o.Netns);
                if (o.Up) NetConfig.SetUp(name, o.Netns);
                if (o.Gateway is not null) NetConfig.AddDefaultRoute(name, o.Gateway, o.Netns);
            }
            catch when (o.Persistent)
            {
                // A persistent device outlives the fd: undo the flag so that closing removes it.
                NativeMethods.ioctl(fd, Tun.TUNSETPERSIST, 0);
                throw;
            }
            return new TapPort(fd, name, o.Netns);
        }
        catch
        {
            LibC.close(fd);
            throw;
        }
    }

    public int Receive(PacketBatch batch, PacketPool pool)
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
                    if (e != NativeError.EAGAIN) RxErrors++;
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

    public int Transmit(PacketBatch batch)
    {
        int sent = 0;
        var items = batch.AsSpan();
        bool full = _fd < 0;
        for (int i = 0; i < items.Length; i++)
        {
            var p = items[i];
            if (!full)
            {
                long n = LibC.write(_fd, p.DataPointer, p.Length);
                if (n < 0 && NativeError.Last == NativeError.EINTR) n = LibC.write(_fd, p.DataPointer, p.Length);
                if (n == p.Length) sent++;
                // EAGAIN: the device's queue is full; drop the rest of the batch rather than block.
                else if (n < 0 && NativeError.Last == NativeError.EAGAIN) full = true;
            }
            p.Release();
        }
        batch.Clear();
        TxFrames += sent;
        TxDropped += items.Length - sent;
        return sent;
    }

    /// <summary>Closes the fd; the kernel removes a non-persistent TAP, in whatever namespace it is.</summary>
    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) LibC.close(fd);
    }

    public override string ToString() => Netns is null ? $"tap {Name}" : $"tap {Name} (netns {Netns})";
}
