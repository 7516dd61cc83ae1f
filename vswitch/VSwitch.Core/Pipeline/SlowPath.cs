using VSwitch.Core.Flow;
using VSwitch.Core.Tables;
using VSwitch.Core.Tables.Conntrack;
using VSwitch.Core.Tables.Rules;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// What a flow-cache miss runs (OVS's upcall and xlate): the rule table, then for `normal` the
/// learning bridge. The result is a flat list of final actions for the flow cache, plus the rule
/// that decided and the learning to repeat. With a <see cref="PacketTrace"/> it writes down every
/// decision; with <c>sideEffects</c> off (traces) it learns nothing.
/// </summary>
public static class SlowPath
{
    private static readonly FlowAction[] FloodOnly = [FlowAction.Flood];
    private static readonly FlowAction[][] OutputOnly = BuildOutputs();

    private static FlowAction[][] BuildOutputs()
    {
        var a = new FlowAction[SwitchTopology.MaxPorts][];
        for (int i = 0; i < a.Length; i++) a[i] = [FlowAction.Output(i)];
        return a;
    }

    public static void Resolve(in FlowKey key, ushort vlan, Datapath dp, SwitchTopology topo, long nowMs,
        FlowEntry result, List<FlowAction> scratch, bool sideEffects, PacketTrace? trace)
    {
        // What the decision will depend on is recorded as it is made (targeted revalidation): read the
        // counters before the tables, so that a change in between makes the flow stale, never stuck.
        result.Routed = false;
        result.MacSlot = -1;
        result.MacGeneration = dp.MacTable.Generation;
        ResolveTables(in key, vlan, dp, topo, nowMs, result, scratch, sideEffects, trace);
        if (((CtState)key.CtState & (CtState.Tracked | CtState.New)) == (CtState.Tracked | CtState.New))
            AdmitNewConnection(in key, dp, topo, result, sideEffects, trace);
    }

    /// <summary>
    /// A new connection's first packets (ct_state +trk+new): network policy decides whether it may
    /// open (where OVN checks ACLs, after the forwarding decision so that the destination is known);
    /// if so, the flow enters it in the conntrack table before anything else (ct(commit)), so that its
    /// answers and the rest of it pass as established. A flow that drops commits nothing.
    /// </summary>
    private static void AdmitNewConnection(in FlowKey key, Datapath dp, SwitchTopology topo, FlowEntry result, bool count, PacketTrace? trace)
    {
        var actions = result.Actions;
        if (actions.Length == 0 || actions[0].Kind == ActionKind.Drop) return;
        if (dp.Admission is { } admission && !admission.Allows(in key, topo, count, trace))
        {
            result.Actions = [FlowAction.Drop(DropReason.PolicyDenied)];
            return;
        }
        foreach (var a in actions) if (a.Kind == ActionKind.CtCommit) return; // the router asked for one (masquerade)
        result.Actions = [FlowAction.CtCommit, .. actions];
        trace?.Add("conntrack", "a new connection: ct(commit) before the actions");
    }

