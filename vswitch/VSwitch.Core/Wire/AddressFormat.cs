using System.Globalization;
using System.Net;

namespace VSwitch.Core.Wire;

/// <summary>
/// Text forms of addresses as they sit in flow keys and tables (IPv4 as a host-order uint, IPv6 as
/// a big-endian UInt128): for the API, traces and logs, never the hot path (it allocates).
/// </summary>
public static class AddressFormat
{
    public static string IPv4(uint a) =>
        string.Create(CultureInfo.InvariantCulture, $"{a >> 24}.{(a >> 16) & 0xFF}.{(a >> 8) & 0xFF}.{a & 0xFF}");

    /// <summary>An address in the flow key's convention: IPv4 in the low 32 bits (host order), IPv6 filling the 128.</summary>
    public static UInt128 ToKey(IPAddress ip)
    {
        Span<byte> b = stackalloc byte[16];
        if (!ip.TryWriteBytes(b, out int n)) throw new ArgumentException($"'{ip}' is not an IPv4 or IPv6 address", nameof(ip));
        return n == 4 ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b) : System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(b);
    }

    public static string IPv6(UInt128 a)
    {
        Span<byte> bytes = stackalloc byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(bytes, a);
        return new IPAddress(bytes).ToString();
    }
}
