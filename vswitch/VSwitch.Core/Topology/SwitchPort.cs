using VSwitch.Core.Ports;

namespace VSwitch.Core.Topology;

public enum VlanMode : byte
{
    /// <summary>Carries one VLAN, untagged on the wire (a host or container).</summary>
    Access,
    /// <summary>Carries several VLANs tagged (802.1Q), and its native VLAN untagged.</summary>
    Trunk,
}

/// <summary>
/// A port as the switch sees it: the I/O object, the network it joins, and its VLAN mode.
/// Immutable: changing a port publishes a new <see cref="SwitchTopology"/>.
/// </summary>
public sealed class SwitchPort
{
    public SwitchPort(int id, IPort io, Network network, VlanMode mode = VlanMode.Access, ushort? accessVlan = null,
        IReadOnlyCollection<ushort>? trunks = null, ushort nativeVlan = 0)
    {
        if (id < 0 || id >= SwitchTopology.MaxPorts) throw new ArgumentOutOfRangeException(nameof(id), id, $"port id must be 0..{SwitchTopology.MaxPorts - 1}");
        Id = id;
        Io = io;
        Network = network;
        Mode = mode;
        AccessVlan = accessVlan ?? network.Vlan;
        if (AccessVlan > 4094) throw new ArgumentOutOfRangeException(nameof(accessVlan), accessVlan, "VLAN id must be 0..4094");
        if (nativeVlan > 4094) throw new ArgumentOutOfRangeException(nameof(nativeVlan), nativeVlan, "VLAN id must be 0..4094");
        NativeVlan = nativeVlan;
        if (trunks is { Count: > 0 })
        {
            _allowed = new bool[4096];
            foreach (var v in trunks)
            {
                if (v is 0 or > 4094) throw new ArgumentOutOfRangeException(nameof(trunks), v, "trunk VLAN ids must be 1..4094");
                _allowed[v] = true;
            }
            _allowed[nativeVlan] = true;
            Trunks = trunks.Order().ToArray();
        }
        else Trunks = [];
    }

    private readonly bool[]? _allowed;

    public int Id { get; }
    /// <summary>A tunnel (VXLAN) port: member of no network; frames carry their VNI and remote VTEP.</summary>
    public bool IsTunnel => Io is ITunnelPort;
    public string Name => Io.Name;
    public IPort Io { get; }
    public Network Network { get; }
    public VlanMode Mode { get; }
    public ushort AccessVlan { get; }
    /// <summary>Allowed VLANs of a trunk; empty means all.</summary>
    public IReadOnlyList<ushort> Trunks { get; }
    public ushort NativeVlan { get; }

    /// <summary>Port security (OVN's port_security): null when off. Checked on every frame by the port-security stage.</summary>
    public PortSecurity? Security { get; init; }

    /// <summary>
    /// The port's own MAC, when the switch knows it (configured, or assigned to an attachment); 0 when not.
    /// With <see cref="PinMac"/> the bridge refuses it, and static MAC table entries on this port, on any other port.
    /// </summary>
    public ulong Mac { get; init; }

    /// <summary>Refuse moves of this port's MAC and of its static entries to another port (mac-move-refused).</summary>
    public bool PinMac { get; init; }

    /// <summary>The same port (id, device, network, VLAN mode) with other security settings.</summary>
    public SwitchPort WithSecurity(PortSecurity? security, ulong mac, bool pinMac) =>
        new(Id, Io, Network, Mode, AccessVlan, Trunks.Count > 0 ? Trunks.ToArray() : null, NativeVlan)
        { Security = security, Mac = mac, PinMac = pinMac };

    /// <summary>Whether frames of <paramref name="vlan"/> may enter or leave here.</summary>
    public bool Carries(ushort vlan) => Mode == VlanMode.Access
        ? vlan == AccessVlan
        : _allowed is null || _allowed[vlan];
}
