using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace VSwitchd.Capture;

/// <summary>
/// Writes pcapng (draft-ietf-opsawg-pcapng), little-endian: a Section Header Block, an Interface Description
/// Block per switch port (link type Ethernet, nanosecond timestamps), an Enhanced Packet Block per frame (the
/// direction in epb_flags, a drop's reason as its comment) and, at the end, an Interface Statistics Block per
/// interface. tcpdump, tshark and Wireshark read it, also from a pipe, since every block stands alone.
/// </summary>
public sealed class PcapngWriter(IBufferWriter<byte> output)
{
    private const uint SectionHeader = 0x0A0D0D0A, InterfaceDescription = 1, InterfaceStatistics = 5, EnhancedPacket = 6;
    private const ushort EndOfOptions = 0, Comment = 1;
    private const ushort ShbUserApplication = 4;
    private const ushort IfName = 2, IfDescription = 3, IfTsResol = 9;
    private const ushort EpbFlags = 2;
    private const ushort IsbStartTime = 2, IsbEndTime = 3, IsbIfRecv = 4, IsbOsDrop = 7, IsbUsrDeliv = 8;
    public const ushort LinkTypeEthernet = 1;

    /// <summary>epb_flags: bits 0-1 are the direction (01 inbound, 10 outbound).</summary>
    public const uint Inbound = 1, Outbound = 2;

    public void WriteSectionHeader(string application)
    {
        byte[] app = Encoding.UTF8.GetBytes(application);
        int total = 12 + 16 + Option(app.Length) + 4 + 4;
        var b = Begin(SectionHeader, total);
        BinaryPrimitives.WriteUInt32LittleEndian(b[8..], 0x1A2B3C4D);
        BinaryPrimitives.WriteUInt16LittleEndian(b[12..], 1);
        BinaryPrimitives.WriteUInt16LittleEndian(b[14..], 0);
        BinaryPrimitives.WriteInt64LittleEndian(b[16..], -1); // section length unknown: it is streamed
        int at = 24;
        at += PutOption(b[at..], ShbUserApplication, app);
        at += PutEnd(b[at..]);
        End(b, total);
    }

    /// <summary>An interface: its index is the order of these blocks in the section, from 0.</summary>
    public void WriteInterface(string name, string description, int snapLength)
    {
        byte[] n = Encoding.UTF8.GetBytes(name), d = Encoding.UTF8.GetBytes(description);
        int total = 8 + 8 + Option(n.Length) + Option(d.Length) + Option(1) + 4 + 4;
        var b = Begin(InterfaceDescription, total);
        BinaryPrimitives.WriteUInt16LittleEndian(b[8..], LinkTypeEthernet);
        BinaryPrimitives.WriteUInt16LittleEndian(b[10..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(b[12..], (uint)snapLength);
        int at = 16;
        at += PutOption(b[at..], IfName, n);
        at += PutOption(b[at..], IfDescription, d);
        at += PutOption(b[at..], IfTsResol, [9]); // 10^-9: nanoseconds
        at += PutEnd(b[at..]);
        End(b, total);
    }

    public void WritePacket(int iface, long timestampNs, ReadOnlySpan<byte> frame, int originalLength, uint flags, string? comment)
    {
        byte[]? c = comment is null ? null : Encoding.UTF8.GetBytes(comment);
        int total = 8 + 20 + Pad(frame.Length) + Option(4) + (c is null ? 0 : Option(c.Length)) + 4 + 4;
        var b = Begin(EnhancedPacket, total);
        BinaryPrimitives.WriteUInt32LittleEndian(b[8..], (uint)iface);
        PutTimestamp(b[12..], timestampNs);
        BinaryPrimitives.WriteUInt32LittleEndian(b[20..], (uint)frame.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(b[24..], (uint)originalLength);
        frame.CopyTo(b[28..]);
        int at = 28 + Pad(frame.Length);
        b[(28 + frame.Length)..at].Clear();
        Span<byte> f = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(f, flags);
        at += PutOption(b[at..], EpbFlags, f);
        if (c is not null) at += PutOption(b[at..], Comment, c);
        at += PutEnd(b[at..]);
        End(b, total);
    }

    /// <summary>The end of a capture on one interface: frames received, lost by the capture (osdrop), delivered.</summary>
    public void WriteStatistics(int iface, long startNs, long endNs, long received, long lost, long delivered, string comment)
    {
        byte[] c = Encoding.UTF8.GetBytes(comment);
        int total = 8 + 12 + 5 * Option(8) + Option(c.Length) + 4 + 4;
        var b = Begin(InterfaceStatistics, total);
        BinaryPrimitives.WriteUInt32LittleEndian(b[8..], (uint)iface);
        PutTimestamp(b[12..], endNs);
        int at = 20;
        Span<byte> v = stackalloc byte[8];
        PutTimestamp(v, startNs);
        at += PutOption(b[at..], IsbStartTime, v);
        PutTimestamp(v, endNs);
        at += PutOption(b[at..], IsbEndTime, v);
        BinaryPrimitives.WriteInt64LittleEndian(v, received);
        at += PutOption(b[at..], IsbIfRecv, v);
        BinaryPrimitives.WriteInt64LittleEndian(v, lost);
        at += PutOption(b[at..], IsbOsDrop, v);
        BinaryPrimitives.WriteInt64LittleEndian(v, delivered);
        at += PutOption(b[at..], IsbUsrDeliv, v);
        at += PutOption(b[at..], Comment, c);
        at += PutEnd(b[at..]);
        End(b, total);
    }

    private static int Pad(int n) => (n + 3) & ~3;

    private static int Option(int valueLength) => 4 + Pad(valueLength);

    private Span<byte> Begin(uint type, int total)
    {
        var b = output.GetSpan(total)[..total];
        BinaryPrimitives.WriteUInt32LittleEndian(b, type);
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], (uint)total);
        return b;
    }

    private void End(Span<byte> b, int total)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(b[(total - 4)..], (uint)total);
        output.Advance(total);
    }

    /// <summary>A timestamp as pcapng has it: the upper 32 bits, then the lower 32 bits, in nanoseconds (if_tsresol 9).</summary>
    private static void PutTimestamp(Span<byte> b, long ns)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)((ulong)ns >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], (uint)ns);
    }

    private static int PutOption(Span<byte> b, ushort code, ReadOnlySpan<byte> value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(b, code);
        BinaryPrimitives.WriteUInt16LittleEndian(b[2..], (ushort)value.Length);
        value.CopyTo(b[4..]);
        int padded = Pad(value.Length);
        b.Slice(4 + value.Length, padded - value.Length).Clear();
        return 4 + padded;
    }

    private static int PutEnd(Span<byte> b)
    {
        b[..4].Clear();
        return 4;
    }
}
