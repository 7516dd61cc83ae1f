using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace VSwitch.Core.Wire;

/// <summary>
/// The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
/// A "sum" here is the folded 16-bit one's-complement sum, not yet complemented; the checksum
/// written in a header is its complement. Sums chain: pass one as <c>initial</c> of the next.
/// </summary>
public static class Checksum
{
    /// <summary>One's-complement sum of <paramref name="data"/> (odd tail padded with a zero byte), folded to 16 bits.</summary>
    public static ushort Sum(ReadOnlySpan<byte> data, ushort initial = 0)
    {
        // RFC 1071 §2(B): the sum is byte-order independent, so add the data as little-endian
        // 32-bit words (no swap per word) and swap the folded result once. 32-bit words into 64-bit
        // accumulators: 2^32 ≡ 2^16 ≡ 1 (mod 0xFFFF), so folding at the end is exact. Long buffers
        // (software GSO and GRO sum every 64 KB super-frame) go 32 bytes at a time in vectors.
        int i = 0, n = data.Length;
        ref byte b = ref MemoryMarshal.GetReference(data);
        ulong acc = BinaryPrimitives.ReverseEndianness(initial);
        if (Vector256.IsHardwareAccelerated && n >= 64)
        {
            Vector256<ulong> a0 = Vector256<ulong>.Zero, a1 = Vector256<ulong>.Zero;
            for (; i + 32 <= n; i += 32)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref b, (nuint)i).AsUInt32());
                a0 += lo;
                a1 += hi;
            }
            // Each lane took at most n/32 words of < 2^32: no overflow below 2^32 * 32 bytes.
            var t = a0 + a1;
            acc += Fold(t[0]) + (ulong)Fold(t[1]) + Fold(t[2]) + Fold(t[3]);
        }
        for (; i + 16 <= n; i += 16)
        {
            acc += Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref b, i));
            acc += Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref b, i + 4));
            acc += Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref b, i + 8));
            acc += Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref b, i + 12));
        }
        for (; i + 4 <= n; i += 4) acc += Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref b, i));
        if (i + 2 <= n) { acc += Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref b, i)); i += 2; }
        if (i < n) acc += data[i]; // the odd byte is the high byte of a big-endian word: low here
        return BinaryPrimitives.ReverseEndianness(Fold(acc));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Fold(ulong acc)
    {
        acc = (acc & 0xFFFF_FFFF) + (acc >> 32);
        acc = (acc & 0xFFFF_FFFF) + (acc >> 32);
        uint s = (uint)acc;
        s = (s & 0xFFFF) + (s >> 16);
        s = (s & 0xFFFF) + (s >> 16);
        return (ushort)s;
    }

    /// <summary>The checksum to store for <paramref name="data"/> (whose checksum field must be zero).</summary>
    public static ushort Compute(ReadOnlySpan<byte> data, ushort initial = 0) => (ushort)~Sum(data, initial);

    /// <summary>True when data including its stored checksum sums to 0xFFFF (all ones).</summary>
    public static bool Verify(ReadOnlySpan<byte> data, ushort initial = 0) => Sum(data, initial) == 0xFFFF;

    /// <summary>RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), for one 16-bit word changing from m to m'.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Update(ushort checksum, ushort oldValue, ushort newValue) =>
        (ushort)~Fold((ulong)(ushort)~checksum + (ushort)~oldValue + newValue);

    /// <summary>RFC 1624 for a 32-bit field (an IPv4 address, a TCP sequence number).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Update(ushort checksum, uint oldValue, uint newValue) =>
        (ushort)~Fold((ulong)(ushort)~checksum
            + (ushort)~(oldValue >> 16) + (ushort)~oldValue
            + (newValue >> 16) + (newValue & 0xFFFF));

    /// <summary>Header checksum of an IPv4 header, computed as if its checksum field were zero.</summary>
    public static ushort IPv4Header(ReadOnlySpan<byte> header)
    {
        ushort stored = BinaryPrimitives.ReadUInt16BigEndian(header[10..]);
        // Subtracting the stored field (adding its complement) is cheaper than copying the header.
        return (ushort)~Fold((ulong)Sum(header) + (ushort)~stored);
    }

    public static bool VerifyIPv4Header(ReadOnlySpan<byte> header) => Verify(header);

    /// <summary>Sum of the IPv4 pseudo-header (RFC 793/768) for a transport segment of <paramref name="length"/> bytes.</summary>
    public static ushort PseudoHeaderIPv4(uint source, uint destination, byte protocol, int length) =>
        Fold((ulong)(source >> 16) + (source & 0xFFFF) + (destination >> 16) + (destination & 0xFFFF) + protocol + (uint)length);

    /// <summary>Sum of the IPv6 pseudo-header (RFC 8200 §8.1).</summary>
    public static ushort PseudoHeaderIPv6(UInt128 source, UInt128 destination, byte nextHeader, int length)
    {
        ulong acc = Words(source) + Words(destination) + (uint)length + nextHeader;
        return Fold(acc);

        static ulong Words(UInt128 a) => (ulong)(a >> 96) + (uint)(a >> 64) + (uint)(a >> 32) + (uint)a;
    }

    /// <summary>Checksum to store for a TCP/UDP/ICMPv6 segment over IPv4 (checksum field zero).</summary>
    public static ushort TransportIPv4(uint source, uint destination, byte protocol, ReadOnlySpan<byte> segment) =>
        Compute(segment, PseudoHeaderIPv4(source, destination, protocol, segment.Length));

    public static ushort TransportIPv6(UInt128 source, UInt128 destination, byte nextHeader, ReadOnlySpan<byte> segment) =>
        Compute(segment, PseudoHeaderIPv6(source, destination, nextHeader, segment.Length));
}
