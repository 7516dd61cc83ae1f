namespace VSwitch.Core.Flow;

/// <summary>
/// A packet's state as conntrack sees it, with Open vSwitch's <c>ct_state</c> bits so that rules and
/// traces read the same: +trk (looked at), +new, +est (a reply was seen), +rel (an ICMP error about a
/// tracked connection), +rpl (the reply direction), +inv (cannot belong to a connection), +snat/+dnat.
/// </summary>
[Flags]
public enum CtState : byte
{
    None = 0,
    New = 0x01,
    Established = 0x02,
    Related = 0x04,
    Reply = 0x08,
    Invalid = 0x10,
    Tracked = 0x20,
    SrcNat = 0x40,
    DstNat = 0x80,
}

/// <summary>
/// What the conntrack stage found out about one packet, carried to the actions so that a commit
/// (the slow path's <c>ct(commit)</c>) knows the connection as it came in and the NAT already chosen.
/// Reset for every packet the stage looks at; a plain struct in the packet, so nothing is allocated.
/// </summary>
public struct PacketCt
{
    /// <summary>The entry found, or -1: a new connection (or an untracked packet).</summary>
    public int Index;
    public bool Reply;
    /// <summary>The connection as its first packet came, before any NAT.</summary>
    public ConnTuple Orig;
    /// <summary>A new connection's destination NAT, chosen by a frontend (a service backend, a published port).</summary>
    public bool PendingDnat;
    /// <summary>A new connection's source NAT for hairpin (a backend calling its own service).</summary>
    public bool PendingSnat;
    /// <summary>The backend's label for the entry (see ConnEntry.Label).</summary>
    public int Label;
    /// <summary>TCP taken up in the middle (no SYN): committed as established.</summary>
    public bool PickedUp;
}

public static class CtStates
{
    /// <summary>ct_state as ovs-ofctl writes it: +trk+est+rpl.</summary>
    public static string Describe(CtState s)
    {
        if (s == CtState.None) return "-trk";
        var b = new System.Text.StringBuilder();
        if ((s & CtState.Tracked) != 0) b.Append("+trk");
        if ((s & CtState.New) != 0) b.Append("+new");
        if ((s & CtState.Established) != 0) b.Append("+est");
        if ((s & CtState.Related) != 0) b.Append("+rel");
        if ((s & CtState.Reply) != 0) b.Append("+rpl");
        if ((s & CtState.Invalid) != 0) b.Append("+inv");
        if ((s & CtState.SrcNat) != 0) b.Append("+snat");
        if ((s & CtState.DstNat) != 0) b.Append("+dnat");
        return b.ToString();
    }
}
