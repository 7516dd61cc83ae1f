using System.Buffers.Binary;

namespace VSwitch.Core.Wire;

/// <summary>
/// Neighbour Solicitation and Advertisement (RFC 4861 §4.3, §4.4) over an ICMPv6 message: the target
/// address, then options of 8-byte units. Only what port security checks: the target and the
/// source/target link-layer address options.
/// </summary>
public readonly ref struct NeighborDiscovery
{
    private readonly ReadOnlySpan<byte> _b;

    /// <summary>ICMPv6 header (4) + reserved/flags (4) + target (16).</summary>
    public const int MinLength = 24;
    public const byte SourceLinkLayerOption = 1;
    public const byte TargetLinkLayerOption = 2;

    private NeighborDiscovery(ReadOnlySpan<byte> b) => _b = b;

    public static bool TryCreate(ReadOnlySpan<byte> icmp, out NeighborDiscovery view)
    {
        view = default;
        if (icmp.Length < MinLength) return false;
        view = new NeighborDiscovery(icmp);
        return true;
    }

    public byte Type => _b[0];
    public UInt128 Target => BinaryPrimitives.ReadUInt128BigEndian(_b[8..]);

    /// <summary>
    /// Every link-layer address option of <paramref name="optionType"/> must carry <paramref name="mac"/>.
    /// False also for malformed options (a zero length, or one running past the message), which hosts
    /// discard anyway (RFC 4861 §4.6).
    /// </summary>
    public bool LinkLayerOptionsAre(byte optionType, ulong mac)
    {
        var opts = _b[MinLength..];
        while (opts.Length > 0)
        {
            if (opts.Length < 2) return false;
            int len = opts[1] * 8;
            if (len == 0 || len > opts.Length) return false;
            if (opts[0] == optionType && (len < 8 || MacAddress.Read(opts.Slice(2, 6)) != mac)) return false;
            opts = opts[len..];
        }
        return true;
    }
}
