using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace VSwitch.Core.Wire;

public readonly record struct EthernetFields(ulong Destination, ulong Source, ushort EtherType);

/// <summary>An Ethernet II header view.</summary>
public readonly ref struct EthernetHeader
{
    private const MethodImplOptions Inline = MethodImplOptions.AggressiveInlining;
    public const int HeaderLength = 14;

    private static class Field
    {
        public const int Destination = 0;
        public const int Source = 6;
        public const int EtherType = 12;
    }

    private readonly Span<byte> _b;

    private EthernetHeader(Span<byte> buffer) => _b = buffer;

    public static bool TryCreate(Span<byte> buffer, out EthernetHeader view) => TryCreate(buffer, out view, out _);

    public static bool TryCreate(Span<byte> buffer, out EthernetHeader view, out ParseError reason)
    {
        view = default;
        if (buffer.Length < HeaderLength) { reason = ParseError.RuntFrame; return false; }
        view = new EthernetHeader(buffer);
        reason = ParseError.None;
        return true;
    }

    public static EthernetHeader Write(Span<byte> buffer, in EthernetFields f)
    {
        var v = new EthernetHeader(buffer);
        v.Destination = f.Destination;
        v.Source = f.Source;
        v.EtherType = f.EtherType;
        return v;
    }

    /// <summary>The whole frame.</summary>
    public Span<byte> Buffer => _b;
    public Span<byte> Payload => _b[HeaderLength..];

    public ulong Destination { [MethodImpl(Inline)] get => MacAddress.Read(_b[Field.Destination..]); [MethodImpl(Inline)] set => MacAddress.Write(_b[Field.Destination..], value); }
    public ulong Source { [MethodImpl(Inline)] get => MacAddress.Read(_b[Field.Source..]); [MethodImpl(Inline)] set => MacAddress.Write(_b[Field.Source..], value); }
    public ushort EtherType { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.EtherType..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.EtherType..], value); }

    public EthernetFields ToFields() => new(Destination, Source, EtherType);
}
