using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace VSwitch.Core.Wire;

public readonly record struct IcmpFields(byte Type, byte Code, uint RestOfHeader);

/// <summary>An ICMPv4 message view (RFC 792): type, code, checksum, 4 bytes that depend on the type, then data.</summary>
public readonly ref struct IcmpHeader
{
    private const MethodImplOptions Inline = MethodImplOptions.AggressiveInlining;
    public const int HeaderLength = 8;
    public const byte EchoReply = 0;
    public const byte DestinationUnreachable = 3;
    public const byte EchoRequest = 8;
    public const byte TimeExceeded = 11;

    private static class Field
    {
        public const int Type = 0;
        public const int Code = 1;
        public const int Checksum = 2;
        public const int RestOfHeader = 4;
        public const int Identifier = 4;
        public const int SequenceNumber = 6;
    }

    private readonly Span<byte> _b;

    private IcmpHeader(Span<byte> buffer) => _b = buffer;

    public static bool TryCreate(Span<byte> buffer, out IcmpHeader view) => TryCreate(buffer, out view, out _);

    public static bool TryCreate(Span<byte> buffer, out IcmpHeader view, out ParseError reason)
    {
        view = default;
        if (buffer.Length < HeaderLength) { reason = ParseError.TruncatedIcmp; return false; }
        view = new IcmpHeader(buffer);
        reason = ParseError.None;
        return true;
    }

    /// <summary>Writes the header; call <see cref="FillChecksum"/> once the data is in place.</summary>
    public static IcmpHeader Write(Span<byte> buffer, in IcmpFields f)
    {
        var v = new IcmpHeader(buffer);
        v.Type = f.Type;
        v.Code = f.Code;
        v.Checksum = 0;
        v.RestOfHeader = f.RestOfHeader;
        return v;
    }

    /// <summary>The whole message.</summary>
    public Span<byte> Buffer => _b;
    public Span<byte> Payload => _b[HeaderLength..];

    public byte Type { [MethodImpl(Inline)] get => _b[Field.Type]; [MethodImpl(Inline)] set => _b[Field.Type] = value; }
    public byte Code { [MethodImpl(Inline)] get => _b[Field.Code]; [MethodImpl(Inline)] set => _b[Field.Code] = value; }
    public ushort Checksum { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.Checksum..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.Checksum..], value); }
    public uint RestOfHeader { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt32BigEndian(_b[Field.RestOfHeader..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt32BigEndian(_b[Field.RestOfHeader..], value); }
    /// <summary>Echo request/reply identifier.</summary>
    public ushort Identifier { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.Identifier..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.Identifier..], value); }
    public ushort SequenceNumber { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.SequenceNumber..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.SequenceNumber..], value); }

    public void FillChecksum()
    {
        Checksum = 0;
        Checksum = Wire.Checksum.Compute(_b);
    }

    public bool VerifyChecksum() => Wire.Checksum.Verify(_b);

    public IcmpFields ToFields() => new(Type, Code, RestOfHeader);
}
