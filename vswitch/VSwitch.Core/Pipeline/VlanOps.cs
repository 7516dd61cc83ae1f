using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// Port VLAN modes at the edges of the switch. Frames are carried inside the switch untagged,
/// with their VLAN in <see cref="Packet.Vlan"/>: the ingress port's mode decides that VLAN and
/// removes the tag; the egress port's mode tags the frame again (trunks) or not (access ports).
/// </summary>
public static class VlanOps
{
    /// <summary>Applies the ingress port's VLAN mode: sets the frame's VLAN and removes its tag.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DropReason Ingress(Packet p, SwitchPort port)
    {
        ref readonly var key = ref p.Key;
        bool tagged = key.HasVlan;
        ushort vid = key.VlanId;
        if (port.Mode == VlanMode.Access)
        {
            // A priority tag (802.1p: an 802.1Q tag with VID 0, alone) on an access port is untagged
            // traffic with a priority. Anything else tagged, an S-tag or a tag under the priority tag
            // included, is refused: it would otherwise leak into a VLAN this port is not on.
            if (tagged && (vid != 0 || key.VlanQinQ != 0)) return DropReason.TaggedOnAccessPort;
            p.Vlan = port.AccessVlan;
        }
        else
        {
            // Without QinQ support a second tag (or an 802.1ad S-tag) must not be re-emitted as an
            // 802.1Q tag of some VLAN: refuse it rather than translate it.
            if (key.VlanQinQ != 0) return DropReason.QinqUnsupported;
            ushort vlan = tagged && vid != 0 ? vid : port.NativeVlan;
            if (!port.Carries(vlan)) return DropReason.VlanNotAllowed;
            p.Vlan = vlan;
        }
        if (tagged) PopTag(p);
        return DropReason.None;
    }

    /// <summary>The VLAN a frame with this key gets on this port, without touching the frame (trace).</summary>
    public static ushort IngressVlan(in FlowKey key, SwitchPort port) =>
        port.Mode == VlanMode.Access ? port.AccessVlan : key.HasVlan && key.VlanId != 0 ? key.VlanId : port.NativeVlan;

    /// <summary>Removes the outer 4-byte tag: moves the two addresses forward over it (12 bytes, no frame copy).</summary>
    public static void PopTag(Packet p)
    {
        var d = p.Data;
        d[..12].CopyTo(d.Slice(4, 12));
        p.TrimFront(4);
    }

    /// <summary>Inserts an 802.1Q tag after the addresses, into the headroom.</summary>
    public static void PushTag(Packet p, ushort vlan, byte pcp)
    {
        p.Prepend(4);
        var d = p.Data;
        d.Slice(4, 12).CopyTo(d[..12]);
        BinaryPrimitives.WriteUInt16BigEndian(d[12..], EtherTypes.Vlan);
        BinaryPrimitives.WriteUInt16BigEndian(d[14..], (ushort)((pcp & 7) << 13 | (vlan & 0xFFF)));
    }
}
