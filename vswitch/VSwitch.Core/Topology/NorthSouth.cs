namespace VSwitch.Core.Topology;

/// <summary>
/// Where the host's kernel would take a packet to a destination outside every switch network, and
/// from which of its addresses (Linux's source address selection, as MASQUERADE uses it). The daemon
/// mirrors the host's routing table into an immutable implementation; the router asks it on a
/// flow-cache miss only. Must not allocate or block.
/// </summary>
public interface IHostSourceAddress
{
    /// <summary>The host's source address towards <paramref name="destination"/> (IPv4, host order), or 0 when the host has no route.</summary>
    uint SourceFor(uint destination);
}

/// <summary>A network's way out through the host: the host port's address (the next hop) and whether connections leaving are masqueraded.</summary>
public sealed record HostEgress(int PortId, uint NextHop, bool Masquerade);

/// <summary>
/// North-south settings as one immutable snapshot the router reads: per network, the host port a
/// packet for a destination outside every switch network leaves by; the host's source addresses for
/// masquerade; the source ports a masquerade may hand out (a range the host's own sockets do not use,
/// so that the host can steer their replies back to the switch by a policy-routing rule).
/// </summary>
public sealed class NorthSouth
{
    /// <summary>Above Linux's default ip_local_port_range (32768-60999); 65535 is left out because a routing rule's port range cannot end there.</summary>
    public const ushort DefaultPortLow = 61000, DefaultPortHigh = 65534;

    public static readonly NorthSouth None = new(new Dictionary<ushort, HostEgress>(), null);

    private readonly HostEgress?[] _byNetwork;

    public NorthSouth(IReadOnlyDictionary<ushort, HostEgress> egress, IHostSourceAddress? sources,
        ushort portLow = DefaultPortLow, ushort portHigh = DefaultPortHigh)
    {
        if (portLow == 0 || portLow > portHigh) throw new ArgumentOutOfRangeException(nameof(portLow), $"{portLow}-{portHigh} is not a port range");
        _byNetwork = new HostEgress?[Network.MaxNetworks + 1];
        foreach (var (id, e) in egress) _byNetwork[id] = e;
        Sources = sources;
        PortLow = portLow;
        PortHigh = portHigh;
    }

    public IHostSourceAddress? Sources { get; }
    public ushort PortLow { get; }
    public ushort PortHigh { get; }

    /// <summary>The network's way out through the host, or null when it has none (no host port).</summary>
    public HostEgress? For(ushort network) => network < _byNetwork.Length ? _byNetwork[network] : null;
}
