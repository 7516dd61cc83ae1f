using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Flow;

/// <summary>
/// One direction of a connection as netfilter's <c>nf_conntrack_tuple</c> has it: addresses, ports
/// and protocol. Addresses use the flow key's convention (IPv4 in the low 32 bits, host order).
/// ICMP echo carries its identifier in both ports, so that the reply's reversed tuple is the request's.
/// Packed to 8 bytes: UInt128's 16-byte alignment would pad it to 48 bytes, and a million
/// connections hold two each.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 8)]
public struct ConnTuple : IEquatable<ConnTuple>
{
    public UInt128 Src;
    public UInt128 Dst;
    public ushort SrcPort;
    public ushort DstPort;
    public byte Proto;
    /// <summary>4 or 6.</summary>
    public byte Family;
    public ushort Zone;

    public readonly ConnTuple Reverse() => new()
    {
        Src = Dst, Dst = Src, SrcPort = DstPort, DstPort = SrcPort, Proto = Proto, Family = Family, Zone = Zone,
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool Equals(ConnTuple o) =>
        Src == o.Src && Dst == o.Dst && SrcPort == o.SrcPort && DstPort == o.DstPort && Proto == o.Proto && Family == o.Family && Zone == o.Zone;

    public override readonly bool Equals(object? obj) => obj is ConnTuple t && Equals(t);

    public override readonly int GetHashCode() => (int)Hash();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly ulong Hash()
    {
        const ulong P1 = 0x9E3779B185EBCA87UL, P2 = 0xC2B2AE3D27D4EB4FUL;
        ulong h = ((ulong)Src * P1) ^ BitOperations.RotateLeft((ulong)(Src >> 64) * P2, 29);
        h += ((ulong)Dst * P2) ^ BitOperations.RotateLeft((ulong)(Dst >> 64) * P1, 37);
        h ^= ((ulong)SrcPort << 48 | (ulong)DstPort << 32 | (ulong)Proto << 24 | (ulong)Family << 16 | Zone) * P1;
        h ^= h >> 33;
        h *= 0xFF51AFD7ED558CCDUL;
        h ^= h >> 33;
        return h;
    }

    /// <summary>Offset of the transport header in an untagged frame, or -1 (IPv6 with extension headers before it).</summary>
    public static int L4Offset(in FlowKey key, ReadOnlySpan<byte> frame)
    {
        if (key.IsIPv4) return frame.Length >= 34 ? 14 + (frame[14] & 0x0F) * 4 : -1;
        if (key.IsIPv6) return frame.Length >= 54 && frame[20] == key.NwProto ? 54 : -1;
        return -1;
    }

    /// <summary>What a frame is to conntrack.</summary>
    public enum Kind : byte
    {
        /// <summary>Not tracked: not IP, a later fragment, another protocol, an ICMP message that is neither echo nor error.</summary>
        Untracked,
        Connection,
        /// <summary>An ICMP error: <c>t</c> is the tuple of the packet it quotes, as that packet went.</summary>
        IcmpError,
    }

    /// <summary>
    /// The tuple of a classified, untagged frame. TCP and UDP take their ports; ICMP echo (request or
    /// reply) its identifier in both ports; an ICMP error gives the quoted packet's tuple (a
    /// destination unreachable, time exceeded, packet too big, parameter problem) so that it can be
    /// related to its connection.
    /// </summary>
    public static Kind From(in FlowKey key, ReadOnlySpan<byte> frame, out ConnTuple t)
    {
        t = default;
        byte family = key.IsIPv4 ? (byte)4 : key.IsIPv6 ? (byte)6 : (byte)0;
        if (family == 0 || key.NwFrag == 2) return Kind.Untracked;
        t.Src = key.NwSrc;
        t.Dst = key.NwDst;
        t.Proto = key.NwProto;
        t.Family = family;
        switch (key.NwProto)
        {
            case IpProtocols.Tcp:
            case IpProtocols.Udp:
                t.SrcPort = key.TpSrc;
                t.DstPort = key.TpDst;
                return Kind.Connection;
            case IpProtocols.Icmp when family == 4:
            case IpProtocols.IcmpV6 when family == 6:
            {
                int l4 = L4Offset(in key, frame);
                if (l4 < 0 || frame.Length < l4 + 8) return Kind.Untracked;
                byte type = frame[l4];
                bool echo = family == 4 ? type is 8 or 0 : type is 128 or 129;
                if (echo)
                {
                    ushort id = (ushort)(frame[l4 + 4] << 8 | frame[l4 + 5]);
                    t.SrcPort = id;
                    t.DstPort = id;
                    return Kind.Connection;
                }
                bool error = family == 4 ? type is 3 or 11 or 12 : type is 1 or 2 or 3 or 4;
                if (!error || family != 4) return Kind.Untracked; // quoted IPv6 packets: not yet
                return Quoted(frame[(l4 + 8)..], out t) ? Kind.IcmpError : Kind.Untracked;
            }
            default:
                return Kind.Untracked;
        }
    }

    /// <summary>The tuple of the IPv4 packet an ICMP error quotes (its header and first 8 bytes).</summary>
    private static bool Quoted(ReadOnlySpan<byte> q, out ConnTuple t)
    {
        t = default;
        if (q.Length < 28 || (q[0] >> 4) != 4) return false;
        int ihl = (q[0] & 0x0F) * 4;
        if (ihl < 20 || q.Length < ihl + 8) return false;
        t.Family = 4;
        t.Proto = q[9];
        t.Src = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(q[12..]);
        t.Dst = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(q[16..]);
        var l4 = q[ihl..];
        switch (t.Proto)
        {
            case IpProtocols.Tcp:
            case IpProtocols.Udp:
                t.SrcPort = (ushort)(l4[0] << 8 | l4[1]);
                t.DstPort = (ushort)(l4[2] << 8 | l4[3]);
                return true;
            case IpProtocols.Icmp when l4[0] is 8 or 0:
                t.SrcPort = t.DstPort = (ushort)(l4[4] << 8 | l4[5]);
                return true;
            default:
                return false;
        }
    }

    public readonly string Format()
    {
        byte family = Family;
        string Addr(UInt128 a) => family == 4 ? AddressFormat.IPv4((uint)a) : AddressFormat.IPv6(a);
        string proto = Proto switch { IpProtocols.Tcp => "tcp", IpProtocols.Udp => "udp", IpProtocols.Icmp => "icmp", IpProtocols.IcmpV6 => "icmpv6", _ => Proto.ToString() };
        return Proto is IpProtocols.Icmp or IpProtocols.IcmpV6
            ? $"{proto} src={Addr(Src)} dst={Addr(Dst)} id={SrcPort}"
            : $"{proto} src={Addr(Src)} dst={Addr(Dst)} sport={SrcPort} dport={DstPort}";
    }
}