    private static void ResolveTables(in FlowKey key, ushort vlan, Datapath dp, SwitchTopology topo, long nowMs,
        FlowEntry result, List<FlowAction> scratch, bool sideEffects, PacketTrace? trace)
    {
        result.Learns = false;
        result.Rule = null;
        result.NoCache = false;
        var port = topo.Port(key.InPort);
        if (port is null)
        {
            result.Actions = [FlowAction.Drop(DropReason.PortDown)];
            trace?.Add("ingress", $"port {key.InPort} does not exist: drop");
            return;
        }
        var net = topo.IngressNetwork(port, key.TunId);
        if (net is null)
        {
            result.Actions = [FlowAction.Drop(DropReason.UnknownVni)];
            trace?.Add("ingress", $"tunnel frame with VNI {key.TunId}: no network has it: drop");
            return;
        }
        if (port.IsTunnel)
            trace?.Add("ingress", $"tunnel port {port.Name}: VNI {key.TunId} from VTEP {VtepRemote.Format(key.TunRemote)}: network {net.Name}, vlan {vlan}");
        else
            trace?.Add("ingress", $"port {port.Name} ({(port.Mode == VlanMode.Trunk ? "trunk" : "access")}) on network {net.Name}, vlan {vlan}");

        var rule = dp.Rules.Lookup(key);
        if (rule is null)
        {
            result.Actions = [FlowAction.Drop(DropReason.TableMiss)];
            trace?.Add("rules", "no rule matched (table miss): drop");
            return;
        }
        result.Rule = rule;
        if (sideEffects) Volatile.Write(ref rule.LastUsedMs, nowMs);
        trace?.Add("rules", $"matched {rule.Format(id => topo.Port(id)?.Name)}");
        if (rule.Actions.Length == 0)
        {
            result.Actions = [FlowAction.Drop(DropReason.RuleDrop)];
            trace?.Add("actions", "drop (the rule says so)");
            return;
        }

        scratch.Clear();
        ulong dlDst = key.DlDst;
        ushort curVlan = vlan;
        foreach (var a in rule.Actions)
        {
            switch (a.Kind)
            {
                case ActionKind.Normal:
                    Normal(in key, curVlan, dlDst, port, net, dp, topo, nowMs, result, scratch, sideEffects, trace);
                    break;
                case ActionKind.InPort:
                    scratch.Add(FlowAction.Output(port.Id));
                    break;
                case ActionKind.SetDlDst:
                    dlDst = a.Value;
                    scratch.Add(a);
                    break;
                case ActionKind.SetVlan:
                    curVlan = (ushort)a.Value;
                    scratch.Add(a);
                    break;
                case ActionKind.StripVlan:
                    curVlan = 0;
                    scratch.Add(a);
                    break;
                default:
                    scratch.Add(a);
                    break;
            }
        }
        result.Actions = Finish(scratch);
        trace?.Add("flow-lookup", "the slow path installs the flow: actions=" + FlowAction.Format(result.Actions, id => topo.Port(id)?.Name));
    }

    /// <summary>Records that the flow looked this address up in the MAC table (call before the lookup).</summary>
    public static void DependOnMac(FlowEntry result, MacTable macs, ushort network, ushort vlan, ulong mac)
    {
        int slot = MacTable.GenerationSlot(network, vlan, mac);
        if (result.MacSlot == -1)
        {
            result.MacSlot = slot;
            result.MacSlotGeneration = macs.SlotGeneration(slot);
        }
        else if (result.MacSlot != slot) result.MacSlot = -2;
    }

    /// <summary>Whether a cached flow still says what the tables would (see <see cref="FlowEntry.MacSlot"/>).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static bool IsCurrent(FlowEntry e, long generation, long routingGeneration, MacTable macs) =>
        e.Generation == generation
        && (!e.Routed || e.RoutingGeneration == routingGeneration)
        && (e.MacSlot == -1 || (e.MacSlot >= 0 ? macs.SlotGeneration(e.MacSlot) == e.MacSlotGeneration : macs.Generation == e.MacGeneration));

    private static FlowAction[] Finish(List<FlowAction> scratch)
    {
        if (scratch.Count == 1)
        {
            var a = scratch[0];
            if (a.Kind == ActionKind.Output && a.Value == 0 && (uint)a.Port < (uint)OutputOnly.Length) return OutputOnly[a.Port];
            if (a.Kind == ActionKind.Flood && a.Port == 0) return FloodOnly;
        }
        // Drop actions can only stand alone: keep a drop only when nothing else was decided.
        bool anyOutput = false;
        foreach (var a in scratch) anyOutput |= ActionStage.IsTerminal(a.Kind);
        if (!anyOutput)
        {
            foreach (var a in scratch) if (a.Kind == ActionKind.Drop) return [a];
            return [FlowAction.Drop(DropReason.NoOutput)];
        }
        return scratch.FindAll(a => a.Kind != ActionKind.Drop).ToArray();
    }

    /// <summary>The port that pinned the frame's source MAC in its network, or -1.</summary>
    private static int PinnedOwner(in FlowKey key, ushort vlan, Network net, MacTable macs, SwitchTopology topo)
    {
        int owner = topo.PinnedPort(net.Id, key.DlSrc);
        if (owner >= 0) return owner;
        int st = macs.StaticPort(net.Id, vlan, key.DlSrc);
        return st >= 0 && topo.Port(st) is { PinMac: true } ? st : -1;
    }

