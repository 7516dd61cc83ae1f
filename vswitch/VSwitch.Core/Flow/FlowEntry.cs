namespace VSwitch.Core.Flow;

/// <summary>
/// One datapath flow: an exact flow key and the final actions the slow path chose for it
/// (OVS's datapath flow, as `ovs-appctl dpctl/dump-flows` shows it).
/// </summary>
public sealed class FlowEntry
{
    public FlowKey Key;
    public ulong Hash;
    public FlowAction[] Actions = [];
    /// <summary>The rule that decided (null: table miss).</summary>
    public RuleCounters? Rule;
    public long Packets, Bytes;
    /// <summary>The part of Packets/Bytes already added to a rule's retired counters.</summary>
    public long AttributedPackets, AttributedBytes;
    public long CreatedMs, LastUsedMs;
    /// <summary>The generation of the tables every flow depends on (rules, topology, static MACs, conntrack's settings) when the actions were computed; a different one means stale.</summary>
    public long Generation;
    /// <summary>Whether the router decided (then the routes' and neighbours' generation counts too).</summary>
    public bool Routed;
    /// <summary>The routes' and neighbours' generation when a routed flow was computed.</summary>
    public long RoutingGeneration;
    /// <summary>
    /// The MAC table slot of the one address the flow looked up (the destination, or the router's next hop),
    /// with that slot's counter then: only a change to an address of that slot makes the flow stale.
    /// -1: no address looked up; -2: several, and <see cref="MacGeneration"/> (every address) counts.
    /// </summary>
    public int MacSlot = -1;
    public int MacSlotGeneration;
    public long MacGeneration;
    /// <summary>The slow path must see every packet of this flow (ARP to the router): never served from the cache.</summary>
    public bool NoCache;

    // The learning side effect of a `normal` flow, repeated from the cache at most once a second
    // so that hosts that only ever hit the cache do not age out of the MAC table.
    public bool Learns;
    public ushort LearnNetwork, LearnVlan;
    public ulong LearnMac;
    public int LearnPort;
    public uint LearnRemote;
    public long LearnAgingMs;
    public long LastLearnMs;
}
