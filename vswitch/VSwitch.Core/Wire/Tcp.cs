using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace VSwitch.Core.Wire;

/// <summary>TCP control bits as they sit in the low 12 bits of the offset/flags word (the OVS tcp_flags layout).</summary>
public static class TcpFlags
{
    public const ushort Fin = 0x001;
    public const ushort Syn = 0x002;
    public const ushort Rst = 0x004;
    public const ushort Psh = 0x008;
    public const ushort Ack = 0x010;
    public const ushort Urg = 0x020;
    public const ushort Ece = 0x040;
    public const ushort Cwr = 0x080;
    public const ushort Ns = 0x100;
    public const ushort Mask = 0xFFF;
}

public readonly record struct TcpFields(
    ushort SourcePort, ushort DestinationPort, uint SequenceNumber, uint AckNumber,
    ushort Flags, ushort Window, ushort UrgentPointer);

/// <summary>A TCP segment view (RFC 9293). The view spans the whole segment (TCP has no length of its own).</summary>
public readonly ref struct TcpHeader
{
    private const MethodImplOptions Inline = MethodImplOptions.AggressiveInlining;
    public const int MinHeaderLength = 20;
    public const int MaxOptionsLength = 40;

    private static class Field
    {
        public const int SourcePort = 0;
        public const int DestinationPort = 2;
        public const int SequenceNumber = 4;
        public const int AckNumber = 8;
        public const int OffsetFlags = 12;
        public const int Window = 14;
        public const int Checksum = 16;
        public const int UrgentPointer = 18;
        public const int Options = 20;
    }

    private readonly Span<byte> _b;

    private TcpHeader(Span<byte> buffer) => _b = buffer;

    public static bool TryCreate(Span<byte> buffer, out TcpHeader view) => TryCreate(buffer, out view, out _);

    public static bool TryCreate(Span<byte> buffer, out TcpHeader view, out ParseError reason)
    {
        view = default;
        if (buffer.Length < MinHeaderLength) { reason = ParseError.TruncatedTcp; return false; }
        int headerLength = (buffer[Field.OffsetFlags] >> 4) * 4;
        if (headerLength < MinHeaderLength) { reason = ParseError.BadTcpOffset; return false; }
        if (headerLength > buffer.Length) { reason = ParseError.TruncatedTcp; return false; }
        view = new TcpHeader(buffer);
        reason = ParseError.None;
        return true;
    }

    /// <summary>Writes the header with <paramref name="options"/> (a multiple of 4 bytes, at most 40) and a zero checksum.</summary>
    public static TcpHeader Write(Span<byte> buffer, in TcpFields f, ReadOnlySpan<byte> options = default)
    {
        if ((options.Length & 3) != 0 || options.Length > MaxOptionsLength)
            throw new ArgumentException($"TCP options must be a multiple of 4 bytes up to {MaxOptionsLength}, got {options.Length}", nameof(options));
        var v = new TcpHeader(buffer);
        v.SourcePort = f.SourcePort;
        v.DestinationPort = f.DestinationPort;
        v.SequenceNumber = f.SequenceNumber;
        v.AckNumber = f.AckNumber;
        int words = (MinHeaderLength + options.Length) / 4;
        BinaryPrimitives.WriteUInt16BigEndian(v._b[Field.OffsetFlags..], (ushort)((words << 12) | (f.Flags & TcpFlags.Mask)));
        v.Window = f.Window;
        v.Checksum = 0;
        v.UrgentPointer = f.UrgentPointer;
        options.CopyTo(v._b[Field.Options..]);
        return v;
    }

    public Span<byte> Buffer => _b;
    public Span<byte> Options => _b[Field.Options..HeaderLength];
    public Span<byte> Payload => _b[HeaderLength..];

    public ushort SourcePort { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.SourcePort..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.SourcePort..], value); }
    public ushort DestinationPort { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.DestinationPort..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.DestinationPort..], value); }
    public uint SequenceNumber { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt32BigEndian(_b[Field.SequenceNumber..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt32BigEndian(_b[Field.SequenceNumber..], value); }
    public uint AckNumber { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt32BigEndian(_b[Field.AckNumber..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt32BigEndian(_b[Field.AckNumber..], value); }
    /// <summary>Data offset in 32-bit words.</summary>
    public byte DataOffset { [MethodImpl(Inline)] get => (byte)(_b[Field.OffsetFlags] >> 4); }
    public int HeaderLength { [MethodImpl(Inline)] get => (_b[Field.OffsetFlags] >> 4) * 4; }
    public ushort Flags
    {
        [MethodImpl(Inline)] get => (ushort)(BinaryPrimitives.ReadUInt16BigEndian(_b[Field.OffsetFlags..]) & TcpFlags.Mask);
        [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.OffsetFlags..], (ushort)((_b[Field.OffsetFlags] & 0xF0) << 8 | (value & TcpFlags.Mask)));
    }
    public ushort Window { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.Window..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.Window..], value); }
    public ushort Checksum { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.Checksum..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.Checksum..], value); }
    public ushort UrgentPointer { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.UrgentPointer..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.UrgentPointer..], value); }

    public void FillChecksum(uint source, uint destination)
    {
        Checksum = 0;
        Checksum = Wire.Checksum.TransportIPv4(source, destination, IpProtocols.Tcp, _b);
    }

    public void FillChecksum(UInt128 source, UInt128 destination)
    {
        Checksum = 0;
        Checksum = Wire.Checksum.TransportIPv6(source, destination, IpProtocols.Tcp, _b);
    }

    public bool VerifyChecksum(uint source, uint destination) =>
        Wire.Checksum.Verify(_b, Wire.Checksum.PseudoHeaderIPv4(source, destination, IpProtocols.Tcp, _b.Length));

    public bool VerifyChecksum(UInt128 source, UInt128 destination) =>
        Wire.Checksum.Verify(_b, Wire.Checksum.PseudoHeaderIPv6(source, destination, IpProtocols.Tcp, _b.Length));

    public TcpFields ToFields() => new(SourcePort, DestinationPort, SequenceNumber, AckNumber, Flags, Window, UrgentPointer);
}
