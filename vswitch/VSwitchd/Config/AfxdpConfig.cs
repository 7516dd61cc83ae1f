using VSwitch.Api;
using VSwitch.Core.Ports.AfXdp;

namespace VSwitchd.Config;

/// <summary>
/// An afxdp port's options in the configuration file and the state store (<c>"afxdp": { "queue": 0,
/// "mode": "auto", "attach": "auto", "ringSize": 2048, "frameSize": 2048 }</c>): the words the file uses,
/// checked here, turned into the core's <see cref="AfXdpOptions"/> when the port opens.
/// </summary>
public sealed class AfxdpConfig
{
    public int Queue { get; set; }
    /// <summary>auto, zerocopy or copy.</summary>
    public string Mode { get; set; } = "auto";
    /// <summary>auto, native or generic.</summary>
    public string Attach { get; set; } = "auto";
    public int RingSize { get; set; } = (int)AfXdpOptions.DefaultRingSize;
    public int FrameSize { get; set; } = AfXdpOptions.DefaultFrameSize;

    /// <summary>The first bad field as "field: why", or null.</summary>
    public string? Validate()
    {
        if (Mode is not ("auto" or "zerocopy" or "copy")) return $"mode: '{Mode}' must be auto, zerocopy or copy";
        if (Attach is not ("auto" or "native" or "generic")) return $"attach: '{Attach}' must be auto, native or generic";
        if (Queue is < 0 or > 4095) return $"queue: {Queue} must be 0..4095";
        if (RingSize is < 64 or > 16384 || (RingSize & (RingSize - 1)) != 0) return $"ringSize: {RingSize} must be a power of two, 64..16384";
        if (FrameSize is not (2048 or 4096)) return $"frameSize: {FrameSize} must be 2048 or 4096";
        if (Mode == "zerocopy" && Attach == "generic") return "mode: zerocopy needs native XDP; generic XDP always copies (attach: native or auto)";
        return null;
    }

    public AfXdpOptions ToOptions(string device) => new()
    {
        Interface = device,
        QueueId = Queue,
        Copy = Mode switch { "zerocopy" => XskCopyMode.ZeroCopy, "copy" => XskCopyMode.Copy, _ => XskCopyMode.Auto },
        Attach = Attach switch { "native" => XdpAttachMode.Native, "generic" => XdpAttachMode.Generic, _ => XdpAttachMode.Auto },
        RingSize = (uint)RingSize,
        FrameSize = FrameSize,
    };

    public static AfxdpConfig FromRequest(AfxdpSettings r)
    {
        var c = new AfxdpConfig();
        if (r.Queue is { } q) c.Queue = q;
        if (r.Mode is { } m) c.Mode = m;
        if (r.Attach is { } a) c.Attach = a;
        if (r.RingSize is { } rs) c.RingSize = rs;
        if (r.FrameSize is { } fs) c.FrameSize = fs;
        return c;
    }
}
