using VSwitch.Core.Ports;
using VSwitchd.Config;
using VSwitchd.Host;

namespace VSwitchd.Runtime;

/// <summary>
/// Persistent TAPs, for when a hand-over is impossible (a crash, kill -9): a TAP made with TUNSETPERSIST outlives the
/// daemon, so a container keeps its interface, MAC, addresses and routes while no switch runs. The restarted daemon
/// opens the existing device by its name in its namespace instead of making a new one (which would leave the
/// container without its interface for a moment and need its addresses set again). Attachments' TAPs are always
/// persistent while the daemon runs; a clean stop removes them as before. A port with "persistent": true keeps its
/// device across a clean stop too. Removing a port or detaching a container turns persistence off and deletes it.
/// </summary>
public sealed partial class SwitchRuntime
{
    private volatile bool _stopping;

    /// <summary>The port's persistent TAP, opened again where it lives, or null when it is not persistent or not there.</summary>
    private TapPort? TryReattach(PortConfig p, string device)
    {
        if (!p.Persistent || p.Netns is null) return null;
        if (LinkProbe.Probe(device, p.Netns).State == "gone") return null;
        int fd = TunInNetns.Open(p.Netns);
        // A multiqueue device takes one file per queue, each opened in its namespace (tun finds the name there).
        var queueFds = new List<int>();
        try
        {
            for (int q = 1; q < RxQueuesFor(p.RxQueues); q++) queueFds.Add(TunInNetns.Open(p.Netns));
        }
        catch
        {
            foreach (int q in queueFds) Tmds.Linux.LibC.close(q);
            Tmds.Linux.LibC.close(fd);
            throw;
        }
        var tap = TapPort.Reattach(fd, new TapOptions { Name = device, Netns = p.Netns, Offloads = p.Offloads, IoUring = p.IoUring }, p.Name, [.. queueFds]);
        _log.LogInformation("port {Port}: re-attached its persistent TAP {Device} in namespace {Netns}, as it was ({Queues} receive queue(s))", p.Name, device, p.Netns, tap.RxQueueCount);
        return tap;
    }

    /// <summary>
    /// Before a port's descriptor is closed: a persistent TAP stays only when the daemon stops and the port asked to
    /// be persistent; otherwise (removed, detached, or an attachment at a clean stop) persistence goes, and the device with it.
    /// </summary>
    private void ReleaseDevice(IPort io, PortConfig? cfg)
    {
        if (io is not TapPort { Persistent: true } tap || _stopping && cfg?.Persistent == true) return;
        try { tap.Unpersist(); }
        catch (VSwitch.Core.Ports.Linux.PortException e) { _log.LogWarning("port {Port}: turning persistence off: {Error}", tap.Name, e.Message); }
    }
}
