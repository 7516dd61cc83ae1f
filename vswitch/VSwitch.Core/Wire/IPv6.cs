using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace VSwitch.Core.Wire;

public readonly record struct IPv6Fields(byte TrafficClass, uint FlowLabel, byte NextHeader, byte HopLimit, UInt128 Source, UInt128 Destination);

/// <summary>
/// An IPv6 fixed header view (RFC 8200). A checked view spans the header plus the payload length,
/// so trailing padding is excluded. Addresses are read big-endian as 128-bit numbers.
/// </summary>
public readonly ref struct IPv6Header
{
    private const MethodImplOptions Inline = MethodImplOptions.AggressiveInlining;
    public const int HeaderLength = 40;

    private static class Field
    {
        public const int VersionClassFlow = 0;
        public const int PayloadLength = 4;
        public const int NextHeader = 6;
        public const int HopLimit = 7;
        public const int Source = 8;
        public const int Destination = 24;
    }

    private readonly Span<byte> _b;

    private IPv6Header(Span<byte> buffer) => _b = buffer;

    public static bool TryCreate(Span<byte> buffer, out IPv6Header view) => TryCreate(buffer, out view, out _);

    public static bool TryCreate(Span<byte> buffer, out IPv6Header view, out ParseError reason)
    {
        view = default;
        if (buffer.Length < HeaderLength) { reason = ParseError.TruncatedIPv6; return false; }
        if (buffer[0] >> 4 != 6) { reason = ParseError.BadIpVersion; return false; }
        int payload = BinaryPrimitives.ReadUInt16BigEndian(buffer[Field.PayloadLength..]);
        if (HeaderLength + payload > buffer.Length) { reason = ParseError.BadIPv6PayloadLength; return false; }
        view = new IPv6Header(buffer[..(HeaderLength + payload)]);
        reason = ParseError.None;
        return true;
    }

    public static IPv6Header Write(Span<byte> buffer, in IPv6Fields f, int payloadLength)
    {
        var v = new IPv6Header(buffer[..(HeaderLength + payloadLength)]);
        BinaryPrimitives.WriteUInt32BigEndian(v._b, (6u << 28) | ((uint)f.TrafficClass << 20) | (f.FlowLabel & 0xFFFFF));
        v.PayloadLength = (ushort)payloadLength;
        v.NextHeader = f.NextHeader;
        v.HopLimit = f.HopLimit;
        v.Source = f.Source;
        v.Destination = f.Destination;
        return v;
    }

    public Span<byte> Buffer => _b;
    public Span<byte> Payload => _b[HeaderLength..];

    private uint VersionClassFlow { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt32BigEndian(_b); }
    public byte Version { [MethodImpl(Inline)] get => (byte)(_b[0] >> 4); }
    public byte TrafficClass { [MethodImpl(Inline)] get => (byte)(VersionClassFlow >> 20); }
    public uint FlowLabel { [MethodImpl(Inline)] get => VersionClassFlow & 0xFFFFF; }
    public ushort PayloadLength { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.PayloadLength..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.PayloadLength..], value); }
    public byte NextHeader { [MethodImpl(Inline)] get => _b[Field.NextHeader]; [MethodImpl(Inline)] set => _b[Field.NextHeader] = value; }
    public byte HopLimit { [MethodImpl(Inline)] get => _b[Field.HopLimit]; [MethodImpl(Inline)] set => _b[Field.HopLimit] = value; }
    public UInt128 Source { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt128BigEndian(_b[Field.Source..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt128BigEndian(_b[Field.Source..], value); }
    public UInt128 Destination { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt128BigEndian(_b[Field.Destination..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt128BigEndian(_b[Field.Destination..], value); }

    public IPv6Fields ToFields() => new(TrafficClass, FlowLabel, NextHeader, HopLimit, Source, Destination);
}

/// <summary>
/// The IPv6 extension headers a switch must step over to find the upper-layer protocol
/// (hop-by-hop, routing, destination options, fragment; RFC 8200 §4).
/// </summary>
public static class IPv6Extensions
{
    public const byte HopByHop = 0;
    public const byte Routing = 43;
    public const byte Fragment = 44;
    public const byte NoNextHeader = 59;
    public const byte DestinationOptions = 60;
    public const int FragmentHeaderLength = 8;
    /// <summary>Chains longer than this are not walked: a bound on work per packet.</summary>
    public const int MaxHeaders = 8;

    public static bool IsExtension(byte nextHeader) =>
        nextHeader is HopByHop or Routing or Fragment or DestinationOptions;

    /// <summary>
    /// Steps over extension headers starting at <paramref name="payload"/> (the IPv6 payload).
    /// On return <paramref name="protocol"/> is the first header that is not walked and
    /// <paramref name="upperLayerOffset"/> its offset in <paramref name="payload"/>;
    /// <paramref name="fragment"/> is 0 when unfragmented, 1 first fragment, 2 later fragment
    /// (the walk stops there: a later fragment holds no upper-layer header).
    /// Returns false when a header runs past the payload.
    /// </summary>
    public static bool Walk(ReadOnlySpan<byte> payload, byte nextHeader, out byte protocol, out int upperLayerOffset, out byte fragment)
    {
        int offset = 0;
        fragment = 0;
        protocol = nextHeader;
        upperLayerOffset = 0;
        for (int i = 0; i < MaxHeaders && IsExtension(nextHeader); i++)
        {
            var rest = payload[offset..];
            int length;
            if (nextHeader == Fragment)
            {
                if (rest.Length < FragmentHeaderLength) return false;
                ushort offsetFlags = BinaryPrimitives.ReadUInt16BigEndian(rest[2..]);
                int fragOffset = offsetFlags >> 3;
                if (fragOffset != 0 || (offsetFlags & 1) != 0) fragment = fragOffset == 0 ? (byte)1 : (byte)2;
                length = FragmentHeaderLength;
            }
            else
            {
                if (rest.Length < 2) return false;
                length = (rest[1] + 1) * 8;
                if (length > rest.Length) return false;
            }
            nextHeader = rest[0];
            offset += length;
            if (fragment == 2) break;
        }
        protocol = nextHeader;
        upperLayerOffset = offset;
        return true;
    }
}
