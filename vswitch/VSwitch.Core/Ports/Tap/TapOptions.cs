namespace VSwitch.Core.Ports;

/// <summary>How to create and configure a TAP port (see <see cref="TapPort.Create"/>).</summary>
public sealed class TapOptions
{
    /// <summary>Device name, at most 15 characters; empty lets the kernel choose (tapN).</summary>
    public string Name { get; set; } = "";
    /// <summary>MAC of the device (the side the namespace sees); null keeps the kernel's random one.</summary>
    public ulong? Mac { get; set; }
    public int? Mtu { get; set; }
    /// <summary>
    /// Host set-up run on the new device, by name, before <see cref="TapPort.Create"/> returns: move it
    /// into a namespace, add addresses and routes, bring it up there. The daemon supplies it
    /// (<c>VSwitchd.Host.NetConfig.TapSetup</c>): that set-up runs iproute2, and the datapath library
    /// starts no processes. If it throws, the device is removed. Null: the device is only brought up
    /// (when <see cref="Up"/>) in the caller's namespace.
    /// </summary>
    public Action<string>? Setup { get; set; }
    /// <summary>Where <see cref="Setup"/> puts the device (a namespace's name or path), for display.</summary>
    public string? Netns { get; set; }
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

    /// <summary>
    /// Receive queues (IFF_MULTI_QUEUE, one fd each, opened before <see cref="Setup"/> moves the device: tun
    /// looks the name up in the namespace the fd is opened in). The namespace's kernel spreads its flows over
    /// them by flow hash (and tun's flow steering), each queue polled by one datapath thread. 1: a plain TAP.
    /// </summary>
    public int Queues { get; set; } = 1;
}
