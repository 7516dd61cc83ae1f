using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace VSwitch.Core.Ports.Offload;

/// <summary>
/// The RFC 1071 ones-complement sum, private to the offload code for now (Wire/Checksum.cs is being
/// written alongside; the two will be unified). Sums are carried in a 64-bit accumulator and folded
/// once at the end.
/// </summary>
public static class InternetChecksum
{
    /// <summary>Adds the bytes, as big-endian 16-bit words (an odd last byte is padded with zero), to <paramref name="acc"/>.</summary>
    public static ulong Add(ReadOnlySpan<byte> data, ulong acc = 0)
    {
        // Sum 32-bit big-endian words: each word adds two 16-bit words at once; carries land in
        // the upper bits of the 64-bit accumulator and are folded at the end.
        int i = 0;
        ref byte b = ref MemoryMarshal.GetReference(data);
        int n = data.Length;
        for (; i + 16 <= n; i += 16)
        {
            acc += BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref b, i)));
            acc += BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref b, i + 4)));
            acc += BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref b, i + 8)));
            acc += BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref b, i + 12)));
        }
        for (; i + 4 <= n; i += 4)
            acc += BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref b, i)));
        for (; i + 2 <= n; i += 2)
            acc += (uint)(Unsafe.Add(ref b, i) << 8 | Unsafe.Add(ref b, i + 1));
        if (i < n) acc += (uint)Unsafe.Add(ref b, i) << 8;
        return acc;
    }

    public static ulong Add16(ulong acc, ushort value) => acc + value;

    /// <summary>Folds the accumulator to 16 bits (not complemented).</summary>
    public static ushort Fold(ulong acc)
    {
        acc = (acc & 0xFFFF_FFFF) + (acc >> 32);
        acc = (acc & 0xFFFF_FFFF) + (acc >> 32);
        acc = (acc & 0xFFFF) + (acc >> 16);
        acc = (acc & 0xFFFF) + (acc >> 16);
        acc = (acc & 0xFFFF) + (acc >> 16);
        return (ushort)acc;
    }

    /// <summary>The checksum field value: the complement of the folded sum.</summary>
    public static ushort Finish(ulong acc) => (ushort)~Fold(acc);

    /// <summary>Checksum of a block (an IPv4 header with its checksum field zeroed).</summary>
    public static ushort Compute(ReadOnlySpan<byte> data) => Finish(Add(data));

    /// <summary>True when a block including its checksum field sums to all ones.</summary>
    public static bool IsValid(ReadOnlySpan<byte> data) => Fold(Add(data)) == 0xFFFF;

    /// <summary>The TCP/UDP pseudo-header sum for IPv4 (addresses from the IPv4 header).</summary>
    public static ulong PseudoHeaderV4(ReadOnlySpan<byte> ipv4Header, byte protocol, int l4Length)
    {
        ulong acc = Add(ipv4Header.Slice(12, 8));
        return acc + protocol + (uint)l4Length;
    }

    /// <summary>The TCP/UDP pseudo-header sum for IPv6 (addresses from the fixed IPv6 header).</summary>
    public static ulong PseudoHeaderV6(ReadOnlySpan<byte> ipv6Header, byte nextHeader, int l4Length)
    {
        ulong acc = Add(ipv6Header.Slice(8, 32));
        return acc + nextHeader + (uint)l4Length;
    }
}
