using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;

namespace VSwitch.Overlay.Wire;

/// <summary>
/// VXLAN encapsulation on a pooled packet, in place: the header goes into the packet's headroom on
/// the way out and is trimmed off on the way in, so the inner frame is never copied. VxlanPort and
/// the benchmarks both call these, so a benchmark measures the code that forwards.
/// </summary>
public static class VxlanCodec
{
    /// <summary>
    /// Prepends the VXLAN header with the packet's <see cref="Packet.TunnelId"/> as VNI. False (and the
    /// packet untouched) when the packet has no headroom for it.
    /// </summary>
    public static bool Encapsulate(Packet p)
    {
        if (p.Headroom < VxlanHeader.HeaderLength) return false;
        VxlanHeader.Write(p.Prepend(VxlanHeader.HeaderLength), p.TunnelId);
        return true;
    }

    /// <summary>
    /// Checks the VXLAN header at the start of the packet, sets <see cref="Packet.TunnelId"/> from its
    /// VNI and trims it, leaving the inner frame. A bad header leaves the packet as it was and says why.
    /// </summary>
    public static DropReason Decapsulate(Packet p)
    {
        if (!VxlanHeader.TryCreate(p.Data, out var vx, out var reason)) return reason;
        p.TunnelId = vx.Vni;
        p.TrimFront(VxlanHeader.HeaderLength);
        return DropReason.None;
    }
}
