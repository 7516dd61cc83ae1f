namespace VSwitch.Core.Topology;

/// <summary>
/// An immutable picture of networks and ports. The control plane builds a new one for every
/// change and publishes it with one reference write; a datapath thread reads the reference once
/// per batch. So the datapath never takes a lock and never sees a half-made change.
/// </summary>
public sealed class SwitchTopology
{
    public const int MaxPorts = 4096;

    public static readonly SwitchTopology Empty = new([], []);

    private readonly SwitchPort?[] _byId;
    private readonly SwitchPort[][] _members;

    public SwitchTopology(IReadOnlyList<Network> networks, IReadOnlyList<SwitchPort> ports)
    {
        Networks = networks;
        Ports = ports;
        int maxId = -1;
        foreach (var p in ports) maxId = Math.Max(maxId, p.Id);
        _byId = new SwitchPort?[maxId + 1];
        foreach (var p in ports)
        {
            if (_byId[p.Id] is not null) throw new ArgumentException($"port id {p.Id} used twice");
            _byId[p.Id] = p;
        }
        int maxNet = -1;
        foreach (var n in networks) maxNet = Math.Max(maxNet, n.Id);
        _members = new SwitchPort[maxNet + 1][];
        for (int i = 0; i < _members.Length; i++) _members[i] = [];
        foreach (var n in networks)
        {
            var list = new List<SwitchPort>();
            foreach (var p in ports) if (ReferenceEquals(p.Network, n)) list.Add(p);
            _members[n.Id] = list.ToArray();
        }
    }

    /// <summary>Grows with every published change; datapath threads report the version they run on.</summary>
    public long Version { get; internal set; }

    public IReadOnlyList<Network> Networks { get; }
    public IReadOnlyList<SwitchPort> Ports { get; }

    public SwitchPort? Port(int id) => (uint)id < (uint)_byId.Length ? _byId[id] : null;

    /// <summary>The ports of a network, the flood list.</summary>
    public SwitchPort[] Members(ushort networkId) => networkId < _members.Length ? _members[networkId] : [];

    public Network? Network(ushort id)
    {
        foreach (var n in Networks) if (n.Id == id) return n;
        return null;
    }

    /// <summary>True when <paramref name="address"/> is one of the router's own addresses.</summary>
    public bool IsRouterAddress(uint address)
    {
        foreach (var n in Networks) if (n.Router is { } r && r.Address == address) return true;
        return false;
    }

    public SwitchPort? PortByName(string name)
    {
        foreach (var p in Ports) if (p.Name == name) return p;
        return null;
    }

    public Network? NetworkByName(string name)
    {
        foreach (var n in Networks) if (n.Name == name) return n;
        return null;
    }
}
