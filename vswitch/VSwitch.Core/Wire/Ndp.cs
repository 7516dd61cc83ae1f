using System.Buffers.Binary;

namespace VSwitch.Core.Wire;

/// <summary>What an ND message's options said, once they were checked (RFC 4861 §4.6, §6.1, §7.1).</summary>
public enum NdOptionsResult : byte
{
    Ok,
    /// <summary>An option of length zero, or one running past the message: the whole message is discarded.</summary>
    Malformed,
}

/// <summary>
/// Neighbour discovery (RFC 4861) as the router speaks it: message types, the fixed parts of NS, NA,
/// RS and RA, their options, and the IPv6 address arithmetic ND needs (solicited-node groups, the
/// multicast MAC of a group, a link-local address from a MAC). Offsets are from the start of the
/// ICMPv6 message. The router writes these messages into fresh buffers; it reads them through
/// <see cref="NdMessage"/>.
/// </summary>
public static class Ndp
{
    public const byte RouterSolicitation = 133;
    public const byte RouterAdvertisement = 134;
    public const byte NeighborSolicitation = 135;
    public const byte NeighborAdvertisement = 136;
    public const byte Redirect = 137;

    public const byte OptSourceLinkLayer = 1;
    public const byte OptTargetLinkLayer = 2;
    public const byte OptPrefixInformation = 3;
    public const byte OptMtu = 5;

    /// <summary>ND messages must arrive with hop limit 255: proof they were not forwarded by a router (RFC 4861 §6.1, §7.1).</summary>
    public const byte HopLimit = 255;

    /// <summary>NA flags (the first byte after the checksum).</summary>
    public const uint FlagRouter = 0x8000_0000, FlagSolicited = 0x4000_0000, FlagOverride = 0x2000_0000;

    /// <summary>NS/NA: ICMPv6 header (4) + reserved/flags (4) + target (16).</summary>
    public const int NsLength = 24;
    /// <summary>RS: ICMPv6 header (4) + reserved (4).</summary>
    public const int RsLength = 8;
    /// <summary>RA: ICMPv6 header (4) + hop limit, flags, lifetime (4) + reachable time (4) + retrans timer (4).</summary>
    public const int RaLength = 16;

    public static readonly UInt128 AllNodes = new(0xFF02_0000_0000_0000UL, 1);
    public static readonly UInt128 AllRouters = new(0xFF02_0000_0000_0000UL, 2);
    private static readonly UInt128 SolicitedNodePrefix = new(0xFF02_0000_0000_0000UL, 0x0000_0001_FF00_0000UL);

    public static bool IsMulticast(UInt128 a) => (byte)(a >> 120) == 0xFF;
    public static bool IsLinkLocal(UInt128 a) => (ushort)(a >> 112) >> 6 == 0xFE80 >> 6;
    /// <summary>Link-local scope multicast (ff02::/16): all-nodes, all-routers, solicited-node groups.</summary>
    public static bool IsLinkLocalMulticast(UInt128 a) => (ushort)(a >> 112) == 0xFF02;

    /// <summary>The solicited-node group of an address: ff02::1:ff00:0/104 and its low 24 bits (RFC 4291 §2.7.1).</summary>
    public static UInt128 SolicitedNode(UInt128 a) => SolicitedNodePrefix | (a & 0xFF_FFFF);

    /// <summary>The Ethernet address of an IPv6 multicast group: 33:33 and the group's low 32 bits (RFC 2464 §7).</summary>
    public static ulong MulticastMac(UInt128 group) => 0x3333_0000_0000UL | (uint)group;

    /// <summary>The link-local address from a MAC by modified EUI-64 (RFC 4291 appendix A): fe80::, the universal/local bit flipped, ff:fe in the middle.</summary>
    public static UInt128 LinkLocalFromMac(ulong mac)
    {
        ulong iid = ((mac >> 24) << 40) | (0xFFFEUL << 24) | (mac & 0xFF_FFFF);
        iid ^= 0x0200_0000_0000_0000UL;
        return new UInt128(0xFE80_0000_0000_0000UL, iid);
    }

