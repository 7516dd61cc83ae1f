using System.Globalization;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Flow;

public enum ActionKind : byte
{
    /// <summary>Send to a port (<see cref="FlowAction.Port"/>).</summary>
    Output,
    /// <summary>The learning bridge decides (rule tables only; the cache holds what it decided).</summary>
    Normal,
    /// <summary>Every other port of the network carrying the frame's VLAN.</summary>
    Flood,
    /// <summary>Back out of the port the frame came in on (OpenFlow's IN_PORT).</summary>
    InPort,
    Drop,
    SetDlSrc,
    SetDlDst,
    /// <summary>Set the frame's VLAN (tagged again on trunk outputs).</summary>
    SetVlan,
    StripVlan,
    DecTtl,
    SetTunnel,
    // Router actions (produced by the slow path, never written in rules).
    /// <summary>Turn an ARP request for the router's address into the reply, back out of the ingress port (Value: router MAC).</summary>
    ArpReply,
    /// <summary>Turn an ICMP echo request to the router into the reply, back out of the ingress port (Value: router MAC).</summary>
    EchoReply,
    /// <summary>Send an ICMP error about the frame back to its sender and drop the frame (Port: type &lt;&lt; 8 | code; Value: reason &lt;&lt; 32 | MTU).</summary>
    IcmpError,
    /// <summary>Hold the frame until the next hop's MAC is known (Port: network; Value: next-hop address).</summary>
    Resolve,
    /// <summary>Frames longer than the MTU (Value) get "fragmentation needed" when DF is set (Port: ingress network).</summary>
    CheckMtu,
    /// <summary>The router took the frame (an ARP reply it learned from): released, not a drop.</summary>
    Consume,
    /// <summary>
    /// Enter a new connection in the conntrack table (OVS's ct(commit)), with the NAT the conntrack
    /// stage chose; Value non-zero: also masquerade, source NAT to that IPv4 address (host order).
    /// Does nothing for a packet of a connection already entered.
    /// </summary>
    CtCommit,
    /// <summary>IPv6 neighbour discovery (NS, NA, RS) for the router: read, learned from and answered by the action stage, from fields outside the flow key.</summary>
    Ndp,
}

/// <summary>
/// One action, as a small value: a rule's list and a cached flow's list are arrays of these, so
/// executing them walks an array without virtual calls.
/// </summary>
public readonly record struct FlowAction(ActionKind Kind, int Port = 0, ulong Value = 0)
{
    public static FlowAction Output(int port) => new(ActionKind.Output, port);

    /// <summary>Output to a tunnel port, encapsulated with this VNI for this remote VTEP.</summary>
    public static FlowAction Tunnel(int port, uint vni, uint remote) => new(ActionKind.Output, port, (ulong)vni << 32 | remote);
    public static readonly FlowAction Normal = new(ActionKind.Normal);
    public static readonly FlowAction Flood = new(ActionKind.Flood);
    public static FlowAction Drop(DropReason reason) => new(ActionKind.Drop, Value: (ulong)reason);
    public static readonly FlowAction CtCommit = new(ActionKind.CtCommit);
    /// <summary>ct(commit,nat(src=ADDRESS)): masquerade behind an IPv4 address.</summary>
    public static FlowAction CtCommitSnat(uint address) => new(ActionKind.CtCommit, Value: address);

    public DropReason DropReason => Kind == ActionKind.Drop ? (DropReason)Value : DropReason.None;

    /// <summary>ovs-ofctl's spelling, with port names where known.</summary>
    public string Format(Func<int, string?>? portName = null) => Kind switch
    {
        ActionKind.Output when Value != 0 => "output:" + (portName?.Invoke(Port) ?? Port.ToString(CultureInfo.InvariantCulture))
            + $"(vxlan vni={Value >> 32},remote={VtepRemote.Format((uint)Value)})",
        ActionKind.Output => "output:" + (portName?.Invoke(Port) ?? Port.ToString(CultureInfo.InvariantCulture)),
        ActionKind.Normal => "normal",
        ActionKind.InPort => "in_port",
        ActionKind.Drop => DropReason is DropReason.RuleDrop or DropReason.None ? "drop" : "drop(" + DropReason.Name() + ")",
        ActionKind.SetDlSrc => "mod_dl_src:" + MacAddress.Format(Value),
        ActionKind.SetDlDst => "mod_dl_dst:" + MacAddress.Format(Value),
        ActionKind.SetVlan => "mod_vlan_vid:" + Value.ToString(CultureInfo.InvariantCulture),
        ActionKind.StripVlan => "strip_vlan",
        ActionKind.DecTtl => "dec_ttl",
        ActionKind.SetTunnel => "set_tunnel:" + Value.ToString(CultureInfo.InvariantCulture),
        ActionKind.Flood when Port != 0 => "flood(network " + Port.ToString(CultureInfo.InvariantCulture) + ")",
        ActionKind.ArpReply => "arp_reply(" + MacAddress.Format(Value) + ")",
        ActionKind.EchoReply => "icmp_echo_reply",
        ActionKind.IcmpError => $"icmp_error(type={Port >> 8},code={Port & 0xFF}{((uint)Value != 0 ? ",mtu=" + (uint)Value : "")})",
        ActionKind.Resolve => "resolve(" + (Value == 0 ? "nd" : AddressFormat.IPv4((uint)Value)) + ")",
        ActionKind.Ndp => "nd",
        ActionKind.CheckMtu => "check_mtu(" + Value.ToString(CultureInfo.InvariantCulture) + ")",
        ActionKind.Consume => "consume",
        ActionKind.CtCommit when Value != 0 => "ct(commit,nat(src=" + AddressFormat.IPv4((uint)Value) + "))",
        ActionKind.CtCommit => "ct(commit)",
        ActionKind.Flood => "flood",
        _ => Kind.ToString(),
    };

    public static string Format(ReadOnlySpan<FlowAction> actions, Func<int, string?>? portName = null)
    {
        if (actions.Length == 0) return "drop";
        var parts = new string[actions.Length];
        for (int i = 0; i < actions.Length; i++) parts[i] = actions[i].Format(portName);
        return string.Join(',', parts);
    }
}
