namespace VSwitch.Core.Tables;

/// <summary>
/// The router's ARP cache per network (the kernel's <c>arp_tbl</c>, <c>ip neigh</c>): the shared
/// states and timers of <see cref="NeighborCache{TAddress}"/> over IPv4 addresses, fed by ARP.
/// ARP has one kind of answer and no reachability confirmation of its own, so an entry goes
/// INCOMPLETE → REACHABLE → STALE → forgotten; it is never DELAY or PROBE (unlike
/// <see cref="NeighborTable6"/>), and a request is always a broadcast.
/// </summary>
public sealed class NeighborTable : NeighborCache<uint>
{
    // Nothing here waits for the slow path to see a stale entry in use (no DELAY).
    protected override bool RevalidateWhenStale => false;

    /// <summary>
    /// An ARP packet told us <paramref name="address"/> is at <paramref name="mac"/>. With
    /// <paramref name="create"/> off (gratuitous ARP, ARP not meant for the router) only an existing entry is updated.
    /// </summary>
    public void Confirm(ushort network, uint address, ulong mac, long nowMs, bool create)
    {
        var e = create ? FindOrCreate(network, address, NeighborState.Incomplete) : Lookup(network, address);
        if (e is null || e.State == NeighborState.Permanent) return;
        bool changed = e.Mac != mac || !e.Usable;
        e.Mac = mac;
        e.UpdatedMs = nowMs;
        e.State = NeighborState.Reachable;
        if (changed) Changed();
    }
}
