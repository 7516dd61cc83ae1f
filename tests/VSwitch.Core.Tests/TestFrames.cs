using System.Buffers.Binary;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Tests;

/// <summary>Small frames for bridge tests: Ethernet (optionally 802.1Q-tagged) with an IPv4-looking payload.</summary>
internal static class TestFrames
{
    public static byte[] Eth(ulong dst, ulong src, ushort? vlan = null, int payload = 46, ushort type = 0x88B5, byte pcp = 0)
    {
        int tag = vlan.HasValue ? 4 : 0;
        var f = new byte[14 + tag + payload];
        MacAddress.Write(f, dst);
        MacAddress.Write(f.AsSpan(6), src);
        if (vlan.HasValue)
        {
            BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), 0x8100);
            BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(14), (ushort)(pcp << 13 | vlan.Value));
        }
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12 + tag), type);
        for (int i = 14 + tag; i < f.Length; i++) f[i] = (byte)(i - tag);
        return f;
    }

    public static ushort? VlanOf(byte[] f) =>
        BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(12)) == 0x8100 ? (ushort)(BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(14)) & 0xFFF) : null;

    public static ulong Mac(int n) => 0x02_00_00_00_00_00UL | (uint)n;
}
