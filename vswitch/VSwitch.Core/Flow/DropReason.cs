namespace VSwitch.Core.Flow;

/// <summary>
/// Why a frame did not leave the switch. Every drop is counted under one of these; the names
/// (<see cref="DropReasons.Name"/>) are what the API, metrics and traces show.
/// </summary>
public enum DropReason : byte
{
    None = 0,
    // Parsing (Classify)
    RuntFrame,
    TruncatedVlan,
    TruncatedArp,
    BadArp,
    TruncatedIPv4,
    BadIpVersion,
    BadIhl,
    BadIpTotalLength,
    TruncatedIPv6,
    BadIPv6PayloadLength,
    TruncatedTcp,
    BadTcpOffset,
    TruncatedUdp,
    BadUdpLength,
    TruncatedIcmp,
    /// <summary>A tunnel port could not read the encapsulation header (too short).</summary>
    TruncatedTunnelHeader,
    /// <summary>A tunnel port refused the encapsulation header (RFC 7348: no valid-VNI flag).</summary>
    BadTunnelHeader,
    OversizedFrame,
    // Bridge
    VlanNotAllowed,
    TaggedOnAccessPort,
    OutputIsIngress,
    MacTableFull,
    NoOutput,
    NoNetwork,
    /// <summary>The output port is gone, or its device is down (a TAP whose interface is not up refuses every write).</summary>
    PortDown,
    // Buffers and I/O
    PoolExhausted,
    TxFailed,
    TxQueueFull,
    /// <summary>A TCP super-frame whose headers no longer parse, or whose segments would not fit a buffer, on its way to a port that needs it segmented.</summary>
    GsoUnsupported,
    // Rules
    RuleDrop,
    TableMiss,
    TtlExpired,
    NoRoute,
    NeighborUnresolved,
    NeighborQueueFull,
    FragmentationNeeded,
    MtuExceeded,
    NotRoutable,
    /// <summary>Routed from one network to another that is isolated from it (not connected, no static route, no policy).</summary>
    NetworkIsolated,
    IcmpRateLimited,
    RouterConsumed,
    UnknownVni,
    UnknownVtep,
    /// <summary>A frame from an IPv6 VTEP that found the table of IPv6 remotes full (<see cref="VtepRemote"/>).</summary>
    VtepTableFull,
    TunnelToTunnel,
    NoTunnelPort,
    // Ingress VLAN mode: a trunk refuses a frame with two tags (802.1ad S-tag outer, or a second tag inside).
    QinqUnsupported,
    // Port security (PortSecurityStage); invalid-source-mac applies to every port.
    InvalidSourceMac,
    PortSecurityMac,
    PortSecurityIp,
    PortSecurityArp,
    PortSecurityNd,
    /// <summary>A MAC pinned to another port (its attachment's, or static there) appeared here (the bridge refuses the move).</summary>
    MacMoveRefused,
    // Connection tracking (ConntrackStage, and its commit in the actions).
    /// <summary>A packet that cannot belong to a connection (a stray RST, SYN+FIN, an ICMP error about nothing tracked).</summary>
    CtInvalid,
    /// <summary>A new connection when the conntrack table is full (existing ones go on).</summary>
    ConntrackFull,
    /// <summary>A new connection to a service with no healthy backend.</summary>
    NoBackend,
    /// <summary>A source NAT found no free port.</summary>
    NatPortsExhausted,
    /// <summary>A new connection that no network policy allows.</summary>
    PolicyDenied,
    // IPv6 routing and neighbour discovery (the router's NdResponder and the action stage)
    /// <summary>An IPv6 packet larger than the egress MTU: ICMPv6 packet too big (IPv6 routers never fragment).</summary>
    PacketTooBig,
    /// <summary>An ND message whose hop limit is not 255: it crossed a router, so it is not from this link (RFC 4861 §6.1, §7.1).</summary>
    NdBadHopLimit,
    /// <summary>An ND message that is truncated, has a bad checksum, a non-zero code, a malformed option, or fields RFC 4861 forbids.</summary>
    NdMalformed,
    /// <summary>A neighbour advertisement for an address the router did not ask for (no entry): discarded, nothing learned.</summary>
    NdUnsolicitedNa,
    Count
}

public static class DropReasons
{
    private static readonly string[] Names = Build();

    public static string Name(this DropReason reason) =>
        (uint)reason < (uint)Names.Length ? Names[(int)reason] : "unknown";

    /// <summary>
    /// Reasons that are the switch doing its job rather than something going wrong: a frame with no
    /// other port to go to (no-output), a packet the router consumed (ARP replies to it, pings to it).
    /// They are counted like drops, but not shown as a port's drops.
    /// </summary>
    public static bool IsExpected(this DropReason reason) => reason is DropReason.NoOutput or DropReason.RouterConsumed;

    /// <summary>
    /// The reasons also counted per ingress port (`vsctl port show`, PortView.SecurityDrops, metrics): what a
    /// port's own neighbour did wrong (VLAN tags, spoofing, MAC moves), so an operator sees who did it.
    /// </summary>
    public static readonly DropReason[] PerPort =
    [
        DropReason.TaggedOnAccessPort, DropReason.VlanNotAllowed, DropReason.QinqUnsupported, DropReason.InvalidSourceMac,
        DropReason.PortSecurityMac, DropReason.PortSecurityIp, DropReason.PortSecurityArp, DropReason.PortSecurityNd,
        DropReason.MacMoveRefused,
    ];

