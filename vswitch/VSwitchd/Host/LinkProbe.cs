using Tmds.Linux;
using VSwitch.Core.Ports.Linux;

namespace VSwitchd.Host;

/// <summary>What the host says of a port's device: whether it exists, is up, and has carrier.</summary>
public readonly record struct LinkState(string State, string? Reason, ulong? Mac = null)
{
    public static readonly LinkState Up = new("up", null);
}

/// <summary>
/// Reads a link's flags in any network namespace without starting a process: the calling thread
/// enters the namespace (setns on the thread only, as iproute2's `ip -n` does), asks by ioctl,
/// and returns to its own namespace before anything else runs on it.
/// </summary>
public static unsafe class LinkProbe
{
    private const int CloneNewNet = 0x40000000;

    /// <summary>The state of <paramref name="dev"/> in <paramref name="netns"/> (a name or a path; null: the daemon's own namespace).</summary>
    public static LinkState Probe(string dev, string? netns)
    {
        if (netns is null) return Read(dev, "the host");
        string path = NetConfig.NetnsPath(netns)!;
        if (!File.Exists(path)) return new("gone", $"namespace {netns} no longer exists");
        int target = Open(path);
        if (target < 0) return new("gone", $"namespace {netns} cannot be opened ({NativeError.Last})");
        int self = Open("/proc/thread-self/ns/net");
        if (self < 0) { LibC.close(target); return new("unknown", "cannot open this thread's own namespace"); }
        try
        {
            if (NativeMethods.setns(target, CloneNewNet) < 0) return new("unknown", $"cannot enter namespace {netns} (errno {NativeError.Last})");
            LinkState state;
            try { state = Read(dev, $"namespace {netns}"); }
            finally
            {
                // Back to our own namespace, whatever happened: the thread serves other work next.
                if (NativeMethods.setns(self, CloneNewNet) < 0)
                    Environment.FailFast($"cannot return to the daemon's network namespace after probing {netns} (errno {NativeError.Last})");
            }
            return state;
        }
        finally
        {
            LibC.close(self);
            LibC.close(target);
        }
    }

    /// <summary>Flags and MAC of the link in the calling thread's namespace.</summary>
    private static LinkState Read(string dev, string where)
    {
        var state = FromFlags(dev, LinkIoctl.GetFlags(dev), where);
        if (state.State == "gone") return state;
        try { return state with { Mac = LinkIoctl.GetMac(dev) }; }
        catch (PortException) { return state; }
    }

    private static LinkState FromFlags(string dev, short? flags, string where) => flags switch
    {
        null => new("gone", $"device {dev} no longer exists in {where}"),
        { } f when (f & SockIos.IFF_UP) == 0 => new("down", $"{dev} is administratively down in {where}"),
        { } f when (f & SockIos.IFF_RUNNING) == 0 => new("down", $"{dev} has no carrier"),
        _ => LinkState.Up,
    };

    private static int Open(string path)
    {
        fixed (byte* p = System.Text.Encoding.UTF8.GetBytes(path + "\0"))
            return LibC.open(p, LibC.O_RDONLY | LibC.O_CLOEXEC, 0);
    }
}
