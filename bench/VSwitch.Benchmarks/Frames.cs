using VSwitch.Core.Pipeline;
using VSwitch.Core.Wire;

namespace VSwitch.Benchmarks;

/// <summary>64-byte test frames (without FCS) built with the Wire writers.</summary>
public static class Frames
{
    public const int Size = 64;
    public static ulong Mac(int n) => 0x02_00_00_00_00_00UL | (uint)n;
    private const uint SrcIp = 0x0A00_0001, DstIp = 0x0A00_0002;

    public static byte[] Udp(ulong dst, ulong src, ushort srcPort = 5000, ushort dstPort = 6000)
    {
        var f = new byte[Size];
        EthernetHeader.Write(f, new EthernetFields(dst, src, EtherTypes.IPv4));
        WriteUdpIPv4(f.AsSpan(EthernetHeader.HeaderLength), srcPort, dstPort);
        return f;
    }

    public static byte[] Tcp(ulong dst, ulong src)
    {
        var f = new byte[Size];
        EthernetHeader.Write(f, new EthernetFields(dst, src, EtherTypes.IPv4));
        var ipSpan = f.AsSpan(EthernetHeader.HeaderLength);
        int payload = ipSpan.Length - IPv4Header.MinHeaderLength;
        IPv4Header.Write(ipSpan, new IPv4Fields(0, 1, true, false, 0, 64, IpProtocols.Tcp, SrcIp, DstIp), payload);
        var tcp = TcpHeader.Write(ipSpan.Slice(IPv4Header.MinHeaderLength, payload),
            new TcpFields(40000, 80, 1000, 2000, TcpFlags.Ack, 65535, 0));
        tcp.FillChecksum(SrcIp, DstIp);
        return f;
    }

    public static byte[] VlanUdp(ulong dst, ulong src, ushort vlan)
    {
        var f = new byte[Size];
        EthernetHeader.Write(f, new EthernetFields(dst, src, EtherTypes.Vlan));
        VlanTag.Write(f.AsSpan(EthernetHeader.HeaderLength), new VlanFields(0, false, vlan, EtherTypes.IPv4));
        WriteUdpIPv4(f.AsSpan(EthernetHeader.HeaderLength + 4));
        return f;
    }

    public static byte[] Arp(ulong src)
    {
        var f = new byte[Size]; // 42 bytes of ARP, padded to 64
        EthernetHeader.Write(f, new EthernetFields(MacAddress.Broadcast, src, EtherTypes.Arp));
        ArpPacket.Write(f.AsSpan(EthernetHeader.HeaderLength), new ArpFields(ArpPacket.OpRequest, src, SrcIp, 0, DstIp));
        return f;
    }

    private static void WriteUdpIPv4(Span<byte> ipSpan, ushort srcPort = 5000, ushort dstPort = 6000)
    {
        int payload = ipSpan.Length - IPv4Header.MinHeaderLength;
        IPv4Header.Write(ipSpan, new IPv4Fields(0, 1, true, false, 0, 64, IpProtocols.Udp, SrcIp, DstIp), payload);
        var udp = UdpHeader.Write(ipSpan.Slice(IPv4Header.MinHeaderLength, payload), new UdpFields(srcPort, dstPort),
            payload - UdpHeader.HeaderLength);
        udp.FillChecksum(SrcIp, DstIp);
    }
}
