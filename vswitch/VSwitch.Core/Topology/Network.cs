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

    private uint[] _vteps = [];

    /// <summary>Remote VTEPs (IPv4 host order, or IPv6 handles: <see cref="Flow.VtepRemote"/>) that share this network's VNI: flooding replicates to each (head-end replication).</summary>
    public uint[] Vteps => Volatile.Read(ref _vteps);

    /// <summary>Accept frames from VTEPs not in <see cref="Vteps"/> (and learn them); off by default.</summary>
    public bool AcceptUnknownVteps { get; internal set; }

    internal void SetVteps(uint[] vteps) => Volatile.Write(ref _vteps, vteps);

    public bool HasVtep(uint address) => Array.IndexOf(Vteps, address) >= 0;

    /// <summary>The placeholder network of tunnel ports, which belong to no network (the VNI chooses one per frame).</summary>
    public static readonly Network Underlay = new(0, "underlay");

    /// <summary>The router MAC the switch uses on a network: locally administered, unique per network id.</summary>
    public static ulong DefaultRouterMac(ushort id) => 0x02_76_73_72_00_00UL | id;
}

/// <summary>
/// The router's leg on a network: the gateway address containers point their default route at,
/// its prefix (the connected route), and the MAC the router answers ARP with. On a dual-stack
/// network also the IPv6 gateway (<see cref="Address6"/>, 0 when none) with its prefix, and the
/// link-local address made from the MAC (RFC 4291), which neighbour discovery and router
/// advertisements come from. <see cref="Slaac"/> sets the prefix's autonomous flag in them.
/// </summary>
public sealed record RouterInterface(uint Address, int PrefixLength, ulong Mac, UInt128 Address6 = default, int PrefixLength6 = 0,
    bool Slaac = true)
{
    public uint Mask => PrefixLength == 0 ? 0 : uint.MaxValue << (32 - PrefixLength);
    public uint Subnet => Address & Mask;
    public uint Broadcast => Subnet | ~Mask;
    public bool OnLink(uint ip) => (ip & Mask) == Subnet;

    /// <summary>Whether the router routes IPv6 on this network.</summary>
    public bool HasIPv6 => Address6 != UInt128.Zero;
    public UInt128 LinkLocal6 { get; } = Wire.Ndp.LinkLocalFromMac(Mac);
    public UInt128 Mask6 => PrefixLength6 == 0 ? UInt128.Zero : UInt128.MaxValue << (128 - PrefixLength6);
    public UInt128 Subnet6 => Address6 & Mask6;
    public bool OnLink6(UInt128 ip) => HasIPv6 && (ip & Mask6) == Subnet6;
    /// <summary>One of the router's own IPv6 addresses on this network (the gateway or the link-local one).</summary>
    public bool Owns6(UInt128 ip) => HasIPv6 && (ip == Address6 || ip == LinkLocal6);
}
