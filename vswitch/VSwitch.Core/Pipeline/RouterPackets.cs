using System.Buffers.Binary;
using VSwitch.Core.Buffers;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// The frames the router writes: ARP and ICMP echo replies (in place, over the request), ARP
/// requests for next hops and ICMP errors (in a fresh buffer). Frames inside the switch are
/// untagged (their VLAN is metadata), so every offset here starts at a 14-byte Ethernet header.
/// </summary>
public static class RouterPackets
{
    private const int Eth = 14;

    /// <summary>Rewrites an ARP request for the router's address into its reply. False when the frame is not such a request.</summary>
    public static bool ArpReplyInPlace(Packet p, ulong routerMac)
    {
        var d = p.Data;
        if (d.Length < Eth + 28 || !ArpPacket.TryCreate(d[Eth..], out var arp) || arp.Operation != 1) return false;
        ulong sha = arp.SenderHardware;
        uint spa = arp.SenderProtocol, tpa = arp.TargetProtocol;
        ArpPacket.Write(d[Eth..], new ArpFields(2, routerMac, tpa, sha, spa));
        MacAddress.Write(d, sha);
        MacAddress.Write(d[6..], routerMac);
        return true;
    }

    /// <summary>Rewrites an ICMP echo request to the router into the echo reply.</summary>
    public static bool EchoReplyInPlace(Packet p, ulong routerMac)
    {
        if (p.Key.IsIPv6) return Router6Packets.EchoReplyInPlace(p, routerMac);
        var d = p.Data;
        if (!IPv4Header.TryCreate(d[Eth..], out var ip) || ip.Protocol != IpProtocols.Icmp) return false;
        var icmpBytes = d.Slice(Eth + ip.HeaderLength, ip.TotalLength - ip.HeaderLength);
        if (icmpBytes.Length < 8 || icmpBytes[0] != 8) return false;
        ulong src = MacAddress.Read(d[6..]);
        MacAddress.Write(d, src);
        MacAddress.Write(d[6..], routerMac);
        uint a = ip.Source;
        ip.Source = ip.Destination;
        ip.Destination = a;
        ip.Ttl = 64;
        ip.FillChecksum();
        ushort old = BinaryPrimitives.ReadUInt16BigEndian(icmpBytes);
        icmpBytes[0] = 0; // echo reply
        ushort sum = BinaryPrimitives.ReadUInt16BigEndian(icmpBytes[2..]);
        BinaryPrimitives.WriteUInt16BigEndian(icmpBytes[2..], Checksum.Update(sum, old, BinaryPrimitives.ReadUInt16BigEndian(icmpBytes)));
        return true;
    }

    /// <summary>Writes a broadcast ARP request from the router's interface asking who has <paramref name="target"/>.</summary>
    public static void ArpRequest(Packet p, RouterInterface r, uint target)
    {
        var d = p.ReceiveBuffer();
        EthernetHeader.Write(d, new EthernetFields(MacAddress.Broadcast, r.Mac, EtherTypes.Arp));
        ArpPacket.Write(d[Eth..], new ArpFields(1, r.Mac, r.Address, 0, target));
        d.Slice(Eth + 28, 60 - Eth - 28).Clear(); // pad to the Ethernet minimum
        p.SetLength(60);
    }

    /// <summary>
    /// Writes into <paramref name="reply"/> an ICMP error (RFC 792, RFC 1812 4.3.2.3) about the
    /// IPv4 datagram in <paramref name="original"/>, from the router's interface <paramref name="r"/>
    /// to the datagram's sender: as much of the datagram as fits in 576 bytes.
    /// </summary>
    public static bool IcmpError(Packet original, Packet reply, RouterInterface r, byte type, byte code, ushort mtu)
    {
        var o = original.Data;
        if (!IPv4Header.TryCreate(o[Eth..], out var ip)) return false;
        // Never answer an error with an error, nor a fragment after the first (RFC 1812 4.3.2.7).
        if (ip.FragmentOffset != 0) return false;
        if (ip.Protocol == IpProtocols.Icmp && ip.TotalLength > ip.HeaderLength)
        {
            byte t = o[Eth + ip.HeaderLength];
            if (t is not (0 or 8 or 13 or 14 or 15 or 16 or 17 or 18)) return false;
        }
        int quoted = Math.Min((int)ip.TotalLength, 576 - 20 - 8);
        var d = reply.ReceiveBuffer();
        ulong dst = MacAddress.Read(o[6..]);
        EthernetHeader.Write(d, new EthernetFields(dst, r.Mac, EtherTypes.IPv4));
        o.Slice(Eth, quoted).CopyTo(d[(Eth + 28)..]);
        var icmp = IcmpHeader.Write(d.Slice(Eth + 20, 8 + quoted), new IcmpFields(type, code, mtu));
        icmp.FillChecksum();
        IPv4Header.Write(d[Eth..], new IPv4Fields(0xC0, 0, false, false, 0, 64, IpProtocols.Icmp, r.Address, ip.Source), 8 + quoted);
        reply.SetLength(Eth + 20 + 8 + quoted);
        reply.InPort = original.InPort;
        reply.Vlan = original.Vlan;
        reply.TunnelId = original.TunnelId;
        reply.TunnelRemote = original.TunnelRemote;
        return true;
    }

    /// <summary>Whether the IPv4 datagram in the frame has Don't Fragment set.</summary>
    public static bool DontFragment(Packet p) =>
        p.Length >= Eth + 20 && (p.Data[Eth + 6] & 0x40) != 0;
}
