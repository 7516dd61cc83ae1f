using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace VSwitch.Core.Wire;

/// <param name="FragmentOffset">In 8-byte units, as on the wire (13 bits).</param>
public readonly record struct IPv4Fields(
    byte Tos, ushort Identification, bool DontFragment, bool MoreFragments, ushort FragmentOffset,
    byte Ttl, byte Protocol, uint Source, uint Destination);

/// <summary>
/// An IPv4 header view (RFC 791). A checked view spans exactly the datagram (total length), so
/// Ethernet padding after it is not part of <see cref="Payload"/>. Addresses are host-order uints.
/// </summary>
public readonly ref struct IPv4Header
{
    private const MethodImplOptions Inline = MethodImplOptions.AggressiveInlining;
    public const int MinHeaderLength = 20;
    public const int MaxOptionsLength = 40;

    private static class Field
    {
        public const int VersionIhl = 0;
        public const int Tos = 1;
        public const int TotalLength = 2;
        public const int Identification = 4;
        public const int FlagsFragment = 6;
        public const int Ttl = 8;
        public const int Protocol = 9;
        public const int Checksum = 10;
        public const int Source = 12;
        public const int Destination = 16;
        public const int Options = 20;
    }

    private const ushort FlagDf = 0x4000;
    private const ushort FlagMf = 0x2000;
    private const ushort OffsetMask = 0x1FFF;

    private readonly Span<byte> _b;

    private IPv4Header(Span<byte> buffer) => _b = buffer;

    public static bool TryCreate(Span<byte> buffer, out IPv4Header view) => TryCreate(buffer, out view, out _);

    public static bool TryCreate(Span<byte> buffer, out IPv4Header view, out ParseError reason)
    {
        view = default;
        if (buffer.Length < MinHeaderLength) { reason = ParseError.TruncatedIPv4; return false; }
        byte vi = buffer[Field.VersionIhl];
        if (vi >> 4 != 4) { reason = ParseError.BadIpVersion; return false; }
        int headerLength = (vi & 0xF) * 4;
        if (headerLength < MinHeaderLength) { reason = ParseError.BadIhl; return false; }
        if (headerLength > buffer.Length) { reason = ParseError.TruncatedIPv4; return false; }
        int total = BinaryPrimitives.ReadUInt16BigEndian(buffer[Field.TotalLength..]);
        if (total < headerLength || total > buffer.Length) { reason = ParseError.BadIpTotalLength; return false; }
        view = new IPv4Header(buffer[..total]);
        reason = ParseError.None;
        return true;
    }

    /// <summary>
    /// Writes a header with <paramref name="options"/> (a multiple of 4 bytes, at most 40) for a
    /// payload of <paramref name="payloadLength"/> bytes, and fills its checksum.
    /// </summary>
    public static IPv4Header Write(Span<byte> buffer, in IPv4Fields f, int payloadLength, ReadOnlySpan<byte> options = default)
    {
        if ((options.Length & 3) != 0 || options.Length > MaxOptionsLength)
            throw new ArgumentException($"IPv4 options must be a multiple of 4 bytes up to {MaxOptionsLength}, got {options.Length}", nameof(options));
        int headerLength = MinHeaderLength + options.Length;
        var v = new IPv4Header(buffer[..(headerLength + payloadLength)]);
        v._b[Field.VersionIhl] = (byte)(0x40 | (headerLength >> 2));
        v.Tos = f.Tos;
        v.TotalLength = (ushort)(headerLength + payloadLength);
        v.Identification = f.Identification;
        BinaryPrimitives.WriteUInt16BigEndian(v._b[Field.FlagsFragment..],
            (ushort)((f.DontFragment ? FlagDf : 0) | (f.MoreFragments ? FlagMf : 0) | (f.FragmentOffset & OffsetMask)));
        v.Ttl = f.Ttl;
        v.Protocol = f.Protocol;
        v.Source = f.Source;
        v.Destination = f.Destination;
        options.CopyTo(v._b[Field.Options..]);
        v.FillChecksum();
        return v;
    }

    /// <summary>The datagram: header and payload, up to the total length.</summary>
    public Span<byte> Buffer => _b;
    public Span<byte> Options => _b[Field.Options..HeaderLength];
    public Span<byte> Payload => _b[HeaderLength..];

    public byte Version { [MethodImpl(Inline)] get => (byte)(_b[Field.VersionIhl] >> 4); }
    public byte Ihl { [MethodImpl(Inline)] get => (byte)(_b[Field.VersionIhl] & 0xF); }
    public int HeaderLength { [MethodImpl(Inline)] get => (_b[Field.VersionIhl] & 0xF) * 4; }
    public byte Tos { [MethodImpl(Inline)] get => _b[Field.Tos]; [MethodImpl(Inline)] set => _b[Field.Tos] = value; }
    public byte Dscp { [MethodImpl(Inline)] get => (byte)(_b[Field.Tos] >> 2); }
    public byte Ecn { [MethodImpl(Inline)] get => (byte)(_b[Field.Tos] & 3); }
    public ushort TotalLength { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.TotalLength..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.TotalLength..], value); }
    public ushort Identification { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.Identification..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.Identification..], value); }
    private ushort FlagsFragment { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.FlagsFragment..]); }
    public bool DontFragment { [MethodImpl(Inline)] get => (FlagsFragment & FlagDf) != 0; }
    public bool MoreFragments { [MethodImpl(Inline)] get => (FlagsFragment & FlagMf) != 0; }
    /// <summary>In 8-byte units.</summary>
    public ushort FragmentOffset { [MethodImpl(Inline)] get => (ushort)(FlagsFragment & OffsetMask); }
    public bool IsFragment { [MethodImpl(Inline)] get => (FlagsFragment & (FlagMf | OffsetMask)) != 0; }
    public byte Ttl { [MethodImpl(Inline)] get => _b[Field.Ttl]; [MethodImpl(Inline)] set => _b[Field.Ttl] = value; }
    public byte Protocol { [MethodImpl(Inline)] get => _b[Field.Protocol]; [MethodImpl(Inline)] set => _b[Field.Protocol] = value; }
    public ushort HeaderChecksum { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.Checksum..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.Checksum..], value); }
    public uint Source { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt32BigEndian(_b[Field.Source..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt32BigEndian(_b[Field.Source..], value); }
    public uint Destination { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt32BigEndian(_b[Field.Destination..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt32BigEndian(_b[Field.Destination..], value); }

    public void FillChecksum() => HeaderChecksum = Checksum.IPv4Header(_b[..HeaderLength]);
    public bool VerifyChecksum() => Checksum.VerifyIPv4Header(_b[..HeaderLength]);

    /// <summary>
    /// Decrements the TTL and patches the checksum incrementally (RFC 1624), as a router does.
    /// Returns false, changing nothing, when the TTL would reach zero.
    /// </summary>
    public bool DecrementTtl()
    {
        byte ttl = Ttl;
        if (ttl <= 1) return false;
        ushort oldWord = (ushort)((ttl << 8) | Protocol);
        Ttl = (byte)(ttl - 1);
        HeaderChecksum = Checksum.Update(HeaderChecksum, oldWord, (ushort)(oldWord - 0x100));
        return true;
    }

    public IPv4Fields ToFields() =>
        new(Tos, Identification, DontFragment, MoreFragments, FragmentOffset, Ttl, Protocol, Source, Destination);
}
