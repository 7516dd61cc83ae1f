using Microsoft.Extensions.Logging;
using VSwitch.Core.Ports.AfXdp;
using VSwitchd.Config;

namespace VSwitchd.Runtime;

/// <summary>AF_XDP ports (type afxdp): opening one with the modes the kernel allows, and saying which it got.</summary>
public sealed partial class SwitchRuntime
{
    private AfXdpPort OpenAfXdp(PortConfig p)
    {
        var port = AfXdpPort.Open((p.Afxdp ?? new AfxdpConfig()).ToOptions(p.Device ?? p.Name));
        // A fallback is not an error, but whoever asked for speed should learn why they got less.
        foreach (var why in port.Refused)
            _log.LogWarning("port {Port}: AF_XDP {Why}; fell back", p.Name, why);
        _log.LogInformation("port {Port}: AF_XDP on {Device} queue {Queue}, {Mode} XDP", p.Name, port.Name, port.QueueId, port.Mode);
        return port;
    }

    /// <summary>For the port listing: "xdp": "native copy" (or generic, zero-copy), the queue, and why better modes were refused.</summary>
    private static Dictionary<string, string> AfXdpFeatures(AfXdpPort x)
    {
        var f = new Dictionary<string, string> { ["xdp"] = x.Mode.ToString(), ["queue"] = x.QueueId.ToString(), ["offloads"] = "off" };
        if (x.Refused.Count > 0) f["fallback"] = string.Join("; ", x.Refused);
        return f;
    }
}
