namespace VSwitch.Core.Topology;

/// <summary>
/// A virtual network: one learning-bridge domain (like an OVS bridge or a Docker network).
/// Ports join it; access ports put their frames on <see cref="Vlan"/> unless they name their own.
/// </summary>
public sealed class Network
{
    public const int MaxNetworks = 4096;

    public Network(ushort id, string name, ushort vlan = 0, uint? vni = null, long macAgingMs = Tables.MacTable.DefaultAgingMs,
        RouterInterface? router = null, int mtu = 1500)
    {
        if (mtu is < 68 or > 9000) throw new ArgumentOutOfRangeException(nameof(mtu), mtu, "MTU must be 68..9000");
        Router = router;
        Mtu = mtu;
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
    /// <summary>The router's interface on this network (its gateway address and MAC), or null when the network is not routed.</summary>
    public RouterInterface? Router { get; }
    /// <summary>The largest IP packet the network's ports carry (the router sends "fragmentation needed" above it).</summary>
    public int Mtu { get; }

    /// <summary>The router MAC the switch uses on a network: locally administered, unique per network id.</summary>
    public static ulong DefaultRouterMac(ushort id) => 0x02_76_73_72_00_00UL | id;
}

/// <summary>
/// The router's leg on a network: the gateway address containers point their default route at,
/// its prefix (the connected route), and the MAC the router answers ARP with.
/// </summary>
public sealed record RouterInterface(uint Address, int PrefixLength, ulong Mac, UInt128 Address6 = default, int PrefixLength6 = 0)
{
    public uint Mask => PrefixLength == 0 ? 0 : uint.MaxValue << (32 - PrefixLength);
    public uint Subnet => Address & Mask;
    public uint Broadcast => Subnet | ~Mask;
    public bool OnLink(uint ip) => (ip & Mask) == Subnet;
}
