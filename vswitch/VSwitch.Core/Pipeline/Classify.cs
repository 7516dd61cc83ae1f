using System.Runtime.InteropServices;
using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// The first stage: parses a frame's headers once into a <see cref="FlowKey"/>, the way Open
/// vSwitch's flow_extract does. Bad frames come back as a <see cref="DropReason"/>; nothing throws
/// and nothing is allocated.
/// </summary>
public static class Classify
{
    /// <summary>Fills <see cref="Packet.Key"/> from the packet's frame and <see cref="Packet.InPort"/>.</summary>
    public static DropReason Extract(Packet p) => Extract(p.Data, p.InPort, ref p.Key);

    /// <summary>Classify only reads the frame; this overload serves callers that hold it read-only.</summary>
    public static DropReason Extract(ReadOnlySpan<byte> frame, int inPort, ref FlowKey key) =>
        Extract(MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(frame), frame.Length), inPort, ref key);

    public static DropReason Extract(Span<byte> frame, int inPort, ref FlowKey key) => ToDropReason(Parse(frame, inPort, ref key));

    /// <summary>The drop reason the switch counts for a header view's parse error.</summary>
    public static DropReason ToDropReason(ParseError error) => error switch
    {
        ParseError.None => DropReason.None,
        ParseError.RuntFrame => DropReason.RuntFrame,
        ParseError.TruncatedVlan => DropReason.TruncatedVlan,
        ParseError.TruncatedArp => DropReason.TruncatedArp,
        ParseError.BadArp => DropReason.BadArp,
        ParseError.TruncatedIPv4 => DropReason.TruncatedIPv4,
        ParseError.BadIpVersion => DropReason.BadIpVersion,
        ParseError.BadIhl => DropReason.BadIhl,
        ParseError.BadIpTotalLength => DropReason.BadIpTotalLength,
        ParseError.TruncatedIPv6 => DropReason.TruncatedIPv6,
        ParseError.BadIPv6PayloadLength => DropReason.BadIPv6PayloadLength,
        ParseError.TruncatedTcp => DropReason.TruncatedTcp,
        ParseError.BadTcpOffset => DropReason.BadTcpOffset,
        ParseError.TruncatedUdp => DropReason.TruncatedUdp,
        ParseError.BadUdpLength => DropReason.BadUdpLength,
        ParseError.TruncatedIcmp => DropReason.TruncatedIcmp,
        _ => DropReason.RuntFrame,
    };

    private static ParseError Parse(Span<byte> frame, int inPort, ref FlowKey key)
    {
        key = default;
        key.InPort = (ushort)inPort;
        if (!EthernetHeader.TryCreate(frame, out var eth, out var reason)) return reason;
        key.DlDst = eth.Destination;
        key.DlSrc = eth.Source;
        ushort type = eth.EtherType;
        var rest = eth.Payload;

        if (VlanTag.IsTpid(type))
        {
            if (!VlanTag.TryCreate(rest, out var outer, out reason)) return reason;
            key.VlanId = outer.VlanId;
            key.VlanPcp = (byte)(outer.Pcp | FlowKey.VlanPresentBit);
            key.VlanQinQ = type == EtherTypes.QinQ ? FlowKey.STagBit : (byte)0;
            type = outer.EtherType;
            rest = outer.Payload;
            // One inner tag is stepped over (QinQ, or legacy double 802.1Q); the key keeps the outer.
            if (VlanTag.IsTpid(type))
            {
                // Remembered so that ingress can refuse it: a second tag must not ride through as the frame's own.
                key.VlanQinQ |= FlowKey.InnerTagBit;
                if (!VlanTag.TryCreate(rest, out var inner, out reason)) return reason;
                type = inner.EtherType;
                rest = inner.Payload;
            }
        }
        key.DlType = type;

        return type switch
        {
            EtherTypes.IPv4 => ExtractIPv4(rest, ref key),
            EtherTypes.IPv6 => ExtractIPv6(rest, ref key),
            EtherTypes.Arp => ExtractArp(rest, ref key),
            _ => ParseError.None,
        };
    }

    private static ParseError ExtractArp(Span<byte> data, ref FlowKey key)
    {
        if (!ArpPacket.TryCreate(data, out var arp, out var reason)) return reason;
        key.NwProto = (byte)arp.Operation;
        key.NwSrc = arp.SenderProtocol;
        key.NwDst = arp.TargetProtocol;
        key.ArpSha = arp.SenderHardware;
        key.ArpTha = arp.TargetHardware;
        return ParseError.None;
    }

    private static ParseError ExtractIPv4(Span<byte> data, ref FlowKey key)
    {
        if (!IPv4Header.TryCreate(data, out var ip, out var reason)) return reason;
        key.NwSrc = ip.Source;
        key.NwDst = ip.Destination;
        key.NwProto = ip.Protocol;
        // DSCP only, as OVS's nw_tos: ECN bits change within a flow and would split it in the cache.
        key.NwTos = (byte)(ip.Tos & 0xFC);
        key.NwTtl = ip.Ttl;
        if (ip.IsFragment)
        {
            key.NwFrag = ip.FragmentOffset == 0 ? (byte)1 : (byte)2;
            if (key.NwFrag == 2) return ParseError.None;
        }
        return ExtractTransport(ip.Payload, ip.Protocol, IpProtocols.Icmp, ref key);
    }

    private static ParseError ExtractIPv6(Span<byte> data, ref FlowKey key)
    {
        if (!IPv6Header.TryCreate(data, out var ip, out var reason)) return reason;
        key.NwSrc = ip.Source;
        key.NwDst = ip.Destination;
        key.NwTos = (byte)(ip.TrafficClass & 0xFC);
        key.NwTtl = ip.HopLimit;
        var payload = ip.Payload;
        if (!IPv6Extensions.Walk(payload, ip.NextHeader, out byte protocol, out int offset, out byte fragment))
            return ParseError.TruncatedIPv6;
        key.NwProto = protocol;
        key.NwFrag = fragment;
        if (fragment == 2) return ParseError.None;
        return ExtractTransport(payload[offset..], protocol, IpProtocols.IcmpV6, ref key);
    }

    private static ParseError ExtractTransport(Span<byte> data, byte protocol, byte icmpProtocol, ref FlowKey key)
    {
        ParseError reason = ParseError.None;
        if (protocol == IpProtocols.Tcp)
        {
            if (TcpHeader.TryCreate(data, out var tcp, out reason))
            {
                key.TpSrc = tcp.SourcePort;
                key.TpDst = tcp.DestinationPort;
                key.TcpFlags = tcp.Flags;
            }
        }
        else if (protocol == IpProtocols.Udp)
        {
            if (UdpHeader.TryCreate(data, out var udp, out reason))
            {
                key.TpSrc = udp.SourcePort;
                key.TpDst = udp.DestinationPort;
            }
        }
        else if (protocol == icmpProtocol)
        {
            // ICMP and ICMPv6 share the type/code layout; the v4 view checks the length for both.
            if (IcmpHeader.TryCreate(data, out var icmp, out reason))
            {
                key.TpSrc = icmp.Type;
                key.TpDst = icmp.Code;
            }
        }
        return reason;
    }
}
