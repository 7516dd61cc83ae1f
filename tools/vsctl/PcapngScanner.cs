using System.Buffers.Binary;
using System.Text;

namespace VSwitch.Ctl;

/// <summary>
/// Follows the pcapng blocks of a capture as its bytes pass through vsctl (which copies them out unchanged): it
/// counts the packets, knows the interfaces' names, and reads the statistics vswitchd writes at the end (frames
/// captured, lost to a full ring, delivered). Little-endian only, as vswitchd writes it.
/// </summary>
public sealed class PcapngScanner
{
    private byte[] _buffer = new byte[1 << 16];
    private int _count;
    private readonly List<string> _interfaces = [];

    public long Packets { get; private set; }
    /// <summary>True once the statistics block came: the capture ended as vswitchd meant it to.</summary>
    public bool HasStatistics { get; private set; }
    public long Captured { get; private set; }
    public long Lost { get; private set; }
    public long Delivered { get; private set; }

    /// <summary>Called for each packet: interface name, time (ns since the epoch), inbound, the captured bytes, original length, comment.</summary>
    public Action<string, long, bool, ReadOnlyMemory<byte>, int, string?>? OnPacket { get; set; }

    public void Feed(ReadOnlySpan<byte> data)
    {
        if (_count + data.Length > _buffer.Length) Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _count + data.Length));
        data.CopyTo(_buffer.AsSpan(_count));
        _count += data.Length;
        int at = 0;
        while (_count - at >= 12)
        {
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(_buffer.AsSpan(at));
            int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(_buffer.AsSpan(at + 4));
            if (length < 12 || length % 4 != 0) throw new CtlException($"vswitchd sent a capture vsctl cannot read (a pcapng block of {length} bytes)");
            if (_count - at < length) break;
            Block(type, _buffer.AsMemory(at, length));
            at += length;
        }
        Array.Copy(_buffer, at, _buffer, 0, _count - at);
        _count -= at;
    }

    private void Block(uint type, ReadOnlyMemory<byte> block)
    {
        var b = block.Span;
        switch (type)
        {
            case 1: // interface description
                _interfaces.Add(Options(b, 16, b.Length - 4).FirstOrDefault(o => o.Code == 2) is { Value: { } ifName } ? Encoding.UTF8.GetString(ifName) : $"if{_interfaces.Count}");
                break;
            case 6: // enhanced packet
            {
                Packets++;
                if (OnPacket is null) break;
                int iface = (int)BinaryPrimitives.ReadUInt32LittleEndian(b[8..]);
                long ts = (long)(((ulong)BinaryPrimitives.ReadUInt32LittleEndian(b[12..]) << 32) | BinaryPrimitives.ReadUInt32LittleEndian(b[16..]));
                int caplen = (int)BinaryPrimitives.ReadUInt32LittleEndian(b[20..]);
                int origlen = (int)BinaryPrimitives.ReadUInt32LittleEndian(b[24..]);
                bool inbound = true;
                string? comment = null;
                foreach (var (code, value) in Options(b, 28 + ((caplen + 3) & ~3), b.Length - 4))
                {
                    if (code == 2 && value.Length >= 4) inbound = (BinaryPrimitives.ReadUInt32LittleEndian(value) & 3) != 2;
                    if (code == 1) comment = Encoding.UTF8.GetString(value);
                }
                string name = iface < _interfaces.Count ? _interfaces[iface] : $"if{iface}";
                OnPacket(name, ts, inbound, block.Slice(28, caplen), origlen, comment);
                break;
            }
            case 5: // interface statistics
                HasStatistics = true;
                foreach (var (code, value) in Options(b, 20, b.Length - 4))
                {
                    if (value.Length != 8) continue;
                    long v = BinaryPrimitives.ReadInt64LittleEndian(value);
                    if (code == 4) Captured += v;
                    else if (code == 7) Lost += v;
                    else if (code == 8) Delivered += v;
                }
                break;
        }
    }

    private static List<(ushort Code, byte[] Value)> Options(ReadOnlySpan<byte> b, int at, int end)
    {
        var list = new List<(ushort, byte[])>();
        while (at + 4 <= end)
        {
            ushort code = BinaryPrimitives.ReadUInt16LittleEndian(b[at..]);
            int len = BinaryPrimitives.ReadUInt16LittleEndian(b[(at + 2)..]);
            if (code == 0 || at + 4 + len > end) break;
            list.Add((code, b.Slice(at + 4, len).ToArray()));
            at += 4 + ((len + 3) & ~3);
        }
        return list;
    }
}
