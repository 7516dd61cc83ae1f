using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace VSwitch.Core.Wire;

public readonly record struct UdpFields(ushort SourcePort, ushort DestinationPort);

/// <summary>A UDP datagram view (RFC 768). A checked view spans exactly the UDP length.</summary>
public readonly ref struct UdpHeader
{
    private const MethodImplOptions Inline = MethodImplOptions.AggressiveInlining;
    public const int HeaderLength = 8;

    private static class Field
    {
        public const int SourcePort = 0;
        public const int DestinationPort = 2;
        public const int Length = 4;
        public const int Checksum = 6;
    }

    private readonly Span<byte> _b;

    private UdpHeader(Span<byte> buffer) => _b = buffer;

    public static bool TryCreate(Span<byte> buffer, out UdpHeader view) => TryCreate(buffer, out view, out _);

    public static bool TryCreate(Span<byte> buffer, out UdpHeader view, out ParseError reason)
    {
        view = default;
        if (buffer.Length < HeaderLength) { reason = ParseError.TruncatedUdp; return false; }
        int length = BinaryPrimitives.ReadUInt16BigEndian(buffer[Field.Length..]);
        if (length < HeaderLength || length > buffer.Length) { reason = ParseError.BadUdpLength; return false; }
        view = new UdpHeader(buffer[..length]);
        reason = ParseError.None;
        return true;
    }

    /// <summary>Writes the header with a zero ("none") checksum; fill it once the payload is in place.</summary>
    public static UdpHeader Write(Span<byte> buffer, in UdpFields f, int payloadLength)
    {
        var v = new UdpHeader(buffer[..(HeaderLength + payloadLength)]);
        v.SourcePort = f.SourcePort;
        v.DestinationPort = f.DestinationPort;
        v.Length = (ushort)(HeaderLength + payloadLength);
        v.Checksum = 0;
        return v;
    }

    public Span<byte> Buffer => _b;
    public Span<byte> Payload => _b[HeaderLength..];

    public ushort SourcePort { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.SourcePort..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.SourcePort..], value); }
    public ushort DestinationPort { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.DestinationPort..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.DestinationPort..], value); }
    public ushort Length { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.Length..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.Length..], value); }
    public ushort Checksum { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.Checksum..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.Checksum..], value); }

    public void FillChecksum(uint source, uint destination) =>
        Checksum = NonZero(ComputeWithZeroField(Wire.Checksum.PseudoHeaderIPv4(source, destination, IpProtocols.Udp, _b.Length)));

    public void FillChecksum(UInt128 source, UInt128 destination) =>
        Checksum = NonZero(ComputeWithZeroField(Wire.Checksum.PseudoHeaderIPv6(source, destination, IpProtocols.Udp, _b.Length)));

    /// <summary>A zero checksum over IPv4 means "not computed" and passes.</summary>
    public bool VerifyChecksum(uint source, uint destination) =>
        Checksum == 0 || Wire.Checksum.Verify(_b, Wire.Checksum.PseudoHeaderIPv4(source, destination, IpProtocols.Udp, _b.Length));

    /// <summary>Over IPv6 the checksum is mandatory (RFC 8200 §8.1).</summary>
    public bool VerifyChecksum(UInt128 source, UInt128 destination) =>
        Checksum != 0 && Wire.Checksum.Verify(_b, Wire.Checksum.PseudoHeaderIPv6(source, destination, IpProtocols.Udp, _b.Length));

    private ushort ComputeWithZeroField(ushort pseudo)
    {
        Checksum = 0;
        return Wire.Checksum.Compute(_b, pseudo);
    }

    // A computed 0 is sent as all ones: 0 on the wire means "no checksum" (RFC 768).
    private static ushort NonZero(ushort c) => c == 0 ? (ushort)0xFFFF : c;

    public UdpFields ToFields() => new(SourcePort, DestinationPort);
}
