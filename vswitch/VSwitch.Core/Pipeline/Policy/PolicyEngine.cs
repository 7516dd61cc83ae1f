using System.Collections.Frozen;
using VSwitch.Core.Flow;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Pipeline.Policy;

/// <summary>Connections a policy let open or refused (per new connection, not per packet); kept across recompiles by the daemon.</summary>
public sealed class PolicyCounters
{
    public long Allowed;
    public long Denied;
}

/// <summary>An address block (ipBlock's cidr) in the flow key's convention: IPv4 in the low 32 bits.</summary>
public readonly record struct AddressBlock(byte Family, UInt128 Network, int PrefixLength)
{
    public bool Contains(byte family, UInt128 a)
    {
        if (family != Family) return false;
        int bits = Family == 4 ? 32 : 128;
        if (PrefixLength == 0) return true;
        int shift = bits - PrefixLength;
        return (a >> shift) == (Network >> shift);
    }

    public override string ToString() =>
        (Family == 4 ? AddressFormat.IPv4((uint)Network) : AddressFormat.IPv6(Network)) + "/" + PrefixLength;
}

/// <summary>
/// Who a rule lets in (ingress) or out to (egress): the addresses of the attachments a selector
/// picked (resolved by the daemon from labels), an ipBlock with its exceptions, or anyone.
/// </summary>
public sealed class PolicyPeer
{
    public static readonly PolicyPeer Anyone = new() { Any = true, Description = "anyone" };

    public bool Any { get; init; }
    public FrozenSet<UInt128> Addresses { get; init; } = FrozenSet<UInt128>.Empty;
    public AddressBlock? Block { get; init; }
    public AddressBlock[] Except { get; init; } = [];
    /// <summary>As written: "app=web", "10.0.0.0/8 except 10.0.1.0/24".</summary>
    public required string Description { get; init; }

    public bool Matches(byte family, UInt128 a)
    {
        if (Any) return true;
        if (Block is { } b)
        {
            if (!b.Contains(family, a)) return false;
            foreach (var x in Except) if (x.Contains(family, a)) return false;
            return true;
        }
        return Addresses.Contains(a);
    }
}

/// <summary>One ingress or egress rule: any of its peers, on any of its ports (none given: every peer, every port).</summary>
public sealed class PolicyRule
{
    public PolicyPeer[] Peers { get; init; } = [];
    /// <summary>(protocol, port); port 0 means every port of that protocol.</summary>
    public (byte Proto, ushort Port)[] Ports { get; init; } = [];

    public bool Matches(byte family, UInt128 peer, byte proto, ushort port)
    {
        if (Ports.Length > 0)
        {
            bool any = false;
            foreach (var (p, n) in Ports) if (p == proto && (n == 0 || n == port)) { any = true; break; }
            if (!any) return false;
        }
        if (Peers.Length == 0) return true;
        foreach (var p in Peers) if (p.Matches(family, peer)) return true;
        return false;
    }
}

/// <summary>
/// A network policy as the datapath uses it: the attachments it selects (by address) and, for each
/// direction it governs, its rules. A direction it governs isolates the selected attachments in that
/// direction: only what some policy's rule allows may open (Kubernetes NetworkPolicy's semantics).
/// </summary>
public sealed class CompiledPolicy
{
    public required string Name { get; init; }
    public required PolicyCounters Counters { get; init; }
    public bool Ingress { get; init; }
    public bool Egress { get; init; }
    public PolicyRule[] IngressRules { get; init; } = [];
    public PolicyRule[] EgressRules { get; init; } = [];
    public FrozenSet<UInt128> Selected { get; init; } = FrozenSet<UInt128>.Empty;
}

/// <summary>
/// Every policy, compiled for the slow path: for each selected address, the policies that isolate it
/// in each direction. Asked once per new connection's flow (ct_state +trk+new), never per packet:
/// established, related and reply packets pass in the conntrack stage's state. Immutable: the daemon
/// compiles a new one when a policy or an attachment (its address, its labels) changes, and publishes it.
/// </summary>
public sealed class PolicyEngine : IConnectionAdmission
{
    private readonly FrozenDictionary<UInt128, CompiledPolicy[]> _ingress;
    private readonly FrozenDictionary<UInt128, CompiledPolicy[]> _egress;

