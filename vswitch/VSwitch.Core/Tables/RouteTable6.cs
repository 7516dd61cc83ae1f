namespace VSwitch.Core.Tables;

/// <summary>An IPv6 route as the API shows it.</summary>
public sealed record RouteInfo6(UInt128 Prefix, int Length, NextHop[] Paths);

/// <summary>
/// The IPv6 routes: the same shape as the IPv4 side (a next-hop group per prefix, ECMP by the flow's
/// hash), over <see cref="Fib.Lookup6"/>. The groups are numbered apart from IPv4's: the FIB's two
/// families are separate tables, so group 3 of one has nothing to do with group 3 of the other.
/// </summary>
public sealed partial class RouteTable
{
    private readonly Dictionary<(UInt128, int), int> _groupOf6 = [];
    private readonly Stack<int> _freeGroups6 = new();
    private NextHop[]?[] _groups6 = new NextHop[]?[16];
    private int _nextGroup6 = 1;

    /// <summary>The path for an IPv6 destination, or null when no route covers it.</summary>
    public NextHop? Lookup6(UInt128 destination, ulong flowHash)
    {
        var paths = Paths6(destination);
        if (paths is not { Length: > 0 }) return null;
        return paths.Length == 1 ? paths[0] : paths[(int)(flowHash % (ulong)paths.Length)];
    }

    /// <summary>Every path of the longest IPv6 prefix that covers <paramref name="address"/>, or null.</summary>
    public NextHop[]? Paths6(UInt128 address)
    {
        int g = Fib.Lookup6(address);
        if (g == 0) return null;
        var groups = Volatile.Read(ref _groups6);
        return (uint)g < (uint)groups.Length ? groups[g] : null;
    }

    /// <summary>Adds a path to an IPv6 prefix (a second path makes ECMP). False when that exact path was there.</summary>
    public bool Add6(UInt128 prefix, int length, NextHop path)
    {
        if (length is < 0 or > 128) throw new ArgumentOutOfRangeException(nameof(length), length, "prefix length must be 0..128");
        prefix &= Mask6(length);
        lock (_gate)
        {
            if (_groupOf6.TryGetValue((prefix, length), out int g))
            {
                var paths = _groups6[g]!;
                if (Array.IndexOf(paths, path) >= 0) return false;
                Publish6(g, [.. paths, path]);
                return true;
            }
            g = _freeGroups6.Count > 0 ? _freeGroups6.Pop() : _nextGroup6++;
            Publish6(g, [path]);
            _groupOf6[(prefix, length)] = g;
            Fib.Add6(prefix, length, g);
            return true;
        }
    }

    /// <summary>Removes one path of an IPv6 route (or, with <paramref name="path"/> null, the whole route). False when absent.</summary>
    public bool Remove6(UInt128 prefix, int length, NextHop? path = null)
    {
        prefix &= Mask6(length);
        lock (_gate)
        {
            if (!_groupOf6.TryGetValue((prefix, length), out int g)) return false;
            var paths = _groups6[g]!;
            if (path is not null)
            {
                if (Array.IndexOf(paths, path) < 0) return false;
                if (paths.Length > 1)
                {
                    Publish6(g, paths.Where(p => p != path).ToArray());
                    return true;
                }
            }
            Fib.Remove6(prefix, length);
            _groupOf6.Remove((prefix, length));
            Publish6(g, null);
            _freeGroups6.Push(g);
            return true;
        }
    }

    public List<RouteInfo6> Routes6()
    {
        lock (_gate)
        {
            var groups = _groups6;
            return _groupOf6.Select(kv => new RouteInfo6(kv.Key.Item1, kv.Key.Item2, groups[kv.Value] ?? []))
                .OrderByDescending(r => r.Length).ThenBy(r => r.Prefix).ToList();
        }
    }

    private int RemoveNetwork6(ushort network)
    {
        int n = 0;
        foreach (var r in Routes6())
            foreach (var p in r.Paths)
                if (p.Network == network && Remove6(r.Prefix, r.Length, p)) n++;
        return n;
    }

    private void Publish6(int g, NextHop[]? paths)
    {
        var groups = _groups6;
        if (g >= groups.Length)
        {
            var bigger = new NextHop[]?[Math.Max(groups.Length * 2, g + 1)];
            Array.Copy(groups, bigger, groups.Length);
            groups = bigger;
        }
        Volatile.Write(ref groups[g], paths);
        Volatile.Write(ref _groups6, groups);
        Interlocked.Increment(ref _version);
    }

    public static UInt128 Mask6(int length) => length == 0 ? UInt128.Zero : UInt128.MaxValue << (128 - length);
}
