namespace VSwitch.Core.Tables;

/// <summary>
/// The router's IPv6 neighbour cache per network (the kernel's <c>nd_tbl</c>, <c>ip -6 neigh</c>):
/// the shared states and timers of <see cref="NeighborCache{TAddress}"/> over IPv6 addresses, fed
/// by neighbour discovery, with the states ARP lacks (RFC 4861 §7.3.2):
/// <list type="bullet">
/// <item>INCOMPLETE: a next hop is needed; multicast NS to its solicited-node group (ARP broadcasts
/// instead), then FAILED (packets get "address unreachable"), then forgotten.</item>
/// <item>REACHABLE: a solicited NA confirmed it; STALE after <see cref="NeighborCache{TAddress}.ReachableMs"/>.</item>
/// <item>STALE: learned from an NS or an unsolicited NA, or timed out. Still used; the first
/// use (a routed flow decided through it) makes it DELAY. Forgotten after <see cref="NeighborCache{TAddress}.StaleMs"/> unused.</item>
/// <item>DELAY: used while stale; after <see cref="NeighborCache{TAddress}.DelayMs"/> without confirmation, PROBE.</item>
/// <item>PROBE: unicast NS every <see cref="NeighborCache{TAddress}.RetransmitMs"/>; an answer makes it REACHABLE, silence FAILED.</item>
/// </list>
/// REACHABLE becoming STALE bumps the version: cached flows then revalidate, and the slow path sees
/// the entry in use and starts DELAY, which is how a flow-cached datapath notices "the entry was used".
/// </summary>
public sealed class NeighborTable6 : NeighborCache<UInt128>
{
    protected override bool RevalidateWhenStale => true;

    /// <summary>A routed flow was decided through this entry: a STALE one starts DELAY (RFC 4861 §7.3.3).</summary>
    public void Used(NeighborEntry<UInt128> e, long nowMs)
    {
        if (e.State != NeighborState.Stale) return;
        e.State = NeighborState.Delay;
        e.UpdatedMs = nowMs;
    }

    /// <summary>
    /// An NS for one of the router's addresses came from <paramref name="address"/> with a source
    /// link-layer option (RFC 4861 §7.2.3): an unknown sender is created STALE, a known one whose
    /// MAC changed is updated and made STALE; the same MAC changes nothing.
    /// </summary>
    public void OnSolicitation(ushort network, UInt128 address, ulong mac, long nowMs)
    {
        var e = FindOrCreate(network, address, NeighborState.Stale);
        if (e is null || e.State == NeighborState.Permanent) return;
        if (e.Mac == mac && e.State != NeighborState.Incomplete && e.State != NeighborState.Failed) return;
        e.Mac = mac;
        e.State = NeighborState.Stale;
        e.UpdatedMs = nowMs;
        Changed();
    }

    /// <summary>
    /// An NA for <paramref name="target"/> (RFC 4861 §7.2.5). False when nobody asked: no entry for
    /// the target, so the advertisement is discarded and creates nothing (the table cannot be filled
    /// or poisoned by unsolicited advertisements), or an INCOMPLETE entry and no target link-layer option.
    /// </summary>
    public bool OnAdvertisement(ushort network, UInt128 target, ulong mac, bool solicited, bool overrideFlag, long nowMs)
    {
        if (Lookup(network, target) is not { } e) return false;
        var state = e.State;
        if (state == NeighborState.Permanent) return true;
        if (state is NeighborState.Incomplete or NeighborState.Failed)
        {
            if (mac == 0) return false;
            e.Mac = mac;
            e.State = solicited ? NeighborState.Reachable : NeighborState.Stale;
            e.UpdatedMs = nowMs;
            e.Requests = 0;
            Changed();
            return true;
        }
        bool differs = mac != 0 && mac != e.Mac;
        if (!overrideFlag && differs)
        {
            // Another MAC without the override flag: not believed, but the old one is in doubt.
            if (state == NeighborState.Reachable)
            {
                e.State = NeighborState.Stale;
                e.UpdatedMs = nowMs;
            }
            return true;
        }
        if (differs)
        {
            e.Mac = mac;
            Changed();
        }
        if (solicited)
        {
            e.State = NeighborState.Reachable;
            e.UpdatedMs = nowMs;
            e.Requests = 0;
        }
        else if (differs)
        {
            e.State = NeighborState.Stale;
            e.UpdatedMs = nowMs;
        }
        return true;
    }
}
