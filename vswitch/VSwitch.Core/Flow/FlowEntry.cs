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
    /// <summary>The tables' generation when the actions were computed; a different one means stale.</summary>
    public long Generation;
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
