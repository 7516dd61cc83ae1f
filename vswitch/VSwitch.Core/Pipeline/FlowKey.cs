using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// What the switch knows about a frame after parsing its headers once: the exact-match key of the
/// flow cache and the input of the rule table. Field conventions follow Open vSwitch's flow key:
/// for ARP, <see cref="NwSrc"/>/<see cref="NwDst"/> hold the sender/target protocol address and
/// <see cref="NwProto"/> the low byte of the opcode; for ICMP/ICMPv6, <see cref="TpSrc"/>/<see cref="TpDst"/>
/// hold type/code. IPv4 addresses sit in the low 32 bits of the 128-bit fields (host order), IPv6
/// addresses fill them (big-endian read as a 128-bit number).
/// The layout has no holes but the tail, which stays zero, so equality and hashing work on bytes.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct FlowKey : IEquatable<FlowKey>
{
    public UInt128 NwSrc;
    public UInt128 NwDst;
    /// <summary>Ethernet source, the 48-bit address in the low bits (first octet most significant).</summary>
    public ulong DlSrc;
    public ulong DlDst;
    public ulong ArpSha;
    public ulong ArpTha;
    public uint TunId;
    /// <summary>Remote tunnel endpoint, IPv4 host order.</summary>
    public uint TunRemote;
    public ushort InPort;
    /// <summary>Ethertype after any VLAN tags (0x0800 IPv4, 0x86DD IPv6, 0x0806 ARP, ...).</summary>
    public ushort DlType;
    /// <summary>VLAN id (12 bits) of the outermost 802.1Q tag, 0 when untagged.</summary>
    public ushort VlanId;
    public ushort TpSrc;
    public ushort TpDst;
    public ushort TcpFlags;
    public byte NwProto;
    public byte NwTos;
    public byte NwTtl;
    /// <summary>Priority code point of the outer tag; bit 7 set means a tag was present.</summary>
    public byte VlanPcp;
    /// <summary>Non-zero for a fragment: 1 first fragment, 2 later fragment (no L4 header).</summary>
    public byte NwFrag;
    /// <summary>1 when the frame carried an 802.1ad (QinQ) outer tag.</summary>
    public byte VlanQinQ;
    public ushort Reserved;

    public const byte VlanPresentBit = 0x80;

    public readonly bool HasVlan => (VlanPcp & VlanPresentBit) != 0;
    public readonly bool IsIPv4 => DlType == EtherTypes.IPv4;
    public readonly bool IsIPv6 => DlType == EtherTypes.IPv6;
    public readonly bool IsArp => DlType == EtherTypes.Arp;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool Equals(FlowKey other)
    {
        var a = MemoryMarshal.AsBytes(new ReadOnlySpan<FlowKey>(in this));
        var b = MemoryMarshal.AsBytes(new ReadOnlySpan<FlowKey>(in other));
        return a.SequenceEqual(b);
    }

    public override readonly bool Equals(object? obj) => obj is FlowKey k && Equals(k);

    public override readonly int GetHashCode() => (int)Hash64();

    /// <summary>
    /// A 64-bit hash over the key's bytes: multiply-rotate mixing per 8-byte word and a final
    /// avalanche (the murmur3 finaliser), good enough for open addressing and flow spreading.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly ulong Hash64()
    {
        var words = MemoryMarshal.Cast<byte, ulong>(MemoryMarshal.AsBytes(new ReadOnlySpan<FlowKey>(in this)));
        ulong h = 0x9E3779B97F4A7C15UL;
        foreach (ulong w in words)
        {
            h ^= w * 0xC2B2AE3D27D4EB4FUL;
            h = BitOperations.RotateLeft(h, 31) * 0x9E3779B185EBCA87UL;
        }
        h ^= h >> 33;
        h *= 0xFF51AFD7ED558CCDUL;
        h ^= h >> 33;
        h *= 0xC4CEB9FE1A85EC53UL;
        h ^= h >> 33;
        return h;
    }

    public static bool operator ==(FlowKey a, FlowKey b) => a.Equals(b);
    public static bool operator !=(FlowKey a, FlowKey b) => !a.Equals(b);
}

/// <summary>Ethertypes the switch understands.</summary>
public static class EtherTypes
{
    public const ushort IPv4 = 0x0800;
    public const ushort Arp = 0x0806;
    public const ushort Vlan = 0x8100;
    public const ushort QinQ = 0x88A8;
    public const ushort IPv6 = 0x86DD;
}

/// <summary>IP protocol numbers.</summary>
public static class IpProtocols
{
    public const byte Icmp = 1;
    public const byte Tcp = 6;
    public const byte Udp = 17;
    public const byte IcmpV6 = 58;
}
