using System.Buffers.Binary;
using System.Globalization;

namespace VSwitch.Core.Wire;

/// <summary>
/// Helpers for 48-bit Ethernet addresses held in the low bits of a <see cref="ulong"/>, first
/// octet most significant: cheap to compare, hash and store in table keys.
/// </summary>
public static class MacAddress
{
    public const ulong Broadcast = 0xFFFF_FFFF_FFFFUL;
    public const ulong Mask = 0xFFFF_FFFF_FFFFUL;

    public static ulong Read(ReadOnlySpan<byte> six) =>
        ((ulong)BinaryPrimitives.ReadUInt16BigEndian(six) << 32) | BinaryPrimitives.ReadUInt32BigEndian(six[2..]);

    public static void Write(Span<byte> six, ulong mac)
    {
        BinaryPrimitives.WriteUInt16BigEndian(six, (ushort)(mac >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(six[2..], (uint)mac);
    }

    /// <summary>Group bit (I/G) of the first octet: broadcast and multicast.</summary>
    public static bool IsMulticast(ulong mac) => ((mac >> 40) & 1) != 0;

    public static bool IsBroadcast(ulong mac) => mac == Broadcast;

    public static bool IsZero(ulong mac) => mac == 0;

    public static string Format(ulong mac) => string.Create(17, mac, static (span, m) =>
    {
        const string hex = "0123456789abcdef";
        for (int i = 0; i < 6; i++)
        {
            byte b = (byte)(m >> (40 - 8 * i));
            span[i * 3] = hex[b >> 4];
            span[i * 3 + 1] = hex[b & 15];
            if (i < 5) span[i * 3 + 2] = ':';
        }
    });

    public static bool TryParse(string? text, out ulong mac)
    {
        mac = 0;
        if (text is null) return false;
        var parts = text.Split(':', '-');
        if (parts.Length != 6) return false;
        foreach (var p in parts)
        {
            if (p.Length is < 1 or > 2 || !byte.TryParse(p, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte b))
                return false;
            mac = (mac << 8) | b;
        }
        return true;
    }

    public static ulong Parse(string text) =>
        TryParse(text, out ulong mac) ? mac : throw new FormatException($"'{text}' is not a MAC address (expected six hex octets like 02:00:00:00:00:01)");
}
