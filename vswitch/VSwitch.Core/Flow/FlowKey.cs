using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Flow;

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
    /// <summary>Remote tunnel endpoint: an IPv4 address (host order) or an IPv6 VTEP's handle (<see cref="VtepRemote"/>).</summary>
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
    /// <summary><see cref="STagBit"/>: the outer tag was 802.1ad (an S-tag); <see cref="InnerTagBit"/>: a second tag followed it.</summary>
    public byte VlanQinQ;
    /// <summary>Open vSwitch's ct_state (<see cref="Tables.Conntrack.CtState"/>), set by the conntrack stage; 0 when not tracked.</summary>
    public byte CtState;
    public byte Reserved;

    public const byte VlanPresentBit = 0x80;
    public const byte STagBit = 1;
    public const byte InnerTagBit = 2;

    public readonly bool HasVlan => (VlanPcp & VlanPresentBit) != 0;
    public readonly bool IsIPv4 => DlType == EtherTypes.IPv4;
    public readonly bool IsIPv6 => DlType == EtherTypes.IPv6;
    public readonly bool IsArp => DlType == EtherTypes.Arp;

    /// <summary>The key is exactly 96 bytes (a test holds it to that): three 32-byte vectors to compare, twelve words to hash.</summary>
    public const int Size = 96;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool Equals(FlowKey other) => Equals(in other);

    /// <summary>Three 256-bit compares: the flow cache compares a key on every hit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool Equals(in FlowKey other)
    {
        ref byte a = ref Unsafe.As<FlowKey, byte>(ref Unsafe.AsRef(in this));
        ref byte b = ref Unsafe.As<FlowKey, byte>(ref Unsafe.AsRef(in other));
        return Vector256.EqualsAll(Vector256.LoadUnsafe(ref a), Vector256.LoadUnsafe(ref b))
            && Vector256.EqualsAll(Vector256.LoadUnsafe(ref a, 32), Vector256.LoadUnsafe(ref b, 32))
            && Vector256.EqualsAll(Vector256.LoadUnsafe(ref a, 64), Vector256.LoadUnsafe(ref b, 64));
    }

    public override readonly bool Equals(object? obj) => obj is FlowKey k && Equals(k);

    public override readonly int GetHashCode() => (int)Hash64();

    /// <summary>
    /// A 64-bit hash over the key's twelve words, computed in six independent lanes (the
    /// multiplies overlap instead of waiting on each other), folded, then avalanched with the
    /// murmur3 finaliser: good enough for open addressing and flow spreading, and short.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly ulong Hash64()
    {
        ref ulong w = ref Unsafe.As<FlowKey, ulong>(ref Unsafe.AsRef(in this));
        const ulong P1 = 0x9E3779B185EBCA87UL, P2 = 0xC2B2AE3D27D4EB4FUL, P3 = 0x165667B19E3779F9UL, P4 = 0x85EBCA77C2B2AE63UL;
        // Every word gets its own multiply (they run side by side); words pair up with a rotation
        // so that the same bit in two words lands in different places.
        ulong a = Unsafe.Add(ref w, 0) * P1 ^ BitOperations.RotateLeft(Unsafe.Add(ref w, 1) * P2, 31);
        ulong b = Unsafe.Add(ref w, 2) * P3 ^ BitOperations.RotateLeft(Unsafe.Add(ref w, 3) * P4, 31);
        ulong c = Unsafe.Add(ref w, 4) * P1 ^ BitOperations.RotateLeft(Unsafe.Add(ref w, 5) * P2, 31);
        ulong d = Unsafe.Add(ref w, 6) * P3 ^ BitOperations.RotateLeft(Unsafe.Add(ref w, 7) * P4, 31);
        ulong e = Unsafe.Add(ref w, 8) * P1 ^ BitOperations.RotateLeft(Unsafe.Add(ref w, 9) * P2, 31);
        ulong f = Unsafe.Add(ref w, 10) * P3 ^ BitOperations.RotateLeft(Unsafe.Add(ref w, 11) * P4, 31);
        // The three pairs are rotated apart before they add up, so that the top bit of one pair
        // (which a multiply cannot spread) never cancels against the top bit of another.
        ulong h = (a ^ BitOperations.RotateLeft(b, 17)) * P2
                + BitOperations.RotateLeft((c ^ BitOperations.RotateLeft(d, 23)) * P4, 21)
                + BitOperations.RotateLeft((e ^ BitOperations.RotateLeft(f, 29)) * P1, 42);
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
