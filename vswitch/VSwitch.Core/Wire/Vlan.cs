using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace VSwitch.Core.Wire;

public readonly record struct VlanFields(byte Pcp, bool Dei, ushort VlanId, ushort EtherType);

/// <summary>
/// An 802.1Q / 802.1ad tag view: the 4 bytes after the TPID (TCI, then the encapsulated ethertype).
/// The TPID itself is the ethertype field of whatever precedes the tag.
/// </summary>
public readonly ref struct VlanTag
{
    private const MethodImplOptions Inline = MethodImplOptions.AggressiveInlining;
    public const int HeaderLength = 4;
    public const ushort Tpid8021Q = EtherTypes.Vlan;
    public const ushort Tpid8021ad = EtherTypes.QinQ;

    private static class Field
    {
        public const int Tci = 0;
        public const int EtherType = 2;
    }

    private readonly Span<byte> _b;

    private VlanTag(Span<byte> buffer) => _b = buffer;

    [MethodImpl(Inline)]
    public static bool IsTpid(ushort etherType) => etherType is Tpid8021Q or Tpid8021ad;

    public static bool TryCreate(Span<byte> buffer, out VlanTag view) => TryCreate(buffer, out view, out _);

    public static bool TryCreate(Span<byte> buffer, out VlanTag view, out ParseError reason)
    {
        view = default;
        if (buffer.Length < HeaderLength) { reason = ParseError.TruncatedVlan; return false; }
        view = new VlanTag(buffer);
        reason = ParseError.None;
        return true;
    }

    public static VlanTag Write(Span<byte> buffer, in VlanFields f)
    {
        var v = new VlanTag(buffer);
        v.Tci = (ushort)(((f.Pcp & 7) << 13) | (f.Dei ? 0x1000 : 0) | (f.VlanId & 0xFFF));
        v.EtherType = f.EtherType;
        return v;
    }

    public Span<byte> Payload => _b[HeaderLength..];

    public ushort Tci { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.Tci..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.Tci..], value); }
    public byte Pcp { [MethodImpl(Inline)] get => (byte)(Tci >> 13); }
    public bool Dei { [MethodImpl(Inline)] get => (Tci & 0x1000) != 0; }
    public ushort VlanId { [MethodImpl(Inline)] get => (ushort)(Tci & 0xFFF); [MethodImpl(Inline)] set => Tci = (ushort)((Tci & 0xF000) | (value & 0xFFF)); }
    /// <summary>The ethertype of what the tag encapsulates.</summary>
    public ushort EtherType { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.EtherType..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.EtherType..], value); }

    public VlanFields ToFields() => new(Pcp, Dei, VlanId, EtherType);
}
