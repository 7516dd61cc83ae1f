using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace VSwitch.Cluster;

/// <summary>An IPv4 prefix as Flannel handles it: a base address (host bits zero) and a length.</summary>
public readonly record struct Ipv4Prefix(uint Address, int Length)
{
    public uint Mask => Length == 0 ? 0 : uint.MaxValue << (32 - Length);
    public uint Size => Length == 0 ? 0 : 1u << (32 - Length);
    public bool Contains(uint ip) => (ip & Mask) == Address;
    public bool Contains(Ipv4Prefix p) => p.Length >= Length && Contains(p.Address);

    public override string ToString() => FormatAddress(Address) + "/" + Length;

    /// <summary>The form of an etcd key under <c>subnets/</c>: <c>10.244.3.0-24</c> (Flannel's MakeSubnetKey).</summary>
    public string ToKey() => FormatAddress(Address) + "-" + Length;

    public static bool TryParseKey(string key, out Ipv4Prefix prefix) => TryParse(key.Replace('-', '/'), out prefix);

    /// <summary>Parses "10.244.0.0/16"; refuses host bits set, so a typo is not silently rounded down.</summary>
    public static bool TryParse(string? text, out Ipv4Prefix prefix)
    {
        prefix = default;
        if (text is null) return false;
        int slash = text.IndexOf('/');
        if (slash < 0 || !int.TryParse(text.AsSpan(slash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int len)
            || len is < 0 or > 32 || !TryParseAddress(text[..slash], out uint a)) return false;
        var p = new Ipv4Prefix(a, len);
        if ((a & ~p.Mask) != 0) return false;
        prefix = p;
        return true;
    }

    public static bool TryParseAddress(string? text, out uint address)
    {
        address = 0;
        if (text is null || !IPAddress.TryParse(text, out var ip) || ip.AddressFamily != AddressFamily.InterNetwork
            || text.Count(c => c == '.') != 3) return false;
        address = BinaryPrimitives.ReadUInt32BigEndian(ip.GetAddressBytes());
        return true;
    }

    public static string FormatAddress(uint a) => $"{a >> 24}.{(a >> 16) & 0xFF}.{(a >> 8) & 0xFF}.{a & 0xFF}";
}
