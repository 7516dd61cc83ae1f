using System.Globalization;
using Microsoft.Extensions.Logging;
using VSwitch.Core.Ports;
using VSwitchd.Config;

namespace VSwitchd.Runtime;

/// <summary>AF_PACKET ports (type afpacket): opening one with the ring the port asks for, and showing the ring it got.</summary>
public sealed partial class SwitchRuntime
{
    private AfPacketPort OpenAfPacket(PortConfig p)
    {
        var port = AfPacketPort.Open((p.Afpacket ?? new AfpacketConfig()).ToOptions(p.Device ?? p.Name, RxQueuesFor(p.RxQueues)));
        _log.LogInformation("port {Port}: AF_PACKET on {Device}, ring of {Frames} slots of {FrameSize} bytes per queue ({Bytes} bytes); frames above {Largest} bytes are truncated",
            p.Name, port.Name, port.RingFrameCount, port.RingFrameSize, port.RingBytes, port.LargestFrame);
        return port;
    }

    /// <summary>
    /// For the port's view: the ring's geometry as the kernel has it (the slots asked for, rounded up to whole blocks),
    /// and in words what happens to a frame larger than a slot, so a truncation count is never a mystery.
    /// </summary>
    private static Dictionary<string, string> AfPacketFeatures(AfPacketPort a)
    {
        static string N(long n) => n.ToString(CultureInfo.InvariantCulture);
        bool gsoFits = a.LargestFrame >= AfPacketOptions.LargestFrame(AfPacketOptions.DefaultRingFrameSize);
        return new()
        {
            ["offloads"] = "on",
            ["ring"] = "TPACKET_V2",
            ["ring-frames"] = N(a.RingFrameCount),
            ["ring-frame-size"] = N(a.RingFrameSize),
            ["ring-bytes"] = N(a.RingBytes),
            ["ring-queues"] = N(a.RxQueueCount),
            ["largest-frame"] = N(a.LargestFrame),
            ["large-frames"] = gsoFits
                ? "received whole (a slot holds a 64 KiB GSO super-frame)"
                : $"above {N(a.LargestFrame)} bytes truncated, dropped (rx-truncated): the peer needs GSO/TSO off",
        };
    }
}
