using System.Buffers.Binary;

namespace VSwitchd.Ipfix;

/// <summary>One flow record as exported: the fields of the templates below, in host terms.</summary>
public struct FlowRecord
{
    public bool IPv6;
    public UInt128 Source, Destination;
    public ushort SourcePort, DestinationPort, TcpFlags, Vlan;
    public byte Protocol, EndReason;
    public uint Ingress, Egress;
    public ulong Layer2SegmentId;
    public long Packets, Octets, StartMs, EndMs;
}

/// <summary>
/// Builds IPFIX messages (RFC 7011): the 16-byte header, a template set with the two templates (IPv4 and IPv6 flows,
/// the fields Open vSwitch exports for them) and data sets of flow records. Field ids are IANA's information elements.
/// </summary>
public static class IpfixMessage
{
    public const ushort Version = 10;
    public const ushort TemplateSetId = 2;
    public const ushort IPv4Template = 256, IPv6Template = 257;
    /// <summary>Room for a message in one unfragmented UDP datagram on a 1500-byte path.</summary>
    public const int MaxMessage = 1400;
    public const byte IdleTimeout = 1, ActiveTimeout = 2, ForcedEnd = 4;

    // (information element, length): the address pair first (IPv4 8/12 or IPv6 27/28), then the rest.
    private static readonly (ushort Id, ushort Length)[] Common =
    [
        (7, 2),    // sourceTransportPort
        (11, 2),   // destinationTransportPort (ICMP: type << 8 | code, as NetFlow collectors read it)
        (4, 1),    // protocolIdentifier
        (6, 2),    // tcpControlBits
        (10, 4),   // ingressInterface (switch port id)
        (14, 4),   // egressInterface (the first output port; 0 when none)
        (58, 2),   // vlanId
        (351, 8),  // layer2SegmentId (RFC 7133: VXLAN 0x01 << 56 | VNI; 0 when not tunnelled)
        (2, 8),    // packetDeltaCount
        (1, 8),    // octetDeltaCount (IP octets: the frame without its Ethernet header)
        (152, 8),  // flowStartMilliseconds
        (153, 8),  // flowEndMilliseconds
        (136, 1),  // flowEndReason
    ];

    public static int RecordLength(bool ipv6) => (ipv6 ? 32 : 8) + 58;

    /// <summary>The template set announcing both templates.</summary>
    public static int WriteTemplates(Span<byte> b)
    {
        int at = 4;
        foreach (bool v6 in new[] { false, true })
        {
            BinaryPrimitives.WriteUInt16BigEndian(b[at..], v6 ? IPv6Template : IPv4Template);
            BinaryPrimitives.WriteUInt16BigEndian(b[(at + 2)..], (ushort)(Common.Length + 2));
            at += 4;
            foreach (var (id, len) in (ReadOnlySpan<(ushort, ushort)>)[v6 ? ((ushort)27, (ushort)16) : ((ushort)8, (ushort)4), v6 ? ((ushort)28, (ushort)16) : ((ushort)12, (ushort)4), .. Common])
            {
                BinaryPrimitives.WriteUInt16BigEndian(b[at..], id);
                BinaryPrimitives.WriteUInt16BigEndian(b[(at + 2)..], len);
                at += 4;
            }
        }
        BinaryPrimitives.WriteUInt16BigEndian(b, TemplateSetId);
        BinaryPrimitives.WriteUInt16BigEndian(b[2..], (ushort)at);
        return at;
    }

    /// <summary>A data set of records of one template (all IPv4 or all IPv6).</summary>
    public static int WriteDataSet(Span<byte> b, ReadOnlySpan<FlowRecord> records, bool ipv6)
    {
        int at = 4;
        foreach (ref readonly var r in records)
        {
            if (ipv6)
            {
                BinaryPrimitives.WriteUInt128BigEndian(b[at..], r.Source);
                BinaryPrimitives.WriteUInt128BigEndian(b[(at + 16)..], r.Destination);
                at += 32;
            }
            else
            {
                BinaryPrimitives.WriteUInt32BigEndian(b[at..], (uint)r.Source);
                BinaryPrimitives.WriteUInt32BigEndian(b[(at + 4)..], (uint)r.Destination);
                at += 8;
            }
            BinaryPrimitives.WriteUInt16BigEndian(b[at..], r.SourcePort);
            BinaryPrimitives.WriteUInt16BigEndian(b[(at + 2)..], r.DestinationPort);
            b[at + 4] = r.Protocol;
            BinaryPrimitives.WriteUInt16BigEndian(b[(at + 5)..], r.TcpFlags);
            BinaryPrimitives.WriteUInt32BigEndian(b[(at + 7)..], r.Ingress);
            BinaryPrimitives.WriteUInt32BigEndian(b[(at + 11)..], r.Egress);
            BinaryPrimitives.WriteUInt16BigEndian(b[(at + 15)..], r.Vlan);
            BinaryPrimitives.WriteUInt64BigEndian(b[(at + 17)..], r.Layer2SegmentId);
            BinaryPrimitives.WriteInt64BigEndian(b[(at + 25)..], r.Packets);
            BinaryPrimitives.WriteInt64BigEndian(b[(at + 33)..], r.Octets);
            BinaryPrimitives.WriteInt64BigEndian(b[(at + 41)..], r.StartMs);
            BinaryPrimitives.WriteInt64BigEndian(b[(at + 49)..], r.EndMs);
            b[at + 57] = r.EndReason;
            at += 58;
        }
        BinaryPrimitives.WriteUInt16BigEndian(b, ipv6 ? IPv6Template : IPv4Template);
        BinaryPrimitives.WriteUInt16BigEndian(b[2..], (ushort)at);
        return at;
    }

    /// <summary>The message header, once the sets behind it are written (<paramref name="length"/> includes it).</summary>
    public static void WriteHeader(Span<byte> b, int length, uint exportSeconds, uint sequence, uint domain)
    {
        BinaryPrimitives.WriteUInt16BigEndian(b, Version);
        BinaryPrimitives.WriteUInt16BigEndian(b[2..], (ushort)length);
        BinaryPrimitives.WriteUInt32BigEndian(b[4..], exportSeconds);
        BinaryPrimitives.WriteUInt32BigEndian(b[8..], sequence);
        BinaryPrimitives.WriteUInt32BigEndian(b[12..], domain);
    }
}
