using System.Buffers.Binary;
using VSwitch.Core.Buffers;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Pipeline;

// Temporary L2-only classifier; replaced by the full one from the wire branch.
public static class Classify
{
    public static DropReason Extract(Packet p) => Extract(p.Data, p.InPort, ref p.Key);

    public static DropReason Extract(ReadOnlySpan<byte> frame, int inPort, ref FlowKey key)
    {
        key = default;
        key.InPort = (ushort)inPort;
        if (frame.Length < 14) return DropReason.RuntFrame;
        key.DlDst = MacAddress.Read(frame);
        key.DlSrc = MacAddress.Read(frame[6..]);
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        if (type == EtherTypes.Vlan)
        {
            if (frame.Length < 18) return DropReason.TruncatedVlan;
            ushort tci = BinaryPrimitives.ReadUInt16BigEndian(frame[14..]);
            key.VlanId = (ushort)(tci & 0xFFF);
            key.VlanPcp = (byte)(FlowKey.VlanPresentBit | (tci >> 13));
            type = BinaryPrimitives.ReadUInt16BigEndian(frame[16..]);
        }
        key.DlType = type;
        return DropReason.None;
    }
}
