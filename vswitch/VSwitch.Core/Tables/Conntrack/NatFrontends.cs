using System.Collections.Frozen;
using VSwitch.Core.Flow;

namespace VSwitch.Core.Tables.Conntrack;

/// <summary>
/// Chooses where a new connection to a frontend goes: a service's Maglev table, a published port's
/// one container. Called on the datapath for the first packet of a connection only; must not allocate
/// or block. <paramref name="label"/> names the backend in the conntrack entry (for its counters).
/// </summary>
public interface IBackendPicker
{
    bool TryPick(in ConnTuple orig, out UInt128 address, out ushort port, out int label, out string? traceNote);
}

/// <summary>
/// An address, port and protocol that new connections are destination-NATed from: a service's
/// virtual IP and port, or a published host port. <see cref="HairpinSource"/> is the address a backend
/// calling its own frontend is source-NATed to, so that the answer comes back through the switch (the
/// frontend's own address when 0).
/// </summary>
public sealed class NatFrontend
{
    public required string Name { get; init; }
    /// <summary>"lb" for a service, "publish" for a published port: the word traces use.</summary>
    public string Kind { get; init; } = "lb";
    public byte Proto { get; init; }
    public byte Family { get; init; } = 4;
    public UInt128 Address { get; init; }
    public ushort Port { get; init; }
    public required IBackendPicker Picker { get; init; }
    public UInt128 HairpinSource { get; init; }
}

/// <summary>
/// What conntrack is asked to do, as one immutable snapshot the datapath reads: whether to track at
/// all (nothing is tracked, and nothing costs, until a service, a policy or NAT exists), and the
/// frontends. Each owner (services, policy, NAT) sets its own part through
/// <see cref="Datapath.SetConntrackPart"/>; the datapath publishes the union.
/// </summary>
public sealed class ConntrackConfig
{
    public static readonly ConntrackConfig Off = new(false, []);

    private readonly FrozenDictionary<FrontendKey, NatFrontend> _frontends;

    public ConntrackConfig(bool track, IEnumerable<NatFrontend> frontends)
    {
        var d = new Dictionary<FrontendKey, NatFrontend>();
        foreach (var f in frontends) d[new FrontendKey(f.Proto, f.Address, f.Port)] = f;
        _frontends = d.ToFrozenDictionary();
        Track = track || d.Count > 0;
        Frontends = [.. d.Values];
    }

    /// <summary>Whether the conntrack stage looks at packets at all.</summary>
    public bool Track { get; }
    public IReadOnlyList<NatFrontend> Frontends { get; }

    public bool TryFrontend(byte proto, UInt128 address, ushort port, out NatFrontend? f) =>
        _frontends.TryGetValue(new FrontendKey(proto, address, port), out f);

    private readonly record struct FrontendKey(byte Proto, UInt128 Address, ushort Port);
}

/// <summary>One owner's part of <see cref="ConntrackConfig"/>.</summary>
public sealed record ConntrackPart(bool Track, IReadOnlyList<NatFrontend> Frontends)
{
    public static readonly ConntrackPart None = new(false, []);
}