    private static readonly sbyte[] PerPortSlots = BuildSlots();

    private static sbyte[] BuildSlots()
    {
        var slots = new sbyte[(int)DropReason.Count];
        Array.Fill(slots, (sbyte)-1);
        for (int i = 0; i < PerPort.Length; i++) slots[(int)PerPort[i]] = (sbyte)i;
        return slots;
    }

    /// <summary>The reason's index among <see cref="PerPort"/>, or -1 when it is not counted per port.</summary>
    public static int PerPortSlot(this DropReason reason) => (uint)reason < (uint)PerPortSlots.Length ? PerPortSlots[(int)reason] : -1;

    public static bool TryParse(string name, out DropReason reason)
    {
        for (int i = 0; i < Names.Length; i++)
        {
            if (Names[i] == name) { reason = (DropReason)i; return true; }
        }
        reason = DropReason.None;
        return false;
    }

    // Kebab case, the style of OVS and the kernel's drop reasons. Spelled out rather than derived
    // from the member names so that "IPv6"/"Icmp" split the way people read them.
    private static string[] Build()
    {
        var names = new string[(int)DropReason.Count];
        for (int i = 0; i < names.Length; i++)
        {
            names[i] = (DropReason)i switch
            {
                DropReason.None => "none",
                DropReason.RuntFrame => "runt-frame",
                DropReason.TruncatedVlan => "truncated-vlan",
                DropReason.TruncatedArp => "truncated-arp",
                DropReason.BadArp => "bad-arp",
                DropReason.TruncatedIPv4 => "truncated-ipv4",
                DropReason.BadIpVersion => "bad-ip-version",
                DropReason.BadIhl => "bad-ihl",
                DropReason.BadIpTotalLength => "bad-ip-total-length",
                DropReason.TruncatedIPv6 => "truncated-ipv6",
                DropReason.BadIPv6PayloadLength => "bad-ipv6-payload-length",
                DropReason.TruncatedTcp => "truncated-tcp",
                DropReason.BadTcpOffset => "bad-tcp-offset",
                DropReason.TruncatedUdp => "truncated-udp",
                DropReason.BadUdpLength => "bad-udp-length",
                DropReason.TruncatedIcmp => "truncated-icmp",
                DropReason.TruncatedTunnelHeader => "truncated-tunnel-header",
                DropReason.BadTunnelHeader => "bad-tunnel-header",
                DropReason.OversizedFrame => "oversized-frame",
                DropReason.VlanNotAllowed => "vlan-not-allowed",
                DropReason.TaggedOnAccessPort => "tagged-on-access-port",
                DropReason.OutputIsIngress => "output-is-ingress",
                DropReason.MacTableFull => "mac-table-full",
                DropReason.NoOutput => "no-output",
                DropReason.NoNetwork => "no-network",
                DropReason.PortDown => "port-down",
                DropReason.PoolExhausted => "pool-exhausted",
                DropReason.TxFailed => "tx-failed",
                DropReason.TxQueueFull => "tx-queue-full",
                DropReason.GsoUnsupported => "gso-unsupported",
                DropReason.RuleDrop => "rule-drop",
                DropReason.TableMiss => "table-miss",
                DropReason.TtlExpired => "ttl-expired",
                DropReason.NoRoute => "no-route",
                DropReason.NeighborUnresolved => "neighbor-unresolved",
                DropReason.NeighborQueueFull => "neighbor-queue-full",
                DropReason.FragmentationNeeded => "fragmentation-needed",
                DropReason.MtuExceeded => "mtu-exceeded",
                DropReason.NotRoutable => "not-routable",
                DropReason.NetworkIsolated => "network-isolated",
                DropReason.IcmpRateLimited => "icmp-rate-limited",
                DropReason.RouterConsumed => "router-consumed",
                DropReason.UnknownVni => "unknown-vni",
                DropReason.UnknownVtep => "unknown-vtep",
                DropReason.VtepTableFull => "vtep-table-full",
                DropReason.TunnelToTunnel => "tunnel-to-tunnel",
                DropReason.NoTunnelPort => "no-tunnel-port",
                DropReason.QinqUnsupported => "qinq-unsupported",
                DropReason.InvalidSourceMac => "invalid-source-mac",
                DropReason.PortSecurityMac => "port-security-mac",
                DropReason.PortSecurityIp => "port-security-ip",
                DropReason.PortSecurityArp => "port-security-arp",
                DropReason.PortSecurityNd => "port-security-nd",
                DropReason.MacMoveRefused => "mac-move-refused",
                DropReason.CtInvalid => "ct-invalid",
                DropReason.ConntrackFull => "conntrack-full",
                DropReason.NoBackend => "no-backend",
                DropReason.NatPortsExhausted => "nat-ports-exhausted",
                DropReason.PolicyDenied => "policy-denied",
                DropReason.PacketTooBig => "packet-too-big",
                DropReason.NdBadHopLimit => "nd-bad-hop-limit",
                DropReason.NdMalformed => "nd-malformed",
                DropReason.NdUnsolicitedNa => "nd-unsolicited-na",
                _ => throw new InvalidOperationException($"DropReason.{(DropReason)i} has no name: add it to DropReasons.Build"),
            };
        }
        return names;
    }
}
