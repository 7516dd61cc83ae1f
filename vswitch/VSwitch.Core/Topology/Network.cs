namespace VSwitch.Core.Topology;

/// <summary>
/// A virtual network: one learning-bridge domain (like an OVS bridge or a Docker network).
/// Ports join it; access ports put their frames on <see cref="Vlan"/> unless they name their own.
/// </summary>
public sealed class Network
{
    public const int MaxNetworks = 4096;

    public Network(ushort id, string name, ushort vlan = 0, uint? vni = null, long macAgingMs = Tables.MacTable.DefaultAgingMs)
    {
        if (vlan > 4094) throw new ArgumentOutOfRangeException(nameof(vlan), vlan, "VLAN id must be 0..4094");
        if (vni is > 0xFFFFFF) throw new ArgumentOutOfRangeException(nameof(vni), vni, "VNI must fit in 24 bits");
        if (macAgingMs <= 0) throw new ArgumentOutOfRangeException(nameof(macAgingMs), macAgingMs, "MAC aging must be positive");
        Id = id;
        Name = name;
        Vlan = vlan;
        Vni = vni;
        MacAgingMs = macAgingMs;
    }

    public ushort Id { get; }
    public string Name { get; }
    /// <summary>The VLAN that untagged frames of access ports belong to (0: none).</summary>
    public ushort Vlan { get; }
    /// <summary>VXLAN network identifier when the network stretches over hosts.</summary>
    public uint? Vni { get; }
    public long MacAgingMs { get; }
}
