using System.Buffers.Binary;
using System.Net;
using VSwitch.Core.Wire;

namespace VSwitch.Integration.Tests;

/// <summary>Just enough ARP to answer a request in a test.</summary>
public static class Arp
{
    public static bool IsRequest(ReadOnlySpan<byte> f, IPAddress target, out ulong senderMac, out uint senderIp)
    {
        senderMac = 0; senderIp = 0;
        if (f.Length < 42 || BinaryPrimitives.ReadUInt16BigEndian(f[12..]) != 0x0806) return false;
        var a = f[14..];
        if (BinaryPrimitives.ReadUInt16BigEndian(a[6..]) != 1) return false;
        if (!a.Slice(24, 4).SequenceEqual(target.GetAddressBytes())) return false;
        senderMac = MacAddress.Read(a[8..]);
        senderIp = BinaryPrimitives.ReadUInt32BigEndian(a[14..]);
        return true;
    }

    /// <summary>Writes a 42-byte ARP reply "ip is at mac" to (toMac, toIp); returns its length.</summary>
    public static int WriteReply(Span<byte> f, ulong mac, IPAddress ip, ulong toMac, uint toIp)
    {
        MacAddress.Write(f, toMac);
        MacAddress.Write(f[6..], mac);
        BinaryPrimitives.WriteUInt16BigEndian(f[12..], 0x0806);
        var a = f[14..];
        BinaryPrimitives.WriteUInt16BigEndian(a, 1);
        BinaryPrimitives.WriteUInt16BigEndian(a[2..], 0x0800);
        a[4] = 6; a[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(a[6..], 2);
        MacAddress.Write(a[8..], mac);
        ip.GetAddressBytes().CopyTo(a[14..]);
        MacAddress.Write(a[18..], toMac);
        BinaryPrimitives.WriteUInt32BigEndian(a[24..], toIp);
        return 42;
    }
}