    public PolicyEngine(IReadOnlyList<CompiledPolicy> policies)
    {
        Policies = policies;
        var ing = new Dictionary<UInt128, List<CompiledPolicy>>();
        var egr = new Dictionary<UInt128, List<CompiledPolicy>>();
        foreach (var p in policies)
            foreach (var a in p.Selected)
            {
                if (p.Ingress) Add(ing, a, p);
                if (p.Egress) Add(egr, a, p);
            }
        _ingress = ing.ToFrozenDictionary(kv => kv.Key, kv => kv.Value.ToArray());
        _egress = egr.ToFrozenDictionary(kv => kv.Key, kv => kv.Value.ToArray());

        static void Add(Dictionary<UInt128, List<CompiledPolicy>> d, UInt128 a, CompiledPolicy p)
        {
            if (!d.TryGetValue(a, out var l)) d[a] = l = [];
            l.Add(p);
        }
    }

    public IReadOnlyList<CompiledPolicy> Policies { get; }

    public bool Allows(in FlowKey key, SwitchTopology topo, bool count, PacketTrace? trace)
    {
        byte family = key.IsIPv4 ? (byte)4 : key.IsIPv6 ? (byte)6 : (byte)0;
        if (family == 0) return true;
        UInt128 src = key.NwSrc, dst = key.NwDst;
        byte proto = key.NwProto;
        // ICMP has no ports: a rule that names ports does not match it.
        ushort port = proto is IpProtocols.Tcp or IpProtocols.Udp ? key.TpDst : (ushort)0;
        if (_egress.TryGetValue(src, out var outPolicies) && !Decide(outPolicies, egress: true, family, dst, proto, port, count, trace))
            return false;
        if (_ingress.TryGetValue(dst, out var inPolicies) && !Decide(inPolicies, egress: false, family, src, proto, port, count, trace))
            return false;
        if (trace is not null && outPolicies is null && inPolicies is null)
            trace.Add("policy", "no policy selects the source (egress) or the destination (ingress): allowed");
        return true;
    }

    public bool OpensPath(in FlowKey key)
    {
        byte family = key.IsIPv4 ? (byte)4 : key.IsIPv6 ? (byte)6 : (byte)0;
        if (family == 0) return false;
        bool answer = (key.CtState & (byte)CtState.Reply) != 0;
        UInt128 from = answer ? key.NwDst : key.NwSrc, to = answer ? key.NwSrc : key.NwDst;
        byte proto = key.NwProto;
        ushort port = proto is IpProtocols.Tcp or IpProtocols.Udp ? (answer ? key.TpSrc : key.TpDst) : (ushort)0;
        return Names(_egress, from, family, to, proto, port, egress: true) || Names(_ingress, to, family, from, proto, port, egress: false);

        static bool Names(FrozenDictionary<UInt128, CompiledPolicy[]> d, UInt128 selected, byte family, UInt128 peer, byte proto, ushort port, bool egress)
        {
            if (!d.TryGetValue(selected, out var policies)) return false;
            foreach (var p in policies)
                foreach (var r in egress ? p.EgressRules : p.IngressRules)
                    if (r.Peers.Length > 0 && r.Matches(family, peer, proto, port)) return true;
            return false;
        }
    }

    private static bool Decide(CompiledPolicy[] policies, bool egress, byte family, UInt128 peer, byte proto, ushort port, bool count, PacketTrace? trace)
    {
        foreach (var p in policies)
        {
            var rules = egress ? p.EgressRules : p.IngressRules;
            foreach (var r in rules)
                if (r.Matches(family, peer, proto, port))
                {
                    if (count) Interlocked.Increment(ref p.Counters.Allowed);
                    trace?.Add("policy", $"allowed by policy {p.Name} ({(egress ? "egress" : "ingress")})");
                    return true;
                }
        }
        // Isolated in this direction and nothing allows it: every isolating policy counts the refusal.
        if (count) foreach (var p in policies) Interlocked.Increment(ref p.Counters.Denied);
        if (trace is not null)
        {
            var names = new string[policies.Length];
            for (int i = 0; i < names.Length; i++) names[i] = policies[i].Name;
            trace.Add("policy", $"denied by policy {string.Join(", ", names)} ({(egress ? "egress" : "ingress")}: no rule allows {Describe(family, peer)}"
                + (port != 0 ? $" port {port}/{(proto == IpProtocols.Tcp ? "tcp" : "udp")}" : "") + "): drop (policy-denied)");
        }
        return false;
    }

    private static string Describe(byte family, UInt128 a) => family == 4 ? AddressFormat.IPv4((uint)a) : AddressFormat.IPv6(a);
}
