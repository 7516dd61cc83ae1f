namespace VSwitch.Core.Ports;

/// <summary>How to attach an existing interface (see <see cref="AfPacketPort.Open"/>).</summary>
public sealed class AfPacketOptions
{
    /// <summary>
    /// 68 KiB: a 64 KiB GSO super-frame (IP total length ≤ 65535, plus Ethernet and a VLAN tag)
    /// with the tpacket2 header, the sockaddr_ll and the virtio header in front, rounded to pages.
    /// A smaller frame truncates GSO frames (counted as <see cref="AfPacketPort.RxTruncated"/>);
    /// 2048 is fine when the peer's offloads are off (ethtool -K DEV tso off gso off tx off).
    /// </summary>
    public const int DefaultRingFrameSize = 68 * 1024;

    /// <summary>120 frames × 68 KiB ≈ 8 MiB of ring (8 blocks of 15 frames, each block one 1 MiB allocation).</summary>
    public const int DefaultRingFrameCount = 120;

    /// <summary>The interface to attach, in the caller's namespace (the root end of a veth, a NIC).</summary>
    public string Interface { get; set; } = "";
    /// <summary>Size of one receive-ring slot: a multiple of 16; a multiple of the page size or a power of two keeps blocks tight.</summary>
    public int RingFrameSize { get; set; } = DefaultRingFrameSize;
    /// <summary>Number of receive-ring slots (rounded up to whole blocks).</summary>
    public int RingFrameCount { get; set; } = DefaultRingFrameCount;
    /// <summary>Receive frames for every destination MAC (a switch port must).</summary>
    public bool Promiscuous { get; set; } = true;

    /// <summary>
    /// Receive queues: this many sockets, each with its own ring, joined to one PACKET_FANOUT group in hash
    /// mode (a flow's frames always reach the same socket, so a flow is never reordered), each polled by one
    /// datapath thread. 1: one socket, no fanout.
    /// </summary>
    public int Queues { get; set; } = 1;
}
