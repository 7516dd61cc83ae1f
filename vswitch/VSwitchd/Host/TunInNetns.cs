using Tmds.Linux;
using VSwitch.Core.Ports.Linux;

namespace VSwitchd.Host;

/// <summary>
/// Opens /dev/net/tun inside a network namespace, for re-attaching a persistent TAP that lives there: tun finds a
/// device by name in the namespace its file was opened in. As <see cref="LinkProbe"/> does, the calling thread enters
/// the namespace (setns on this thread only), opens the file, and returns before anything else runs on it; the fd then
/// works from any namespace.
/// </summary>
public static unsafe class TunInNetns
{
    private const int CloneNewNet = 0x40000000;

    /// <summary>A non-blocking, close-on-exec fd of /dev/net/tun opened in <paramref name="netns"/> (a name or a path).</summary>
    public static int Open(string netns)
    {
        string path = NetConfig.NetnsPath(netns)!;
        int target = OpenFile(path, LibC.O_RDONLY);
        if (target < 0) throw new PortException($"network namespace '{netns}' cannot be opened ({path}: {NativeError.Name(NativeError.Last)})", NativeError.Last);
        int self = OpenFile("/proc/thread-self/ns/net", LibC.O_RDONLY);
        if (self < 0)
        {
            LibC.close(target);
            throw new PortException("cannot open this thread's own network namespace", NativeError.Last);
        }
        try
        {
            if (NativeMethods.setns(target, CloneNewNet) < 0) throw new PortException($"cannot enter namespace {netns} ({NativeError.Name(NativeError.Last)})", NativeError.Last);
            int fd;
            try
            {
                fd = OpenFile("/dev/net/tun", LibC.O_RDWR | LibC.O_NONBLOCK);
                if (fd < 0) throw new PortException($"open(/dev/net/tun) in {netns}: {NativeError.Name(NativeError.Last)}", NativeError.Last);
            }
            finally
            {
                if (NativeMethods.setns(self, CloneNewNet) < 0)
                    Environment.FailFast($"cannot return to the daemon's network namespace after opening a TAP in {netns} (errno {NativeError.Last})");
            }
            return fd;
        }
        finally
        {
            LibC.close(self);
            LibC.close(target);
        }
    }

    private static int OpenFile(string path, int flags)
    {
        fixed (byte* p = System.Text.Encoding.UTF8.GetBytes(path + "\0"))
            return LibC.open(p, flags | LibC.O_CLOEXEC, 0);
    }
}
