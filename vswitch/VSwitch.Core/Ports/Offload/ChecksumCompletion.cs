using System.Buffers.Binary;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Ports.Offload;

/// <summary>
/// Completes a partial checksum (the kernel's CHECKSUM_PARTIAL, virtio's NEEDS_CSUM): the field at
/// csum_start + csum_offset already holds the pseudo-header sum; the sender left the rest to the
/// device. We are the device: sum from csum_start to the end and store the complement.
/// </summary>
public static class ChecksumCompletion
{
    /// <summary>
    /// Completes the checksum in place. Returns false (and leaves the frame alone) when the offsets
    /// do not fit inside the frame.
    /// </summary>
    public static bool TryComplete(Span<byte> frame, int csumStart, int csumOffset)
    {
        int field = csumStart + csumOffset;
        if (csumStart < 0 || csumOffset < 0 || field + 2 > frame.Length) return false;
        ushort sum = Checksum.Compute(frame[csumStart..]);
        // As the kernel does (skb_checksum_help): a computed 0 is sent as 0xFFFF, which means
        // the same in ones-complement and is required for UDP, where 0 means "no checksum".
        if (sum == 0) sum = 0xFFFF;
        BinaryPrimitives.WriteUInt16BigEndian(frame.Slice(field, 2), sum);
        return true;
    }
}
