using VSwitch.Api;
using VSwitch.Core.Ports;

namespace VSwitchd.Config;

/// <summary>
/// An afpacket port's receive ring in the configuration file and the state store (<c>"afpacket": { "ringFrames": 2048,
/// "frameSize": 2048 }</c>): the words the file uses, checked here, turned into the core's <see cref="AfPacketOptions"/>
/// when the port opens. The default (120 slots of 68 KiB) takes 64 KiB GSO super-frames whole but holds only 120
/// frames; small slots buffer more frames in the same memory, but need the peer's GSO/TSO off, or big frames are
/// truncated and dropped (rx-truncated).
/// </summary>
public sealed class AfpacketConfig
{
    public int RingFrames { get; set; } = AfPacketOptions.DefaultRingFrameCount;
    public int FrameSize { get; set; } = AfPacketOptions.DefaultRingFrameSize;

    /// <summary>The first bad field as "field: why", or null.</summary>
    public string? Validate() => AfPacketOptions.RingError(RingFrames, FrameSize, "ringFrames", "frameSize");

    public AfPacketOptions ToOptions(string device, int queues) => new()
    {
        Interface = device,
        Queues = queues,
        RingFrameCount = RingFrames,
        RingFrameSize = FrameSize,
    };

    public static AfpacketConfig FromRequest(AfpacketSettings r)
    {
        var c = new AfpacketConfig();
        if (r.RingFrames is { } n) c.RingFrames = n;
        if (r.FrameSize is { } fs) c.FrameSize = fs;
        return c;
    }
}
