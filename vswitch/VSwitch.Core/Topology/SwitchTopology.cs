namespace VSwitch.Core.Topology;

/// <summary>
/// An immutable picture of networks and ports. The control plane builds a new one for every
/// change and publishes it with one reference write; a datapath thread reads the reference once
/// per batch. So the datapath never takes a lock and never sees a half-made change.
/// </summary>
public sealed class SwitchTopology
{
    public const int MaxPorts = 4096;

    public static readonly SwitchTopology Empty = new([], [], NetworkConnections.None);

    private readonly SwitchPort?[] _byId;
    private readonly SwitchPort[][] _members;

    // Arrays, not the IReadOnlyList views: the datapath walks these, and a foreach over an
    // interface would allocate an enumerator per call.
    private readonly Network[] _networks;
    private readonly SwitchPort[] _ports;
    private readonly Network?[] _networkById;

    // The connections are required, not optional: a snapshot built without them (a port's security changed) once
    // isolated every connected network again.
    public SwitchTopology(IReadOnlyList<Network> networks, IReadOnlyList<SwitchPort> ports, NetworkConnections connections)
    {
        Connections = connections ?? NetworkConnections.None;
        _networks = [.. networks];
        _ports = [.. ports];
        Networks = _networks;
        Ports = _ports;
        foreach (var p in _ports) if (p.IsTunnel) { TunnelPort = p; break; }
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
        _networkById = new Network?[maxNet + 1];
        foreach (var n in networks) _networkById[n.Id] = n;
        foreach (var p in ports)
            if (p.PinMac && p.Mac != 0 && !p.IsTunnel) _pinned[(p.Network.Id, p.Mac)] = p.Id;
        _members = new SwitchPort[maxNet + 1][];
        for (int i = 0; i < _members.Length; i++) _members[i] = [];
        foreach (var n in networks)
        {
            var list = new List<SwitchPort>();
            foreach (var p in ports) if (ReferenceEquals(p.Network, n)) list.Add(p);
            _members[n.Id] = list.ToArray();
        }
    }

    // (network, MAC) -> the port that pinned it. Read by the slow path only (a flow-cache miss).
    private readonly Dictionary<(ushort, ulong), int> _pinned = [];

    /// <summary>The port that pinned <paramref name="mac"/> in a network (<see cref="SwitchPort.PinMac"/>), or -1.</summary>
    public int PinnedPort(ushort network, ulong mac) => _pinned.Count > 0 && _pinned.TryGetValue((network, mac), out int id) ? id : -1;

    /// <summary>Grows with every published change; datapath threads report the version they run on.</summary>
    public long Version { get; internal set; }

    public IReadOnlyList<Network> Networks { get; }

    /// <summary>The networks as an array, for loops on the datapath (a foreach over <see cref="Networks"/> would allocate an enumerator).</summary>
    internal Network[] NetworkArray => _networks;

    /// <summary>The pairs of networks the router may route between (isolated otherwise).</summary>
    public NetworkConnections Connections { get; }
    public IReadOnlyList<SwitchPort> Ports { get; }

    public SwitchPort? Port(int id) => (uint)id < (uint)_byId.Length ? _byId[id] : null;

    /// <summary>The ports of a network, the flood list.</summary>
    public SwitchPort[] Members(ushort networkId) => networkId < _members.Length ? _members[networkId] : [];

    public Network? NetworkByVni(uint vni)
    {
        foreach (var n in _networks) if (n.Vni == vni) return n;
        return null;
    }

    /// <summary>The tunnel port frames for remote VTEPs leave through, or null.</summary>
    public SwitchPort? TunnelPort { get; }

    /// <summary>The network a frame belongs to: its port's, or for a tunnel port the one with the frame's VNI.</summary>
    public Network? IngressNetwork(SwitchPort port, uint tunnelId) => port.IsTunnel ? NetworkByVni(tunnelId) : port.Network;

    public Network? Network(ushort id) => id < _networkById.Length ? _networkById[id] : null;

    /// <summary>True when <paramref name="address"/> is one of the router's own addresses.</summary>
    public bool IsRouterAddress(uint address) => RouterAddressOwner(address) is not null;

    /// <summary>The network whose gateway (router address) <paramref name="address"/> is, or null.</summary>
    public Network? RouterAddressOwner(uint address)
    {
        foreach (var n in _networks) if (n.Router is { } r && r.Address == address) return n;
        return null;
    }

    public SwitchPort? PortByName(string name)
    {
        foreach (var p in _ports) if (p.Name == name) return p;
        return null;
    }

    public Network? NetworkByName(string name)
    {
        foreach (var n in _networks) if (n.Name == name) return n;
        return null;
    }
}
