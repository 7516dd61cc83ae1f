namespace VSwitch.Core.Tables;

public enum RouteKind : byte
{
    /// <summary>The subnet of a router interface: the destination itself is the next hop.</summary>
    Connected,
    /// <summary>Through a gateway on a connected network (`prefix via 10.1.0.254`).</summary>
    Via,
    /// <summary>Out of a network, the destination on-link (`prefix dev blue`).</summary>
    Dev,
}

/// <summary>One path of a route: where packets go next. An IPv6 route's gateway is <see cref="Gateway6"/> (and <see cref="Gateway"/> 0).</summary>
public sealed record NextHop(RouteKind Kind, ushort Network, uint Gateway, UInt128 Gateway6 = default);

/// <summary>A route as the API shows it.</summary>
public sealed record RouteInfo(uint Prefix, int Length, NextHop[] Paths);

/// <summary>
/// The routes: a longest-prefix-match <see cref="Fib"/> from destination to a next-hop group, and
/// the groups themselves (one per prefix; several paths make an ECMP group, the path chosen by
/// the flow's hash so a flow stays on one path). Written by the control plane under a lock;
/// read by the slow path without one (group array swapped by reference, Fib lock-free).
/// </summary>
public sealed partial class RouteTable
{
    private readonly object _gate = new();
    private readonly Dictionary<(uint, int), int> _groupOf = [];
    private readonly Stack<int> _freeGroups = new();
    private NextHop[]?[] _groups = new NextHop[]?[64];
    private int _nextGroup = 1;
    private long _version;

    public Fib Fib { get; } = new();
    public long Version => Volatile.Read(ref _version) + Fib.Version;

    /// <summary>The path for a destination, or null when no route covers it.</summary>
    public NextHop? Lookup(uint destination, ulong flowHash)
    {
        int g = Fib.Lookup(destination);
        if (g == 0) return null;
        var groups = Volatile.Read(ref _groups);
        if ((uint)g >= (uint)groups.Length || groups[g] is not { Length: > 0 } paths) return null;
        return paths.Length == 1 ? paths[0] : paths[(int)(flowHash % (ulong)paths.Length)];
    }

    /// <summary>Every path of the longest prefix that covers <paramref name="address"/> (the whole ECMP group), or null.</summary>
    public NextHop[]? Paths(uint address)
    {
        int g = Fib.Lookup(address);
        if (g == 0) return null;
        var groups = Volatile.Read(ref _groups);
        return (uint)g < (uint)groups.Length ? groups[g] : null;
    }

    /// <summary>Adds a path to a prefix (a second path makes ECMP). Returns false when that exact path was there.</summary>
    public bool Add(uint prefix, int length, NextHop path)
    {
        if (length is < 0 or > 32) throw new ArgumentOutOfRangeException(nameof(length), length, "prefix length must be 0..32");
        prefix &= Mask(length);
        lock (_gate)
        {
            if (_groupOf.TryGetValue((prefix, length), out int g))
            {
                var paths = _groups[g]!;
                if (Array.IndexOf(paths, path) >= 0) return false;
                Publish(g, [.. paths, path]);
                return true;
            }
            g = _freeGroups.Count > 0 ? _freeGroups.Pop() : _nextGroup++;
            Publish(g, [path]);
            _groupOf[(prefix, length)] = g;
            Fib.Add(prefix, length, g);
            return true;
        }
    }

    /// <summary>Removes one path (or, with <paramref name="path"/> null, the whole route). False when absent.</summary>
    public bool Remove(uint prefix, int length, NextHop? path = null)
    {
        prefix &= Mask(length);
        lock (_gate)
        {
            if (!_groupOf.TryGetValue((prefix, length), out int g)) return false;
            var paths = _groups[g]!;
            if (path is not null)
            {
                if (Array.IndexOf(paths, path) < 0) return false;
                if (paths.Length > 1)
                {
                    Publish(g, paths.Where(p => p != path).ToArray());
                    return true;
                }
            }
            Fib.Remove(prefix, length);
            _groupOf.Remove((prefix, length));
            Publish(g, null);
            _freeGroups.Push(g);
            return true;
        }
    }

    /// <summary>Removes every path through a network (the network or its gateway went away).</summary>
    public int RemoveNetwork(ushort network)
    {
        lock (_gate)
        {
            int n = 0;
            foreach (var r in Routes())
                foreach (var p in r.Paths)
                    if (p.Network == network && Remove(r.Prefix, r.Length, p)) n++;
            return n + RemoveNetwork6(network);
        }
    }

    public List<RouteInfo> Routes()
    {
        lock (_gate)
        {
            var groups = _groups;
            return _groupOf.Select(kv => new RouteInfo(kv.Key.Item1, kv.Key.Item2, groups[kv.Value] ?? []))
                .OrderByDescending(r => r.Length).ThenBy(r => r.Prefix).ToList();
        }
    }

    private void Publish(int g, NextHop[]? paths)
    {
        var groups = _groups;
        if (g >= groups.Length)
        {
            var bigger = new NextHop[]?[Math.Max(groups.Length * 2, g + 1)];
            Array.Copy(groups, bigger, groups.Length);
            groups = bigger;
        }
        Volatile.Write(ref groups[g], paths);
        Volatile.Write(ref _groups, groups);
        Interlocked.Increment(ref _version);
    }

    public static uint Mask(int length) => length == 0 ? 0 : uint.MaxValue << (32 - length);
}
