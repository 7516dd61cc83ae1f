namespace VSwitch.Core.Ports;

/// <summary>How to create and configure a TAP port (see <see cref="TapPort.Create"/>).</summary>
public sealed class TapOptions
{
    /// <summary>Device name, at most 15 characters; empty lets the kernel choose (tapN).</summary>
    public string Name { get; set; } = "";
    /// <summary>MAC of the device (the side the namespace sees); null keeps the kernel's random one.</summary>
    public ulong? Mac { get; set; }
    public int? Mtu { get; set; }
    /// <summary>Namespace to move the device into: a name (/run/netns/NAME) or a path (/proc/PID/ns/net).</summary>
    public string? Netns { get; set; }
    /// <summary>Addresses to add, in CIDR form, IPv4 or IPv6 (10.0.0.2/24, fd00::2/64).</summary>
    public IList<string> Addresses { get; set; } = new List<string>();
    /// <summary>Default route through this gateway, out of the device.</summary>
    public string? Gateway { get; set; }
    /// <summary>Keep the device after the port is disposed (TUNSETPERSIST).</summary>
    public bool Persistent { get; set; }
    public bool Up { get; set; } = true;
    /// <summary>
    /// Open the TAP with IFF_VNET_HDR and TUNSETOFFLOAD (checksum, TSO4, TSO6, TSO-ECN): the namespace
    /// hands the switch partial checksums and up-to-64 KB TCP super-frames, which the port completes
    /// and segments itself (far cheaper than the kernel's software GSO plus one read per 1500-byte
    /// frame). False: plain IFF_TAP | IFF_NO_PI, the kernel does all of it and every frame read is complete.
    /// </summary>
    public bool Offloads { get; set; } = true;

    /// <summary>
    /// Batch the TAP's reads (with offloads) and writes through io_uring: one io_uring_enter per
    /// batch instead of one read() or write() per frame. Falls back to plain calls when the kernel
    /// has no io_uring (or it is disabled); false: always plain calls.
    /// </summary>
    public bool IoUring { get; set; } = true;
}
