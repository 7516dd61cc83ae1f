using VSwitch.Core.Pipeline;
using VSwitch.Core.Wire;
using VSwitch.Overlay.Wire;

namespace VSwitch.Core.Tests;

/// <summary>Builds valid frames of every kind Classify understands, through the Wire writers.</summary>
internal static class Frames
{
    public const ulong Src = 0x02_00_00_00_00_01;
    public const ulong Dst = 0x02_00_00_00_00_02;
    public const uint Ip1 = 0x0A000001; // 10.0.0.1
    public const uint Ip2 = 0x0A000002;
    public static readonly UInt128 Ip6a = new(0x2001_0db8_0000_0000, 1);
    public static readonly UInt128 Ip6b = new(0x2001_0db8_0000_0000, 2);
    public static readonly byte[] Ipv4Options = [0x94, 0x04, 0x00, 0x00]; // router alert

    public static int L2(Span<byte> b, ushort etherType, int tags = 0, bool qinq = false)
    {
        if (tags == 0) { EthernetHeader.Write(b, new(Dst, Src, etherType)); return 14; }
        EthernetHeader.Write(b, new(Dst, Src, qinq ? EtherTypes.QinQ : EtherTypes.Vlan));
        if (tags == 1) { VlanTag.Write(b[14..], new(5, false, 100, etherType)); return 18; }
        VlanTag.Write(b[14..], new(5, false, 100, EtherTypes.Vlan));
        VlanTag.Write(b[18..], new(2, true, 200, etherType));
        return 22;
    }

    public static byte[] Arp(int tags = 0, bool qinq = false)
    {
        var b = new byte[64]; // minimum frame: padding follows the ARP packet
        int o = L2(b, EtherTypes.Arp, tags, qinq);
        ArpPacket.Write(b.AsSpan(o), new(ArpPacket.OpRequest, Src, Ip1, 0, Ip2));
        return b;
    }

    public static byte[] IPv4(byte protocol, int l4Length, Action<byte[], int>? l4, bool options = false, ushort fragOffset = 0, bool more = false, int tags = 0, bool qinq = false)
    {
        int ihl = options ? 24 : 20;
        var b = new byte[Math.Max(60, 22 + ihl + l4Length)];
        int o = L2(b, EtherTypes.IPv4, tags, qinq);
        IPv4Header.Write(b.AsSpan(o), new(0xB8, 7, false, more, fragOffset, 64, protocol, Ip1, Ip2), l4Length, options ? Ipv4Options : default);
        l4?.Invoke(b, o + ihl);
        return b;
    }

    public static byte[] Tcp4(bool options = false) => IPv4(IpProtocols.Tcp, 20, (b, o) =>
        TcpHeader.Write(b.AsSpan(o, 20), new(1234, 80, 1, 0, TcpFlags.Syn, 65535, 0)).FillChecksum(Ip1, Ip2), options);

    public static byte[] Udp4(int payload = 4) => IPv4(IpProtocols.Udp, 8 + payload, (b, o) =>
        UdpHeader.Write(b.AsSpan(o), new(5353, 53), payload).FillChecksum(Ip1, Ip2));

    public static byte[] Icmp4() => IPv4(IpProtocols.Icmp, 8, (b, o) =>
        IcmpHeader.Write(b.AsSpan(o, 8), new(IcmpHeader.EchoRequest, 0, 0x00010001)).FillChecksum());

    /// <summary>VXLAN in UDP: an outer IPv4/UDP frame carrying an inner ARP frame.</summary>
    public static byte[] Vxlan()
    {
        var inner = Arp();
        return IPv4(IpProtocols.Udp, 8 + 8 + inner.Length, (b, o) =>
        {
            var udp = UdpHeader.Write(b.AsSpan(o), new(49152, VxlanHeader.UdpPort), 8 + inner.Length);
            VxlanHeader.Write(udp.Payload, 5001);
            inner.CopyTo(udp.Payload[8..]);
            udp.FillChecksum(Ip1, Ip2);
        });
    }

    /// <summary>IPv6 with a hop-by-hop header (8 bytes) before the upper layer, when <paramref name="hopByHop"/>.</summary>
    public static byte[] IPv6(byte protocol, int l4Length, Action<byte[], int>? l4, bool hopByHop = false, int tags = 0)
    {
        int ext = hopByHop ? 8 : 0;
        var b = new byte[22 + 40 + ext + l4Length];
        int o = L2(b, EtherTypes.IPv6, tags);
        var ip = IPv6Header.Write(b.AsSpan(o), new(0xB8, 0x12345, hopByHop ? IPv6Extensions.HopByHop : protocol, 64, Ip6a, Ip6b), ext + l4Length);
        if (hopByHop)
        {
            ip.Payload[0] = protocol;
            ip.Payload[1] = 0;          // (0 + 1) * 8 bytes
            ip.Payload[2] = 1;          // PadN option filling the rest
            ip.Payload[3] = 4;
        }
        l4?.Invoke(b, o + 40 + ext);
        return b.AsSpan(0, o + 40 + ext + l4Length).ToArray();
    }

    public static byte[] Tcp6(bool hopByHop = true) => IPv6(IpProtocols.Tcp, 20, (b, o) =>
        TcpHeader.Write(b.AsSpan(o, 20), new(1234, 443, 1, 2, TcpFlags.Syn | TcpFlags.Ack, 1000, 0)).FillChecksum(Ip6a, Ip6b), hopByHop);

    public static byte[] Udp6() => IPv6(IpProtocols.Udp, 12, (b, o) =>
        UdpHeader.Write(b.AsSpan(o), new(546, 547), 4).FillChecksum(Ip6a, Ip6b));

    public static byte[] Icmp6() => IPv6(IpProtocols.IcmpV6, 8, (b, o) =>
        IcmpV6Header.Write(b.AsSpan(o, 8), new(IcmpV6Header.EchoRequest, 0, 0x00020003)).FillChecksum(Ip6a, Ip6b));

    public static byte[] FirstFragment() => IPv4(IpProtocols.Udp, 16, (b, o) =>
        UdpHeader.Write(b.AsSpan(o), new(7, 9), 8), more: true);

    public static byte[][] All() =>
    [
        Arp(), Arp(1), Arp(2, qinq: true),
        Tcp4(), Tcp4(options: true), Udp4(), Icmp4(), Vxlan(),
        FirstFragment(), IPv4(IpProtocols.Udp, 16, null, fragOffset: 3),
        IPv4(IpProtocols.Tcp, 20, (b, o) => TcpHeader.Write(b.AsSpan(o, 20), new(1, 2, 3, 4, TcpFlags.Ack, 5, 0)), tags: 2, qinq: true),
        Tcp6(), Tcp6(false), Udp6(), Icmp6(),
    ];
}
