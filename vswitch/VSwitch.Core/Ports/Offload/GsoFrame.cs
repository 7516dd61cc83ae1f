using VSwitch.Core.Buffers;
using VSwitch.Core.Ports.Linux;

namespace VSwitch.Core.Ports.Offload;

/// <summary>
/// TCP super-frames kept whole inside the switch (what the kernel calls a GSO skb, OVS a TSO
/// packet). A port that reads frames behind a virtio-net header hands a TCP GSO frame over as one
/// 64 KiB packet from the large pool, marked with <see cref="Packet.GsoSize"/> and
/// <see cref="Packet.GsoType"/>; the pipeline classifies and switches it once, and:
/// <list type="bullet">
/// <item>a port that takes virtio headers (TAP with offloads, AF_PACKET) writes it whole with a GSO
/// header rebuilt here (the kernel of the receiving namespace, or the veth, segments if it must);</item>
/// <item>any other port (TAP without offloads, VXLAN, memory) gets it cut into MSS-sized frames
/// with full checksums by <see cref="TcpSegmenter"/> on the way out (software GSO), in
/// <see cref="Pipeline.DatapathContext.Enqueue"/>.</item>
/// </list>
/// Only TCP GSO with a partial checksum is kept whole (that is all a Linux sender produces for a
/// TAP or veth with TSO); anything else is segmented or dropped on receive as before.
/// The header offsets are not carried: they are found again on transmit, because VLAN push/pop
/// moves them.
/// </summary>
public static class GsoFrame
{
    /// <summary>TCP's checksum field, counted from the start of the TCP header.</summary>
    public const int TcpChecksumOffset = 16;

    /// <summary>
    /// True when a frame that came with <paramref name="vnet"/> is a TCP GSO super-frame the switch
    /// can carry whole: TCPV4/TCPV6 (ECN allowed), a partial checksum on the TCP header, an MSS,
    /// and headers that parse. <paramref name="csumStart"/> is the checksum start as seen in
    /// <paramref name="frame"/> (after any VLAN tag put back).
    /// </summary>
    public static bool CanKeepWhole(in VirtioNetHdr vnet, int csumStart, ReadOnlySpan<byte> frame)
    {
        int gso = vnet.GsoType & ~VirtioNetHdr.GSO_ECN;
        if (gso is not (VirtioNetHdr.GSO_TCPV4 or VirtioNetHdr.GSO_TCPV6)) return false;
        if ((vnet.Flags & VirtioNetHdr.F_NEEDS_CSUM) == 0 || vnet.GsoSize == 0) return false;
        if (!TcpSegmenter.TryParse(frame, vnet.GsoSize, out var l)) return false;
        return l.IsIPv6 == (gso == VirtioNetHdr.GSO_TCPV6) && csumStart == l.L4Offset && vnet.CsumOffset == TcpChecksumOffset;
    }

    /// <summary>Marks a packet holding a frame that passed <see cref="CanKeepWhole"/>.</summary>
    public static void Mark(Packet p, in VirtioNetHdr vnet)
    {
        p.GsoSize = vnet.GsoSize;
        p.GsoType = vnet.GsoType;
    }

    /// <summary>
    /// The virtio header to write in front of <paramref name="p"/>: zero for an ordinary frame, the
    /// GSO request for a super-frame. False when a super-frame's headers no longer parse (the
    /// caller drops it).
    /// </summary>
    public static bool TryBuildHeader(Packet p, out VirtioNetHdr h)
    {
        h = default;
        if (p.GsoSize == 0) return true;
        if (!TcpSegmenter.TryParse(p.Data, p.GsoSize, out var l)) return false;
        h.Flags = VirtioNetHdr.F_NEEDS_CSUM;
        h.GsoType = p.GsoType;
        h.GsoSize = p.GsoSize;
        h.HdrLen = (ushort)l.HeaderLength;
        h.CsumStart = (ushort)l.L4Offset;
        h.CsumOffset = TcpChecksumOffset;
        return true;
    }

    /// <summary>
    /// The IP length of the largest segment a super-frame stands for (what an MTU check must look
    /// at, as the kernel's skb_gso_validate_network_len does); the frame's own length otherwise.
    /// </summary>
    public static int NetworkLength(Packet p, int l2Length)
    {
        if (p.GsoSize != 0 && TcpSegmenter.TryParse(p.Data, p.GsoSize, out var l))
            return l.MaxSegmentLength - l.L3Offset;
        return p.Length - l2Length;
    }
}
