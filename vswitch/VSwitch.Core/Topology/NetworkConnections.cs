namespace VSwitch.Core.Topology;

/// <summary>
/// Which routed networks the router may route between (<c>vsctl network connect A B</c>): an
/// immutable, symmetric set of network pairs, part of the <see cref="SwitchTopology"/> snapshot.
/// Networks are isolated from each other by default, as Docker's are; a pair here lifts that.
/// Read by the slow path only: the decision is cached with the flow.
/// </summary>
public sealed class NetworkConnections
{
    public static readonly NetworkConnections None = new([]);

    private readonly HashSet<uint> _pairs;

    private NetworkConnections(HashSet<uint> pairs) => _pairs = pairs;

    public int Count => _pairs.Count;

    /// <summary>True when two different networks are connected (a network is never "connected" to itself: it needs no permission).</summary>
    public bool Connected(ushort a, ushort b) => a != b && _pairs.Contains(Key(a, b));

    public NetworkConnections With(ushort a, ushort b)
    {
        if (a == b) throw new ArgumentException("a network cannot be connected to itself");
        return new NetworkConnections([.. _pairs, Key(a, b)]);
    }

    public NetworkConnections Without(ushort a, ushort b)
    {
        var pairs = new HashSet<uint>(_pairs);
        pairs.Remove(Key(a, b));
        return new NetworkConnections(pairs);
    }

    /// <summary>The set without any pair that has <paramref name="network"/> (it is being removed; its id will be reused).</summary>
    public NetworkConnections WithoutNetwork(ushort network)
    {
        var pairs = new HashSet<uint>(_pairs);
        pairs.RemoveWhere(k => (ushort)(k >> 16) == network || (ushort)k == network);
        return new NetworkConnections(pairs);
    }

    /// <summary>The networks connected to <paramref name="network"/>, by id.</summary>
    public List<ushort> Of(ushort network)
    {
        var list = new List<ushort>();
        foreach (uint k in _pairs)
        {
            ushort lo = (ushort)k, hi = (ushort)(k >> 16);
            if (lo == network) list.Add(hi);
            else if (hi == network) list.Add(lo);
        }
        list.Sort();
        return list;
    }

    // The smaller id in the low half: (a, b) and (b, a) are one key.
    private static uint Key(ushort a, ushort b) => a < b ? (uint)b << 16 | a : (uint)a << 16 | b;
}
