using System.Net;
using System.Text.Json;
using VSwitch.Core.Topology;
using VSwitchd.Host;

namespace VSwitchd.NorthSouth;

/// <summary>
/// A copy of the host's IPv4 main routing table and addresses, as the router needs them to masquerade:
/// which address the host would send from towards a destination (Linux's source selection: the route's
/// <c>src</c>, else the output device's address on the gateway's or destination's subnet, else its first
/// address), and the set of the host's own addresses (the ones replies can come back to). Immutable;
/// the daemon reads it again every few seconds and publishes a new one when it changed. The datapath asks
/// <see cref="SourceFor"/> on a flow-cache miss only: a walk of a small array, no allocation.
/// </summary>
public sealed class HostRoutes : IHostSourceAddress, IEquatable<HostRoutes>
{
    private readonly Route[] _routes; // longest prefix first
    public static readonly HostRoutes Empty = new([], []);

    private readonly record struct Route(uint Prefix, int Length, uint Source);

    private HostRoutes(Route[] routes, uint[] addresses)
    {
        _routes = routes;
        Addresses = addresses;
    }

    /// <summary>The host's own IPv4 addresses (not loopback, not on the switch's host ports), host order, sorted.</summary>
    public uint[] Addresses { get; }

    public uint SourceFor(uint destination)
    {
        foreach (var r in _routes)
        {
            uint mask = r.Length == 0 ? 0 : uint.MaxValue << (32 - r.Length);
            if ((destination & mask) == r.Prefix) return r.Source;
        }
        return 0;
    }

    /// <summary>Reads the host's routes and addresses (<c>ip -j</c>), leaving out the devices in <paramref name="ownDevices"/> (the host ports: the switch's own networks are not "outside").</summary>
    public static HostRoutes Read(ISet<string> ownDevices)
    {
        var addrs = NetConfig.Run(null, "ip", "-j", "-4", "addr", "show");
        var routes = NetConfig.Run(null, "ip", "-j", "-4", "route", "show", "table", "main");
        if (addrs.ExitCode != 0 || routes.ExitCode != 0) throw new IOException("ip -j: " + addrs.Output + routes.Output);
        return Parse(addrs.Output, routes.Output, ownDevices);
    }

    /// <summary>Builds the copy from <c>ip -j -4 addr show</c> and <c>ip -j -4 route show table main</c> output.</summary>
    public static HostRoutes Parse(string addrJson, string routeJson, ISet<string> ownDevices)
    {
        var byDev = new Dictionary<string, List<(uint Addr, int Len)>>();
        var all = new SortedSet<uint>();
        foreach (var link in JsonDocument.Parse(addrJson).RootElement.EnumerateArray())
        {
            string dev = link.TryGetProperty("ifname", out var n) ? n.GetString() ?? "" : "";
            if (!link.TryGetProperty("addr_info", out var infos)) continue;
            foreach (var ai in infos.EnumerateArray())
            {
                if (!ai.TryGetProperty("local", out var l) || !IPAddress.TryParse(l.GetString(), out var ip)) continue;
                uint a = ToUInt(ip);
                int len = ai.TryGetProperty("prefixlen", out var pl) ? pl.GetInt32() : 32;
                (byDev.TryGetValue(dev, out var list) ? list : byDev[dev] = []).Add((a, len));
                if ((a >> 24) != 127 && !ownDevices.Contains(dev)) all.Add(a);
            }
        }
        var routes = new List<Route>();
        foreach (var r in JsonDocument.Parse(routeJson).RootElement.EnumerateArray())
        {
            if (r.TryGetProperty("type", out var type) && type.GetString() is { } t && t != "unicast") continue;
            string dev = r.TryGetProperty("dev", out var d) ? d.GetString() ?? "" : "";
            if (ownDevices.Contains(dev)) continue;
            string dst = r.TryGetProperty("dst", out var ds) ? ds.GetString() ?? "" : "";
            uint prefix; int length;
            if (dst == "default") { prefix = 0; length = 0; }
            else
            {
                int slash = dst.IndexOf('/');
                if (!IPAddress.TryParse(slash < 0 ? dst : dst[..slash], out var p)) continue;
                length = slash < 0 ? 32 : int.Parse(dst[(slash + 1)..], System.Globalization.CultureInfo.InvariantCulture);
                prefix = ToUInt(p) & (length == 0 ? 0 : uint.MaxValue << (32 - length));
            }
            uint src = 0;
            if (r.TryGetProperty("prefsrc", out var ps) && IPAddress.TryParse(ps.GetString(), out var psa)) src = ToUInt(psa);
            else if (byDev.TryGetValue(dev, out var list) && list.Count > 0)
            {
                uint toward = r.TryGetProperty("gateway", out var gw) && IPAddress.TryParse(gw.GetString(), out var g) ? ToUInt(g) : prefix;
                src = list[0].Addr;
                foreach (var (a, len) in list)
                {
                    uint m = len == 0 ? 0 : uint.MaxValue << (32 - len);
                    if ((a & m) == (toward & m)) { src = a; break; }
                }
            }
            if (src != 0 && (src >> 24) != 127) routes.Add(new Route(prefix, length, src));
        }
        routes.Sort((a, b) => b.Length.CompareTo(a.Length));
        return new HostRoutes([.. routes], [.. all]);
    }

    public static uint ToUInt(IPAddress a) => System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(a.GetAddressBytes());

    public bool Equals(HostRoutes? other) =>
        other is not null && _routes.AsSpan().SequenceEqual(other._routes) && Addresses.AsSpan().SequenceEqual(other.Addresses);

    public override bool Equals(object? obj) => Equals(obj as HostRoutes);
    public override int GetHashCode() => HashCode.Combine(_routes.Length, Addresses.Length);
}
