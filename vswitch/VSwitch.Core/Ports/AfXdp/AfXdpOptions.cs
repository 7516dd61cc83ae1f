namespace VSwitch.Core.Ports.AfXdp;

/// <summary>How the port may bind: zero-copy (the driver DMAs into the UMEM), copy, or the best the kernel allows.</summary>
public enum XskCopyMode { Auto, ZeroCopy, Copy }

/// <summary>Where the XDP program runs: in the driver (native), in the generic SKB path, or the best the kernel allows.</summary>
public enum XdpAttachMode { Auto, Native, Generic }

/// <summary>How to attach an existing interface through AF_XDP (see <see cref="AfXdpPort.Open"/>).</summary>
public sealed class AfXdpOptions
{
    public const uint DefaultRingSize = 2048;
    public const int DefaultFrameSize = 2048;

    /// <summary>The interface (the root end of a veth, a NIC), in the caller's namespace.</summary>
    public string Interface { get; set; } = "";
    /// <summary>The receive queue the socket binds to (frames of other queues go on to the kernel's stack).</summary>
    public int QueueId { get; set; }
    public XskCopyMode Copy { get; set; } = XskCopyMode.Auto;
    public XdpAttachMode Attach { get; set; } = XdpAttachMode.Auto;
    /// <summary>Entries of each of the four rings (a power of two, 64..16384); the UMEM has twice as many frames.</summary>
    public uint RingSize { get; set; } = DefaultRingSize;
    /// <summary>UMEM frame (chunk) size: 2048 or 4096. A frame longer than this is dropped by the kernel (rx-dropped).</summary>
    public int FrameSize { get; set; } = DefaultFrameSize;

    /// <summary>The (attach, bind) pairs to try in order, best first: native zero-copy, native copy, generic copy.</summary>
    public IReadOnlyList<XskMode> Candidates()
    {
        var list = new List<XskMode>(3);
        bool native = Attach != XdpAttachMode.Generic, generic = Attach != XdpAttachMode.Native;
        if (native && Copy != XskCopyMode.Copy) list.Add(new(true, true));
        if (native && Copy != XskCopyMode.ZeroCopy) list.Add(new(true, false));
        if (generic && Copy != XskCopyMode.ZeroCopy) list.Add(new(false, false));
        return list;
    }

    /// <summary>Why these options cannot work, naming the bad value, or null.</summary>
    public string? Validate()
    {
        if (string.IsNullOrEmpty(Interface)) return "the interface is empty";
        if (QueueId is < 0 or > 4095) return $"queue {QueueId} must be 0..4095";
        if (RingSize is < 64 or > 16384 || (RingSize & (RingSize - 1)) != 0) return $"ring size {RingSize} must be a power of two, 64..16384";
        if (FrameSize is not (2048 or 4096)) return $"frame size {FrameSize} must be 2048 or 4096";
        if (Attach == XdpAttachMode.Generic && Copy == XskCopyMode.ZeroCopy)
            return "zero-copy needs native XDP (a driver that supports it); generic XDP always copies";
        return null;
    }
}

/// <summary>One way to open the port: the XDP program in the driver or not, the socket zero-copy or not.</summary>
public readonly record struct XskMode(bool Native, bool ZeroCopy)
{
    public override string ToString() => (Native ? "native" : "generic") + (ZeroCopy ? " zero-copy" : " copy");
}
