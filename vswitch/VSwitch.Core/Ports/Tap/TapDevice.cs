using Tmds.Linux;
using VSwitch.Core.Ports.Linux;

namespace VSwitch.Core.Ports;

/// <summary>
/// Set-up of a TAP device, the control path of <see cref="TapPort.Create"/>: open /dev/net/tun,
/// TUNSETIFF (IFF_TAP | IFF_NO_PI, + IFF_VNET_HDR with offloads), the offload ioctls, TUNSETPERSIST,
/// MAC and MTU by ioctl (<see cref="LinkIoctl"/>) while the device is still in our namespace, then
/// the caller's host set-up (<see cref="TapOptions.Setup"/>) or bringing it up here. Nothing here
/// runs per packet.
/// </summary>
internal static unsafe class TapDevice
{
    /// <summary>
    /// Attaches open /dev/net/tun files to the existing device <c>o.Name</c> (in the namespace the files were opened in),
    /// sets the offloads as <paramref name="o"/> says and keeps it persistent: <paramref name="fd"/> as queue 0 and, when
    /// the device is multiqueue, <paramref name="queueFds"/> as queues 1.. (returned; closed and not returned when the
    /// device turns out to be single-queue: it was made by a daemon that asked for one queue). Closes every fd on failure.
    /// </summary>
    public static int[] Attach(int fd, int[] queueFds, TapOptions o)
    {
        try
        {
            int flags = Tun.IFF_TAP | Tun.IFF_NO_PI | (o.Offloads ? Tun.IFF_VNET_HDR : 0);
            bool multi = queueFds.Length > 0;
            // tun refuses (EINVAL) a file whose IFF_MULTI_QUEUE differs from the device's: then it was made the other way.
            int err = SetIff(fd, o.Name, flags | (multi ? Tun.IFF_MULTI_QUEUE : 0));
            if (err == NativeError.EINVAL)
            {
                multi = !multi;
                err = SetIff(fd, o.Name, flags | (multi ? Tun.IFF_MULTI_QUEUE : 0));
            }
            if (err != 0) throw NativeError.Error(o.Name, "ioctl(TUNSETIFF) on an existing persistent device", err);
            SetOffloads(fd, o.Name, o.Offloads);
            if (NativeMethods.ioctl(fd, Tun.TUNSETPERSIST, 1) < 0) NativeError.Throw(o.Name, "ioctl(TUNSETPERSIST)");
            if (!multi || queueFds.Length == 0)
            {
                foreach (int q in queueFds) LibC.close(q);
                return [];
            }
            for (int i = 0; i < queueFds.Length; i++)
            {
                if (SetIff(queueFds[i], o.Name, flags | Tun.IFF_MULTI_QUEUE) is int e2 and not 0)
                    throw NativeError.Error(o.Name, $"ioctl(TUNSETIFF, IFF_MULTI_QUEUE) for queue {i + 1} of an existing persistent device", e2);
                SetOffloads(queueFds[i], o.Name, o.Offloads);
            }
            return queueFds;
        }
        catch
        {
            foreach (int q in queueFds) LibC.close(q);
            LibC.close(fd);
            throw;
        }
    }

    /// <summary>TUNSETIFF; 0 or the errno.</summary>
    private static int SetIff(int fd, string name, int flags)
    {
        var req = default(IfReq);
        req.SetName(name);
        req.Flags = (short)flags;
        return NativeMethods.ioctl(fd, Tun.TUNSETIFF, &req) < 0 ? NativeError.Last : 0;
    }

    private static void SetOffloads(int fd, string name, bool offloads)
    {
        if (offloads)
        {
            // The header size is passed by pointer; the offload flags by value. TSO_ECN: the
            // segmenter keeps CWR on the first segment only, which is what SKB_GSO_TCP_ECN asks.
            int hdrSize = TapPort.VnetHeaderSize;
            if (NativeMethods.ioctl(fd, Tun.TUNSETVNETHDRSZ, &hdrSize) < 0) NativeError.Throw(name, $"ioctl(TUNSETVNETHDRSZ, {hdrSize})");
            nint flags = Tun.TUN_F_CSUM | Tun.TUN_F_TSO4 | Tun.TUN_F_TSO6 | Tun.TUN_F_TSO_ECN;
            if (NativeMethods.ioctl(fd, Tun.TUNSETOFFLOAD, flags) < 0) NativeError.Throw(name, "ioctl(TUNSETOFFLOAD, CSUM|TSO4|TSO6|TSO_ECN)");
        }
        else if (NativeMethods.ioctl(fd, Tun.TUNSETOFFLOAD, 0) < 0)
        {
            // A persistent device re-attached may still have offloads from an earlier owner.
            NativeError.Throw(name, "ioctl(TUNSETOFFLOAD, 0)");
        }
    }