    /// <summary>Writes a link-layer address option (8 bytes) and returns its length.</summary>
    public static int WriteLinkLayerOption(Span<byte> b, byte type, ulong mac)
    {
        b[0] = type;
        b[1] = 1;
        MacAddress.Write(b[2..], mac);
        return 8;
    }

    /// <summary>Writes an MTU option (8 bytes).</summary>
    public static int WriteMtuOption(Span<byte> b, uint mtu)
    {
        b[0] = OptMtu;
        b[1] = 1;
        b[2] = b[3] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(b[4..], mtu);
        return 8;
    }

    /// <summary>Writes a prefix information option (32 bytes, RFC 4861 §4.6.2): on-link always, autonomous as asked.</summary>
    public static int WritePrefixOption(Span<byte> b, UInt128 prefix, int length, bool autonomous, uint validSeconds, uint preferredSeconds)
    {
        b[0] = OptPrefixInformation;
        b[1] = 4;
        b[2] = (byte)length;
        b[3] = (byte)(0x80 | (autonomous ? 0x40 : 0)); // L (on-link), A (autonomous address configuration)
        BinaryPrimitives.WriteUInt32BigEndian(b[4..], validSeconds);
        BinaryPrimitives.WriteUInt32BigEndian(b[8..], preferredSeconds);
        BinaryPrimitives.WriteUInt32BigEndian(b[12..], 0);
        BinaryPrimitives.WriteUInt128BigEndian(b[16..], prefix);
        return 32;
    }
}

/// <summary>
/// A received ND message (NS, NA, RS or RA) over its ICMPv6 bytes, with the options walked once
/// by <see cref="TryCreate"/>: the link-layer address option that matters for the type (source for
/// NS/RS/RA, target for NA), and whether any option is malformed.
/// </summary>
public readonly ref struct NdMessage
{
    private readonly ReadOnlySpan<byte> _b;

    public byte Type => _b[0];
    public byte Code => _b[1];
    /// <summary>NA flags word (R, S, O in the top bits).</summary>
    public uint Flags => BinaryPrimitives.ReadUInt32BigEndian(_b[4..]);
    public bool Solicited => (Flags & Ndp.FlagSolicited) != 0;
    public bool Override => (Flags & Ndp.FlagOverride) != 0;
    public bool IsRouterFlag => (Flags & Ndp.FlagRouter) != 0;
    /// <summary>The target of an NS or NA.</summary>
    public UInt128 Target => BinaryPrimitives.ReadUInt128BigEndian(_b[8..]);
    /// <summary>The link-layer address option's MAC (source for NS/RS, target for NA), 0 when absent.</summary>
    public ulong LinkLayer { get; }

    private NdMessage(ReadOnlySpan<byte> b, ulong linkLayer)
    {
        _b = b;
        LinkLayer = linkLayer;
    }

    /// <summary>Checks the fixed part's length and every option; false when truncated or malformed (the message is then discarded).</summary>
    public static bool TryCreate(ReadOnlySpan<byte> icmp, out NdMessage msg)
    {
        msg = default;
        if (icmp.Length < 4) return false;
        int fixedLen = icmp[0] switch
        {
            Ndp.NeighborSolicitation or Ndp.NeighborAdvertisement => Ndp.NsLength,
            Ndp.RouterSolicitation => Ndp.RsLength,
            Ndp.RouterAdvertisement => Ndp.RaLength,
            _ => -1,
        };
        // ICMP code 0 is the only one ND defines (RFC 4861 §6.1.1, §7.1.1).
        if (fixedLen < 0 || icmp.Length < fixedLen || icmp[1] != 0) return false;
        byte want = icmp[0] == Ndp.NeighborAdvertisement ? Ndp.OptTargetLinkLayer : Ndp.OptSourceLinkLayer;
        ulong ll = 0;
        var opts = icmp[fixedLen..];
        while (opts.Length > 0)
        {
            if (opts.Length < 2) return false;
            int len = opts[1] * 8;
            if (len == 0 || len > opts.Length) return false;
            if (opts[0] == want)
            {
                if (len < 8) return false;
                ll = MacAddress.Read(opts.Slice(2, 6));
            }
            opts = opts[len..];
        }
        msg = new NdMessage(icmp, ll);
        return true;
    }
}
