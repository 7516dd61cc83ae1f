using System.Net.Sockets;
using Tmds.Linux;
using VSwitch.Core.Ports.Linux;

namespace VSwitchd.Host;

/// <summary>
/// Makes a socket inside a network namespace: a socket belongs to the namespace it was created in, for
/// its whole life, whatever thread uses it later. As <see cref="TunInNetns"/> does, the calling thread
/// enters the namespace (setns on this thread only), creates the socket and returns to the daemon's
/// namespace before anything else runs on it. Services' health checks use it to reach a backend from
/// inside its own container, where the daemon's host namespace has no route to it.
/// </summary>
public static unsafe class SocketInNetns
{
    private const int CloneNewNet = 0x40000000;

    /// <summary>A socket made in <paramref name="netns"/> (a name under /run/netns or a path); IOException when the namespace cannot be entered.</summary>
    public static Socket Create(string netns, AddressFamily family, SocketType type, ProtocolType protocol)
    {
        string path = NetConfig.NetnsPath(netns)!;
        int target = OpenFile(path);
        if (target < 0) throw new IOException($"network namespace '{netns}' cannot be opened ({path}: {NativeError.Name(NativeError.Last)})");
        int self = OpenFile("/proc/thread-self/ns/net");
        if (self < 0)
        {
            LibC.close(target);
            throw new IOException("cannot open this thread's own network namespace");
        }
        try
        {
            if (NativeMethods.setns(target, CloneNewNet) < 0) throw new IOException($"cannot enter namespace {netns} ({NativeError.Name(NativeError.Last)})");
            try { return new Socket(family, type, protocol); }
            finally
            {
                if (NativeMethods.setns(self, CloneNewNet) < 0)
                    Environment.FailFast($"cannot return to the daemon's network namespace after making a socket in {netns} (errno {NativeError.Last})");
            }
        }
        finally
        {
            LibC.close(self);
            LibC.close(target);
        }
    }

    private static int OpenFile(string path)
    {
        fixed (byte* p = System.Text.Encoding.UTF8.GetBytes(path + "\0"))
            return LibC.open(p, LibC.O_RDONLY | LibC.O_CLOEXEC, 0);
    }
}