    /// <summary>
    /// Creates and configures the device; returns its non-blocking fd and (out) the name the kernel
    /// gave it. On any failure the fd is closed, so no device is left.
    /// </summary>
    public static int Open(TapOptions o, out string name) => Open(o, out name, out _);

    /// <summary>As <see cref="Open(TapOptions, out string)"/>; with <c>o.Queues</c> above 1 the device is multiqueue and
    /// <paramref name="queueFds"/> holds the fds of queues 1.. (queue 0 is the fd returned).</summary>
    public static int Open(TapOptions o, out string name, out int[] queueFds)
    {
        queueFds = [];
        if (o.Queues is < 1 or > 64) throw new ArgumentOutOfRangeException(nameof(o), o.Queues, $"{o.Name}: TAP queues must be 1..64");
        bool multi = o.Queues > 1;
        string label = string.IsNullOrEmpty(o.Name) ? "tap" : o.Name;
        var req = default(IfReq);
        req.SetName(o.Name ?? "");

        int fd;
        fixed (byte* path = "/dev/net/tun\0"u8)
            fd = LibC.open(path, LibC.O_RDWR | LibC.O_NONBLOCK | LibC.O_CLOEXEC, 0);
        if (fd < 0) NativeError.Throw(label, "open(/dev/net/tun)");
        try
        {
            req.Flags = (short)(Tun.IFF_TAP | Tun.IFF_NO_PI | (o.Offloads ? Tun.IFF_VNET_HDR : 0) | (multi ? Tun.IFF_MULTI_QUEUE : 0));
            if (NativeMethods.ioctl(fd, Tun.TUNSETIFF, &req) < 0) NativeError.Throw(label, multi ? "ioctl(TUNSETIFF, IFF_MULTI_QUEUE)" : "ioctl(TUNSETIFF)");
            name = req.GetName();
            SetOffloads(fd, name, o.Offloads);
            if (multi) queueFds = OpenQueues(name, req.Flags, o.Queues - 1, o.Offloads);
            if (o.Persistent && NativeMethods.ioctl(fd, Tun.TUNSETPERSIST, 1) < 0) NativeError.Throw(name, "ioctl(TUNSETPERSIST)");
            try
            {
                // MAC and MTU by ioctl while the device is still in our namespace.
                if (o.Mac is ulong mac) LinkIoctl.SetMac(name, mac);
                if (o.Mtu is int mtu) LinkIoctl.SetMtu(name, mtu);
                if (o.Setup is not null) o.Setup(name);
                else if (o.Up) LinkIoctl.SetUp(name);
            }
            catch when (o.Persistent)
            {
                // A persistent device outlives the fd: undo the flag so that closing removes it.
                NativeMethods.ioctl(fd, Tun.TUNSETPERSIST, 0);
                throw;
            }
            return fd;
        }
        catch
        {
            foreach (int q in queueFds) LibC.close(q);
            LibC.close(fd);
            throw;
        }
    }

    /// <summary>Attaches <paramref name="count"/> more queues to the multiqueue device <paramref name="name"/> (in our namespace).</summary>
    private static int[] OpenQueues(string name, short flags, int count, bool offloads)
    {
        var fds = new List<int>(count);
        try
        {
            for (int i = 0; i < count; i++)
            {
                int q;
                fixed (byte* path = "/dev/net/tun\0"u8)
                    q = LibC.open(path, LibC.O_RDWR | LibC.O_NONBLOCK | LibC.O_CLOEXEC, 0);
                if (q < 0) NativeError.Throw(name, "open(/dev/net/tun) for a queue");
                fds.Add(q);
                var req = default(IfReq);
                req.SetName(name);
                req.Flags = flags;
                if (NativeMethods.ioctl(q, Tun.TUNSETIFF, &req) < 0) NativeError.Throw(name, $"ioctl(TUNSETIFF, IFF_MULTI_QUEUE) for queue {i + 1}");
                SetOffloads(q, name, offloads);
            }
            return [.. fds];
        }
        catch
        {
            foreach (int q in fds) LibC.close(q);
            throw;
        }
    }
}
