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

    /// <summary>
    /// Where the kernel puts a frame in its slot (tpacket_rcv, TPACKET_V2 with PACKET_VNET_HDR): the 32-byte
    /// tpacket2 header and the 20-byte sockaddr_ll, then room for at least 16 bytes of link header, aligned to 16
    /// (80), then the 10-byte virtio header; the Ethernet header ends there, so it starts 76 bytes into the slot.
    /// </summary>
    public const int FrameOffset = 76;

    /// <summary>A full-size Ethernet frame (1514 bytes, 1518 tagged, which the kernel hands over untagged) behind <see cref="FrameOffset"/>, rounded up to 16.</summary>
    public const int MinRingFrameSize = 1600;

    /// <summary>No frame is bigger than a 64 KiB GSO super-frame: slots above 128 KiB would only waste memory.</summary>
    public const int MaxRingFrameSize = 128 * 1024;

    /// <summary>Fewer slots than a batch or two is no ring.</summary>
    public const int MinRingFrameCount = 8;

    /// <summary>A ring (one per receive queue) is pinned kernel memory: at most 256 MiB each.</summary>
    public const long MaxRingBytes = 256L << 20;

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

    /// <summary>The largest frame a slot of <paramref name="frameSize"/> bytes holds whole; a longer one is truncated and dropped (rx-truncated).</summary>
    public static int LargestFrame(int frameSize) => frameSize - FrameOffset;

    /// <summary>
    /// Why a ring of <paramref name="frames"/> slots of <paramref name="frameSize"/> bytes cannot be, naming the bad value
    /// under the caller's field names ("frameSize: 1000 must be ..."), or null. The config file, the API and
    /// <see cref="AfPacketPort.Open"/> all check through here.
    /// </summary>
    public static string? RingError(int frames, int frameSize, string framesField = "ring frames", string frameSizeField = "frame size")
    {
        if (frameSize is < MinRingFrameSize or > MaxRingFrameSize || frameSize % 16 != 0)
            return $"{frameSizeField}: {frameSize} must be a multiple of 16, {MinRingFrameSize}..{MaxRingFrameSize} "
                + $"({MinRingFrameSize} holds a 1514-byte frame; {DefaultRingFrameSize} a 64 KiB GSO super-frame)";
        if (frames < MinRingFrameCount) return $"{framesField}: {frames} must be at least {MinRingFrameCount}";
        if ((long)frames * frameSize > MaxRingBytes)
            return $"{framesField}: {frames} slots of {frameSize} bytes is {(long)frames * frameSize >> 20} MiB; a ring may have at most "
                + $"{MaxRingBytes >> 20} MiB ({MaxRingBytes / frameSize} slots of {frameSize})";
        return null;
    }

    /// <summary>Why these options cannot work, naming the bad value, or null.</summary>
    public string? Validate()
    {
        if (string.IsNullOrEmpty(Interface)) return "the interface is empty";
        if (Queues is < 1 or > 64) return $"queues: {Queues} must be 1..64";
        return RingError(RingFrameCount, RingFrameSize);
    }
}