    /// <summary>The learning bridge: learn the source, look up the destination, output or flood.</summary>
    private static void Normal(in FlowKey key, ushort vlan, ulong dlDst, SwitchPort port, Network net, Datapath dp, SwitchTopology topo,
        long nowMs, FlowEntry result, List<FlowAction> scratch, bool sideEffects, PacketTrace? trace)
    {
        var macs = dp.MacTable;
        uint inRemote = port.IsTunnel ? key.TunRemote : 0;
        // A MAC pinned to another port (an attachment's assigned MAC, a static entry on a pinning port)
        // may not move here: refuse the frame rather than let it take that port's traffic.
        int owner = PinnedOwner(in key, vlan, net, macs, topo);
        if (owner >= 0 && owner != port.Id)
        {
            trace?.Add("bridge", $"{MacAddress.Format(key.DlSrc)} is pinned to {topo.Port(owner)?.Name}: refuse the move to {port.Name} (mac-move-refused)");
            scratch.Add(FlowAction.Drop(DropReason.MacMoveRefused));
            return;
        }
        // Never learn a group address as a source (IEEE 802.1D): such frames are bogus
        // (the port-security stage already refused them; traces and custom pipelines still come here).
        if (!MacAddress.IsMulticast(key.DlSrc))
        {
            result.Learns = true;
            result.LearnNetwork = net.Id;
            result.LearnVlan = vlan;
            result.LearnMac = key.DlSrc;
            result.LearnPort = port.Id;
            result.LearnAgingMs = net.MacAgingMs;
            result.LearnRemote = inRemote;
            result.LastLearnMs = nowMs;
            string where = inRemote != 0 ? $"{port.Name} behind VTEP {AddressFormat.IPv4(inRemote)}" : port.Name;
            if (sideEffects)
            {
                var lr = macs.Learn(net.Id, vlan, key.DlSrc, port.Id, nowMs, net.MacAgingMs, inRemote);
                trace?.Add("bridge", $"learned {MacAddress.Format(key.DlSrc)} on {where} (vlan {vlan}): {lr.ToString().ToLowerInvariant()}");
            }
            else if (key.DlSrc == 0) trace?.Add("bridge", "no source MAC (dl_src not given): nothing to learn");
            else trace?.Add("bridge", $"would learn {MacAddress.Format(key.DlSrc)} on {where} (vlan {vlan})");
        }
        if (Router.Handles(in key, net, dlDst))
        {
            Router.Route(in key, port, net, dp, topo, nowMs, result, scratch, sideEffects, trace);
            return;
        }
        // ARP that is not for the router still refreshes a neighbour the router knows (gratuitous ARP).
        if (net.Router is not null && key.IsArp)
        {
            result.NoCache = true;
            if (sideEffects && (uint)key.NwSrc != 0) dp.Neighbors.Confirm(net.Id, (uint)key.NwSrc, key.ArpSha, nowMs, create: false);
        }
        if (MacAddress.IsMulticast(dlDst))
        {
            trace?.Add("bridge", $"{MacAddress.Format(dlDst)} is {(MacAddress.IsBroadcast(dlDst) ? "broadcast" : "multicast")}: flood in network {net.Name} vlan {vlan}");
            scratch.Add(FlowAction.Flood);
            return;
        }
        DependOnMac(result, macs, net.Id, vlan, dlDst);
        int outPort = macs.Lookup(net.Id, vlan, dlDst, nowMs, out uint remote);
        if (outPort < 0)
        {
            trace?.Add("bridge", $"{MacAddress.Format(dlDst)} is unknown in network {net.Name} vlan {vlan}: flood");
            scratch.Add(FlowAction.Flood);
            return;
        }
        var outp = topo.Port(outPort);
        if (outPort == port.Id)
        {
            trace?.Add("bridge", $"{MacAddress.Format(dlDst)} is on the ingress port {port.Name}: drop (output-is-ingress)");
            scratch.Add(FlowAction.Drop(DropReason.OutputIsIngress));
            return;
        }
        if (outp is { IsTunnel: true })
        {
            if (port.IsTunnel)
            {
                trace?.Add("bridge", $"{MacAddress.Format(dlDst)} is behind another VTEP: drop (split horizon, never tunnel to tunnel)");
                scratch.Add(FlowAction.Drop(DropReason.TunnelToTunnel));
                return;
            }
            trace?.Add("tunnel", $"{MacAddress.Format(dlDst)} is behind VTEP {AddressFormat.IPv4(remote)}: encapsulate in VXLAN VNI {net.Vni}");
            scratch.Add(FlowAction.Tunnel(outPort, net.Vni ?? 0, remote));
            return;
        }
        trace?.Add("bridge", $"{MacAddress.Format(dlDst)} learned on {outp?.Name ?? outPort.ToString()}: output");
        scratch.Add(FlowAction.Output(outPort));
    }
}
