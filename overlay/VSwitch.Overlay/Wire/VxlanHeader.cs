using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using VSwitch.Core.Flow;

namespace VSwitch.Overlay.Wire;

/// <summary>A VXLAN header view (RFC 7348): flags (I bit), 24 reserved bits, the 24-bit VNI, 8 reserved bits.</summary>
public readonly ref struct VxlanHeader
{
    private const MethodImplOptions Inline = MethodImplOptions.AggressiveInlining;
    public const int HeaderLength = 8;
    public const ushort UdpPort = 4789;
    public const byte FlagVniValid = 0x08;
    public const uint MaxVni = 0xFF_FFFF;
    /// <summary>
    /// What the underlay adds to an inner Ethernet frame: outer IP (20 or 40), UDP (8) and VXLAN (8) bytes, plus the
    /// inner Ethernet header (14) that the inner MTU does not count: 50 over IPv4, 70 over IPv6 (RFC 7348, 4.3).
    /// </summary>
    public static int Overhead(bool ipv6) => (ipv6 ? 40 : 20) + 8 + HeaderLength + 14;
    /// <summary>The largest UDP payload (VXLAN header and frame) a 1500-byte underlay carries unfragmented.</summary>
    public static int MaxDatagram(bool ipv6, int underlayMtu = 1500) => underlayMtu - (ipv6 ? 40 : 20) - 8;

    private static class Field
    {
        public const int Flags = 0;
        public const int VniReserved = 4;
    }

    private readonly Span<byte> _b;

    private VxlanHeader(Span<byte> buffer) => _b = buffer;

    public static bool TryCreate(Span<byte> buffer, out VxlanHeader view) => TryCreate(buffer, out view, out _);

    /// <summary>Rejects a header without the I flag: RFC 7348 says its VNI must not be trusted.</summary>
    public static bool TryCreate(Span<byte> buffer, out VxlanHeader view, out DropReason reason)
    {
        view = default;
        if (buffer.Length < HeaderLength) { reason = DropReason.TruncatedTunnelHeader; return false; }
        if ((buffer[Field.Flags] & FlagVniValid) == 0) { reason = DropReason.BadTunnelHeader; return false; }
        view = new VxlanHeader(buffer);
        reason = DropReason.None;
        return true;
    }

    public static VxlanHeader Write(Span<byte> buffer, uint vni)
    {
        var v = new VxlanHeader(buffer);
        BinaryPrimitives.WriteUInt32BigEndian(v._b, (uint)FlagVniValid << 24);
        v.Vni = vni;
        return v;
    }

    /// <summary>The encapsulated Ethernet frame.</summary>
    public Span<byte> Payload => _b[HeaderLength..];

    public byte Flags { [MethodImpl(Inline)] get => _b[Field.Flags]; }
    public uint Vni
    {
        [MethodImpl(Inline)] get => BinaryPrimitives.ReadUInt32BigEndian(_b[Field.VniReserved..]) >> 8;
        [MethodImpl(Inline)] set => BinaryPrimitives.WriteUInt32BigEndian(_b[Field.VniReserved..], (value & MaxVni) << 8);
    }
}
