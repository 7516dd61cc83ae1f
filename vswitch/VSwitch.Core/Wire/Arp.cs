using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace VSwitch.Core.Wire;

public readonly record struct ArpFields(ushort Operation, ulong SenderHardware, uint SenderProtocol, ulong TargetHardware, uint TargetProtocol);

/// <summary>An ARP packet view, Ethernet hardware and IPv4 protocol addresses only (RFC 826).</summary>
public readonly ref struct ArpPacket
{
    private const MethodImplOptions Inline = MethodImplOptions.AggressiveInlining;
    public const int PacketLength = 28;
    public const ushort HardwareEthernet = 1;
    public const ushort OpRequest = 1;
    public const ushort OpReply = 2;

    private static class Field
    {
        public const int HardwareType = 0;
        public const int ProtocolType = 2;
        public const int HardwareLength = 4;
        public const int ProtocolLength = 5;
        public const int Operation = 6;
        public const int SenderHardware = 8;
        public const int SenderProtocol = 14;
        public const int TargetHardware = 18;
        public const int TargetProtocol = 24;
    }

    private readonly Span<byte> _b;

    private ArpPacket(Span<byte> buffer) => _b = buffer;

    public static bool TryCreate(Span<byte> buffer, out ArpPacket view) => TryCreate(buffer, out view, out _);

    public static bool TryCreate(Span<byte> buffer, out ArpPacket view, out ParseError reason)
    {
        view = default;
        if (buffer.Length < PacketLength) { reason = ParseError.TruncatedArp; return false; }
        var v = new ArpPacket(buffer[..PacketLength]);
        if (v.HardwareType != HardwareEthernet || v.ProtocolType != EtherTypes.IPv4 || v.HardwareLength != 6 || v.ProtocolLength != 4)
        {
            reason = ParseError.BadArp;
            return false;
        }
        view = v;
        reason = ParseError.None;
        return true;
    }

    public static ArpPacket Write(Span<byte> buffer, in ArpFields f)
    {
        var v = new ArpPacket(buffer[..PacketLength]);
        BinaryPrimitives.WriteUInt16BigEndian(v._b[Field.HardwareType..], HardwareEthernet);
        BinaryPrimitives.WriteUInt16BigEndian(v._b[Field.ProtocolType..], EtherTypes.IPv4);
        v._b[Field.HardwareLength] = 6;
        v._b[Field.ProtocolLength] = 4;
        v.Operation = f.Operation;
        v.SenderHardware = f.SenderHardware;
        v.SenderProtocol = f.SenderProtocol;
        v.TargetHardware = f.TargetHardware;
        v.TargetProtocol = f.TargetProtocol;
        return v;
    }

    public ushort HardwareType { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.HardwareType..]); }
    public ushort ProtocolType { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.ProtocolType..]); }
    public byte HardwareLength { [MethodImpl(Inline)] get => _b[Field.HardwareLength]; }
    public byte ProtocolLength { [MethodImpl(Inline)] get => _b[Field.ProtocolLength]; }
    public ushort Operation { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt16BigEndian(_b[Field.Operation..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt16BigEndian(_b[Field.Operation..], value); }
    public ulong SenderHardware { [MethodImpl(Inline)] get => MacAddress.Read(_b[Field.SenderHardware..]); [MethodImpl(Inline)] set => MacAddress.Write(_b[Field.SenderHardware..], value); }
    public uint SenderProtocol { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt32BigEndian(_b[Field.SenderProtocol..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt32BigEndian(_b[Field.SenderProtocol..], value); }
    public ulong TargetHardware { [MethodImpl(Inline)] get => MacAddress.Read(_b[Field.TargetHardware..]); [MethodImpl(Inline)] set => MacAddress.Write(_b[Field.TargetHardware..], value); }
    public uint TargetProtocol { [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt32BigEndian(_b[Field.TargetProtocol..]); [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt32BigEndian(_b[Field.TargetProtocol..], value); }

    public ArpFields ToFields() => new(Operation, SenderHardware, SenderProtocol, TargetHardware, TargetProtocol);
}
