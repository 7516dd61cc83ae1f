using System.Buffers.Binary;
using VSwitch.Core.Buffers;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// The IPv6 frames the router writes: the echo reply (in place, over the request), neighbour
/// solicitations and advertisements, router advertisements and ICMPv6 errors (in fresh buffers).
/// Frames inside the switch are untagged, so every offset starts at a 14-byte Ethernet header.
/// </summary>
public static class Router6Packets
{
    private const int Eth = 14, Ip6 = IPv6Header.HeaderLength, Headers = Eth + Ip6;

    /// <summary>The IPv6 minimum MTU: an ICMPv6 error never makes a packet larger than this (RFC 4443 §2.4 c).</summary>
    public const int MinMtu = 1280;

    /// <summary>RA defaults, as VPP's ip6-nd (and RFC 4861 §6.2.1): router lifetime 3 × the 600 s maximum interval, prefixes valid 30 days, preferred 7.</summary>
    public const ushort RouterLifetimeSeconds = 1800;
    public const uint PrefixValidSeconds = 2_592_000, PrefixPreferredSeconds = 604_800;
    public const byte AdvertisedHopLimit = 64;

    /// <summary>Rewrites an ICMPv6 echo request to the router into the echo reply.</summary>
    public static bool EchoReplyInPlace(Packet p, ulong routerMac)
    {
        var d = p.Data;
        if (!IPv6Header.TryCreate(d[Eth..], out var ip) || ip.NextHeader != IpProtocols.IcmpV6) return false;
        var icmp = ip.Payload;
        if (icmp.Length < 8 || icmp[0] != IcmpV6Header.EchoRequest) return false;
        ulong src = MacAddress.Read(d[6..]);
        MacAddress.Write(d, src);
        MacAddress.Write(d[6..], routerMac);
        // Swapping the addresses leaves the pseudo-header's sum as it was: only the type changes.
        UInt128 a = ip.Source;
        ip.Source = ip.Destination;
        ip.Destination = a;
        ip.HopLimit = 64;
        ushort old = BinaryPrimitives.ReadUInt16BigEndian(icmp);
        icmp[0] = IcmpV6Header.EchoReply;
        ushort sum = BinaryPrimitives.ReadUInt16BigEndian(icmp[2..]);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], Checksum.Update(sum, old, BinaryPrimitives.ReadUInt16BigEndian(icmp)));
        return true;
    }

    /// <summary>
    /// Writes into <paramref name="reply"/> an ICMPv6 error (RFC 4443) about the IPv6 packet in
    /// <paramref name="original"/>, from the router's address on the ingress network to the packet's
    /// source: as much of the packet as keeps the error within the minimum MTU. False when RFC 4443
    /// §2.4 (e) forbids an error: about an ICMPv6 error, to a multicast destination (packet too big
    /// excepted), or from an unspecified or multicast source.
    /// </summary>
    public static bool IcmpError(Packet original, Packet reply, RouterInterface r, byte type, byte code, uint mtuOrPointer)
    {
        var o = original.Data;
        if (!IPv6Header.TryCreate(o[Eth..], out var ip)) return false;
        UInt128 src = ip.Source, dst = ip.Destination;
        if (src == UInt128.Zero || Ndp.IsMulticast(src)) return false;
        if (Ndp.IsMulticast(dst) && type != Router6.IcmpPacketTooBig) return false;
        if (ip.NextHeader == IpProtocols.IcmpV6 && ip.Payload.Length > 0 && ip.Payload[0] < 128) return false;
        int quoted = Math.Min(Ip6 + ip.PayloadLength, MinMtu - Ip6 - 8);
        var d = reply.ReceiveBuffer();
        // From the gateway address, or the link-local one to a link-local source (the answer must stay on its link).
        UInt128 from = Ndp.IsLinkLocal(src) ? r.LinkLocal6 : r.Address6;
        o.Slice(Eth, quoted).CopyTo(d[(Headers + 8)..]);
        var icmp = IcmpV6Header.Write(d.Slice(Headers, 8 + quoted), new IcmpV6Fields(type, code, mtuOrPointer));
        WriteHeaders(d, MacAddress.Read(o[6..]), r.Mac, from, src, 8 + quoted, 64);
        icmp.FillChecksum(from, src);
        reply.SetLength(Headers + 8 + quoted);
        reply.InPort = original.InPort;
        reply.Vlan = original.Vlan;
        reply.TunnelId = original.TunnelId;
        reply.TunnelRemote = original.TunnelRemote;
        return true;
    }

    /// <summary>
    /// A neighbour solicitation for <paramref name="target"/>: to its solicited-node group (resolution),
    /// or with <paramref name="unicastMac"/> to the address itself (a PROBE); with the router's source
    /// link-layer option, from its gateway address when the target is in the subnet, else its link-local one.
    /// </summary>
    public static void NeighborSolicitation(Packet p, RouterInterface r, UInt128 target, ulong unicastMac)
    {
        var d = p.ReceiveBuffer();
        UInt128 dst = unicastMac != 0 ? target : Ndp.SolicitedNode(target);
        ulong dstMac = unicastMac != 0 ? unicastMac : Ndp.MulticastMac(dst);
        UInt128 from = r.OnLink6(target) ? r.Address6 : r.LinkLocal6;
        const int len = Ndp.NsLength + 8;
        var m = d.Slice(Headers, len);
        var icmp = IcmpV6Header.Write(m, new IcmpV6Fields(Ndp.NeighborSolicitation, 0, 0));
        BinaryPrimitives.WriteUInt128BigEndian(m[8..], target);
        Ndp.WriteLinkLayerOption(m[Ndp.NsLength..], Ndp.OptSourceLinkLayer, r.Mac);
        WriteHeaders(d, dstMac, r.Mac, from, dst, len, Ndp.HopLimit);
        icmp.FillChecksum(from, dst);
        p.SetLength(Headers + len);
    }

    /// <summary>
    /// A neighbour advertisement for the router's own <paramref name="target"/> (RFC 4861 §7.2.4):
    /// Router set, Override set (the address is the router's alone), Solicited when answering a
    /// solicitation from an address (to all-nodes otherwise), with the router's MAC as target link-layer option.
    /// </summary>
    public static void NeighborAdvertisement(Packet p, RouterInterface r, UInt128 target, UInt128 dst, ulong dstMac, bool solicited)
    {
        var d = p.ReceiveBuffer();
        const int len = Ndp.NsLength + 8;
        var m = d.Slice(Headers, len);
        uint flags = Ndp.FlagRouter | Ndp.FlagOverride | (solicited ? Ndp.FlagSolicited : 0);
        var icmp = IcmpV6Header.Write(m, new IcmpV6Fields(Ndp.NeighborAdvertisement, 0, flags));
        BinaryPrimitives.WriteUInt128BigEndian(m[8..], target);
        Ndp.WriteLinkLayerOption(m[Ndp.NsLength..], Ndp.OptTargetLinkLayer, r.Mac);
        WriteHeaders(d, dstMac, r.Mac, target, dst, len, Ndp.HopLimit);
        icmp.FillChecksum(target, dst);
        p.SetLength(Headers + len);
    }

    /// <summary>
    /// A router advertisement (RFC 4861 §4.2, §6.2.3) from the router's link-local address: hop limit
    /// 64, router lifetime <see cref="RouterLifetimeSeconds"/>, its MAC, the network's MTU, and the
    /// network's prefix, on-link, autonomous when SLAAC is on for the network and the prefix is a /64
    /// (RFC 4862 §5.5.3 forms addresses from /64 prefixes only).
    /// </summary>
    public static void RouterAdvertisement(Packet p, RouterInterface r, int mtu, UInt128 dst, ulong dstMac)
    {
        var d = p.ReceiveBuffer();
        const int len = Ndp.RaLength + 8 + 8 + 32;
        var m = d.Slice(Headers, len);
        // Hop limit, flags (M=0, O=0: addresses by SLAAC, no DHCPv6), router lifetime.
        var icmp = IcmpV6Header.Write(m, new IcmpV6Fields(Ndp.RouterAdvertisement, 0, (uint)AdvertisedHopLimit << 24 | RouterLifetimeSeconds));
        BinaryPrimitives.WriteUInt32BigEndian(m[8..], 0);  // reachable time: unspecified
        BinaryPrimitives.WriteUInt32BigEndian(m[12..], 0); // retrans timer: unspecified
        int o = Ndp.RaLength;
        o += Ndp.WriteLinkLayerOption(m[o..], Ndp.OptSourceLinkLayer, r.Mac);
        o += Ndp.WriteMtuOption(m[o..], (uint)mtu);
        Ndp.WritePrefixOption(m[o..], r.Subnet6, r.PrefixLength6, r.Slaac && r.PrefixLength6 == 64, PrefixValidSeconds, PrefixPreferredSeconds);
        WriteHeaders(d, dstMac, r.Mac, r.LinkLocal6, dst, len, Ndp.HopLimit);
        icmp.FillChecksum(r.LinkLocal6, dst);
        p.SetLength(Headers + len);
    }

    private static void WriteHeaders(Span<byte> d, ulong dstMac, ulong srcMac, UInt128 src, UInt128 dst, int payload, byte hopLimit)
    {
        EthernetHeader.Write(d, new EthernetFields(dstMac, srcMac, EtherTypes.IPv6));
        IPv6Header.Write(d[Eth..], new IPv6Fields(0, 0, IpProtocols.IcmpV6, hopLimit, src, dst), payload);
    }
}
