using VSwitch.Api;
using VSwitch.Core.Flow;
using VSwitch.Core.Tables.Rules;

namespace VSwitchd.Runtime;

/// <summary>
/// The filters of the list endpoints (<c>GET /v1/flows?match=&amp;port=&amp;network=</c>, <c>/v1/rules?match=</c>,
/// <c>/v1/ports?network=</c>, <c>/v1/fdb?port=</c>): a match is parsed here, as a rule's is, so that a client
/// needs no rule parser and a bad one is refused with its token and position. An unknown port or network
/// named by a filter is a <see cref="NotFoundException"/>, as everywhere else.
/// </summary>
public sealed partial class SwitchRuntime
{
    /// <summary>
    /// Which datapath flows to show: those a match accepts (the flow key is exact, so "accepts" is
    /// <see cref="FlowMatch.Matches"/>), those that come in on or go out to a port, those that enter a network.
    /// Null when nothing is asked (all flows).
    /// </summary>
    public FlowFilter? ParseFlowFilter(string? match, string? port, string? network)
    {
        FlowMatch? m = null;
        if (!string.IsNullOrWhiteSpace(match))
        {
            try { m = RuleParser.ParseMatch(match, PortId).Match; }
            catch (RuleSyntaxException e) { throw Syntax("bad filter", e); }
        }
        int? portId = string.IsNullOrEmpty(port) ? null : RequirePort(port).Id;
        ushort? networkId = string.IsNullOrEmpty(network) ? null : RequireNetwork(network).Id;
        return m is null && portId is null && networkId is null ? null : new FlowFilter(m, portId, networkId);
    }

    /// <summary>A filter of <see cref="DumpFlows"/>; every part it has must hold.</summary>
    public sealed class FlowFilter(FlowMatch? match, int? port, ushort? network)
    {
        internal bool Accepts(FlowEntry e, VSwitch.Core.Topology.SwitchTopology topology)
        {
            if (match is not null && !match.Matches(e.Key)) return false;
            if (port is int p && e.Key.InPort != p && !Array.Exists(e.Actions, a => a.Kind == ActionKind.Output && a.Port == p)) return false;
            if (network is ushort n)
            {
                // From the tunnel port, the network is the one of the VNI the frame came with.
                var ingress = topology.Port(e.Key.InPort) is { } inPort ? topology.IngressNetwork(inPort, e.Key.TunId) : null;
                if (ingress?.Id != n) return false;
            }
            return true;
        }
    }

    /// <summary>
    /// The rules a match selects, as <c>rules del</c> would remove them: every rule at least as specific as the
    /// match (and of its priority when it gives one), or with <paramref name="strict"/> exactly that match.
    /// </summary>
    public RuleView[] ListRules(string? match, bool strict)
    {
        if (string.IsNullOrWhiteSpace(match) && !strict) return ListRules();
        ParsedRule parsed;
        try { parsed = RuleParser.ParseMatch(match ?? "", PortId); }
        catch (RuleSyntaxException e) { throw Syntax("bad match", e); }
        int? priority = parsed.HasPriority ? parsed.Priority : null;
        return Datapath.Rules.Rules
            .Where(r => (strict ? r.Match.SameAs(parsed.Match) : r.Match.IsCoveredBy(parsed.Match)) && (priority is null || r.Priority == priority))
            .Select(RuleView).ToArray();
    }

    /// <summary>The ports, of one network (which must exist) or of all.</summary>
    public PortView[] ListPorts(string? network)
    {
        if (string.IsNullOrEmpty(network)) return ListPorts();
        string name = RequireNetwork(network).Name;
        return ListPorts().Where(p => p.Network == name).ToArray();
    }

    /// <summary>The MAC table, of one network and/or of the entries on one port (each must exist), or all.</summary>
    public FdbEntryView[] ListFdb(string? network, string? port)
    {
        if (string.IsNullOrEmpty(port)) return ListFdb(string.IsNullOrEmpty(network) ? null : network);
        string name = RequirePort(port).Name;
        return ListFdb(string.IsNullOrEmpty(network) ? null : network).Where(e => e.Port == name).ToArray();
    }

    /// <summary>
    /// The network of a static neighbour: the one given, or else the one routed network whose subnet holds
    /// <paramref name="ip"/> (as <c>ip neigh add</c> finds the link from the address). None or several is an
    /// <see cref="InvalidRequestException"/> naming the candidates.
    /// </summary>
    public string NeighborNetwork(string? network, string ip)
    {
        if (!string.IsNullOrWhiteSpace(network)) return network;
        if (IsIPv6Text(ip))
        {
            UInt128 a6 = ParseIPv6(ip, "ip");
            var on6 = Datapath.Topology.Networks.Where(n => n.Router is { HasIPv6: true } r && r.OnLink6(a6)).ToArray();
            if (on6.Length == 1) return on6[0].Name;
            throw new InvalidRequestException($"network: {ip} is in {(on6.Length == 0 ? "no" : "more than one")} network's subnet6; say which (network, vsctl --network)");
        }
        uint addr = ParseIPv4(ip, "ip");
        var routed = Datapath.Topology.Networks.Where(n => n.Router is not null).ToArray();
        var holding = routed.Where(n => n.Router!.OnLink(addr)).ToArray();
        if (holding.Length == 1) return holding[0].Name;
        static string Describe(IEnumerable<VSwitch.Core.Topology.Network> nets) =>
            string.Join(", ", nets.Select(n => $"{n.Name} ({FormatPrefix(n.Router!.Subnet, n.Router.PrefixLength)})"));
        if (holding.Length > 1)
            throw new InvalidRequestException($"network: {ip} is in the subnet of several networks: {Describe(holding)}; say which (network, vsctl --network)");
        throw new InvalidRequestException(routed.Length == 0
            ? $"network: {ip} is in no network's subnet (no network has one); say which (network, vsctl --network)"
            : $"network: {ip} is in no network's subnet (routed networks: {Describe(routed)}); say which (network, vsctl --network)");
    }
}
