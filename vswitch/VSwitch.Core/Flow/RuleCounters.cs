namespace VSwitch.Core.Flow;

/// <summary>
/// What a cached flow reports back to the rule that produced it: when it was last hit, and the
/// counts of its flows that have left the caches (the way OVS attributes datapath flow statistics
/// to rules). The rule itself (match, actions) lives in <c>Tables.Rules</c>; a flow only needs this part.
/// </summary>
public abstract class RuleCounters
{
    /// <summary>When a packet last hit the rule (slow path or cached flow), monotonic ms.</summary>
    public long LastUsedMs;
    public long RetiredPackets;
    public long RetiredBytes;

    /// <summary>The rule in ovs-ofctl syntax, port numbers named by <paramref name="portName"/>.</summary>
    public abstract string Format(Func<int, string?>? portName = null);
}
