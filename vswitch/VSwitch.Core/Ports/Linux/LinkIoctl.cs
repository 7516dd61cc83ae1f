using Tmds.Linux;

namespace VSwitch.Core.Ports.Linux;

/// <summary>
/// Link settings a port needs on a device in the caller's own namespace, by ioctl: MAC, MTU, up.
/// Anything that acts in another namespace, or on addresses and routes, is the daemon's host
/// set-up (<c>VSwitchd.Host.NetConfig</c>): the datapath library starts no processes.
/// </summary>
public static unsafe class LinkIoctl
{
    public static void SetMac(string dev, ulong mac)
    {
        var req = default(IfReq);
        req.SetName(dev);
        req.AddrFamily = SockIos.ARPHRD_ETHER;
        for (int i = 0; i < 6; i++) req.AddrData[i] = (byte)(mac >> (40 - 8 * i));
        IfIoctl(dev, SockIos.SIOCSIFHWADDR, "ioctl(SIOCSIFHWADDR)", ref req);
    }

    public static void SetMtu(string dev, int mtu)
    {
        if (mtu is < 68 or > 65535) throw new ArgumentOutOfRangeException(nameof(mtu), mtu, $"{dev}: MTU must be 68..65535");
        var req = default(IfReq);
        req.SetName(dev);
        req.IntValue = mtu;
        IfIoctl(dev, SockIos.SIOCSIFMTU, "ioctl(SIOCSIFMTU)", ref req);
    }

    public static int GetMtu(string dev)
    {
        var req = default(IfReq);
        req.SetName(dev);
        IfIoctl(dev, SockIos.SIOCGIFMTU, "ioctl(SIOCGIFMTU)", ref req);
        return req.IntValue;
    }

    public static ulong GetMac(string dev)
    {
        var req = default(IfReq);
        req.SetName(dev);
        IfIoctl(dev, SockIos.SIOCGIFHWADDR, "ioctl(SIOCGIFHWADDR)", ref req);
        ulong mac = 0;
        for (int i = 0; i < 6; i++) mac = (mac << 8) | req.AddrData[i];
        return mac;
    }

    /// <summary>Sets or clears IFF_UP in the caller's namespace.</summary>
    public static void SetUp(string dev, bool up = true)
    {
        var req = default(IfReq);
        req.SetName(dev);
        IfIoctl(dev, SockIos.SIOCGIFFLAGS, "ioctl(SIOCGIFFLAGS)", ref req);
        req.Flags = up ? (short)(req.Flags | SockIos.IFF_UP) : (short)(req.Flags & ~SockIos.IFF_UP);
        IfIoctl(dev, SockIos.SIOCSIFFLAGS, "ioctl(SIOCSIFFLAGS)", ref req);
    }

    private static void IfIoctl(string dev, uint request, string call, ref IfReq req)
    {
        int s = LibC.socket(LibC.AF_INET, LibC.SOCK_DGRAM | LibC.SOCK_CLOEXEC, 0);
        if (s < 0) NativeError.Throw(dev, "socket(AF_INET, SOCK_DGRAM)");
        try
        {
            fixed (IfReq* p = &req)
                if (NativeMethods.ioctl(s, request, p) < 0) NativeError.Throw(dev, call);
        }
        finally { LibC.close(s); }
    }

    /// <summary>
    /// The link's flags (IFF_UP, IFF_RUNNING, ...) in the calling thread's network namespace, or null
    /// when no such link exists there.
    /// </summary>
    public static short? GetFlags(string dev)
    {
        var req = default(IfReq);
        req.SetName(dev);
        int s = LibC.socket(LibC.AF_INET, LibC.SOCK_DGRAM | LibC.SOCK_CLOEXEC, 0);
        if (s < 0) NativeError.Throw(dev, "socket(AF_INET, SOCK_DGRAM)");
        try
        {
            if (NativeMethods.ioctl(s, SockIos.SIOCGIFFLAGS, &req) < 0)
            {
                int e = NativeError.Last;
                if (e is NativeError.ENODEV or NativeError.ENXIO) return null;
                NativeError.Throw(dev, "ioctl(SIOCGIFFLAGS)");
            }
            return req.Flags;
        }
        finally { LibC.close(s); }
    }

    /// <summary>True when a link of that name exists in the caller's namespace.</summary>
    public static bool LinkExists(string dev) => NativeMethods.IfNameToIndex(dev) != 0;
}
