using System.Collections.Concurrent;

namespace VSwitch.Core.Tables;

/// <summary>Neighbour states, as the kernel's (ip neigh). ARP entries (<see cref="NeighborTable"/>) skip DELAY and PROBE; IPv6 neighbours (<see cref="NeighborTable6"/>) go through all of RFC 4861's.</summary>
public enum NeighborState : byte
{
    /// <summary>Asked (ARP request or neighbour solicitation sent), no answer yet: packets wait in a bounded queue.</summary>
    Incomplete,
    /// <summary>Confirmed recently: used for forwarding.</summary>
    Reachable,
    /// <summary>Not confirmed for a while: still used, forgotten if it stays unconfirmed.</summary>
    Stale,
    /// <summary>No answer to the requests: packets get ICMP host (ICMPv6 address) unreachable until it is retried.</summary>
    Failed,
    /// <summary>Configured by the operator: never ages.</summary>
    Permanent,
    /// <summary>IPv6: a stale entry was used; waiting a moment for the host to prove itself before probing (RFC 4861 §7.3.2).</summary>
    Delay,
    /// <summary>IPv6: unicast solicitations sent to confirm the entry; still used meanwhile.</summary>
    Probe,
}

/// <summary>One neighbour: an IP address (<c>uint</c> for IPv4, <c>UInt128</c> for IPv6) on a network, the MAC that answers for it, and its state.</summary>
public sealed class NeighborEntry<TAddress>(ushort network, TAddress address)
    where TAddress : unmanaged, IEquatable<TAddress>
{
    public ushort Network { get; } = network;
    public TAddress Address { get; } = address;
    private ulong _mac;
    public ulong Mac { get => Volatile.Read(ref _mac); internal set => Volatile.Write(ref _mac, value); }
    private int _state;
    public NeighborState State { get => (NeighborState)Volatile.Read(ref _state); internal set => Volatile.Write(ref _state, (int)value); }
    /// <summary>When the state last changed or was confirmed (monotonic ms).</summary>
    public long UpdatedMs;
    public long LastRequestMs;
    /// <summary>Requests (solicitations) sent in the current INCOMPLETE or PROBE round.</summary>
    public int Requests;

    /// <summary>Whether packets may use the MAC: RFC 4861 keeps sending to STALE, DELAY and PROBE entries while it checks them (an ARP entry is never DELAY or PROBE).</summary>
    public bool Usable => State is NeighborState.Reachable or NeighborState.Stale or NeighborState.Delay or NeighborState.Probe or NeighborState.Permanent;
}

/// <summary>
/// What both families' neighbour tables share, as the kernel's <c>neigh_table</c> serves both
/// <c>arp_tbl</c> and <c>nd_tbl</c>: entries per (network, address), created INCOMPLETE when the
/// router needs a next hop (a request goes out), asked again every <see cref="RetransmitMs"/> and
/// FAILED after <see cref="MaxRequests"/> unanswered requests, forgotten <see cref="FailedMs"/>
/// later so the next packet tries again; REACHABLE ages into STALE after <see cref="ReachableMs"/>,
/// and STALE is forgotten after <see cref="StaleMs"/>. What the protocols say to the table (ARP
/// replies and requests; neighbour solicitations and advertisements) is the family's: see
/// <see cref="NeighborTable"/> and <see cref="NeighborTable6"/>.
/// Reads are lock-free (ConcurrentDictionary lookups, from the slow path only: a cached routed flow
/// does not touch the table); every change that matters to forwarding bumps <see cref="Version"/>
/// so that cached flows revalidate.
/// </summary>
public abstract class NeighborCache<TAddress>
    where TAddress : unmanaged, IEquatable<TAddress>
{
    public const long ReachableMs = 30_000;
    public const long StaleMs = 60_000;
    public const long FailedMs = 3_000;
    /// <summary>Between two requests for one entry (RFC 4861's RETRANS_TIMER; the kernel's ARP retrans_time).</summary>
    public const long RetransmitMs = 1_000;
    /// <summary>
    /// Requests before an entry fails: broadcast ARP requests or multicast solicitations from
    /// INCOMPLETE (RFC 4861's MAX_MULTICAST_SOLICIT), unicast solicitations from PROBE
    /// (MAX_UNICAST_SOLICIT); all three are 3, here as in the kernel.
    /// </summary>
    public const int MaxRequests = 3;
    /// <summary>How long a used STALE entry waits for a confirmation before PROBE (RFC 4861's DELAY_FIRST_PROBE_TIME; only IPv6 entries are ever DELAY).</summary>
    public const long DelayMs = 5_000;
    public const int MaxEntries = 65_536;

    private readonly ConcurrentDictionary<(ushort Network, TAddress Address), NeighborEntry<TAddress>> _entries = new();
    private long _version, _refused;

    public long Version => Volatile.Read(ref _version);
    public int Count => _entries.Count;

    /// <summary>Entries not made because the table held <see cref="MaxEntries"/> (the packet was dropped as neighbor-queue-full).</summary>
    public long Refused => Volatile.Read(ref _refused);

    public NeighborEntry<TAddress>? Lookup(ushort network, TAddress address) =>
        _entries.TryGetValue((network, address), out var e) ? e : null;

    /// <summary>Finds the entry for a next hop, creating it INCOMPLETE when absent. <paramref name="created"/> says whether a request must go out now.</summary>
    public NeighborEntry<TAddress>? Resolve(ushort network, TAddress address, long nowMs, out bool created)
    {
        created = false;
        if (_entries.TryGetValue((network, address), out var e)) return e;
        if (_entries.Count >= MaxEntries) { Interlocked.Increment(ref _refused); return null; }
        var fresh = new NeighborEntry<TAddress>(network, address) { UpdatedMs = nowMs, LastRequestMs = nowMs, Requests = 1 };
        e = _entries.GetOrAdd((network, address), fresh);
        created = ReferenceEquals(e, fresh);
        return e;
    }

    /// <summary>The entry a protocol message speaks of, made in <paramref name="initial"/> state when absent; null when the table is full.</summary>
    protected NeighborEntry<TAddress>? FindOrCreate(ushort network, TAddress address, NeighborState initial)
    {
        if (_entries.TryGetValue((network, address), out var e)) return e;
        if (_entries.Count >= MaxEntries) { Interlocked.Increment(ref _refused); return null; }
        return _entries.GetOrAdd((network, address), new NeighborEntry<TAddress>(network, address) { State = initial });
    }

    /// <summary>A change that matters to forwarding: cached routed flows revalidate.</summary>
    protected void Changed() => Interlocked.Increment(ref _version);

    public void AddStatic(ushort network, TAddress address, ulong mac)
    {
        var e = _entries.GetOrAdd((network, address), static (k) => new NeighborEntry<TAddress>(k.Network, k.Address));
        e.Mac = mac;
        e.State = NeighborState.Permanent;
        Changed();
    }

    public bool Remove(ushort network, TAddress address)
    {
        bool removed = _entries.TryRemove((network, address), out _);
        if (removed) Changed();
        return removed;
    }

    /// <summary>Forgets learned entries (all, or one network's); static ones stay.</summary>
    public int Flush(ushort? network = null)
    {
        int n = 0;
        foreach (var kv in _entries)
            if ((network is null || kv.Key.Network == network) && kv.Value.State != NeighborState.Permanent && _entries.TryRemove(kv.Key, out _)) n++;
        if (n > 0) Changed();
        return n;
    }

    public List<NeighborEntry<TAddress>> Entries() => [.. _entries.Values];

    /// <summary>
    /// The timers, run by the control plane a few times a second. <paramref name="solicit"/> gets
    /// the entry and whether the request is unicast (PROBE: to the MAC it has) or broadcast /
    /// multicast (INCOMPLETE: ARP's broadcast, or the IPv6 solicited-node group).
    /// </summary>
    public void Tick(long nowMs, Action<NeighborEntry<TAddress>, bool> solicit)
    {
        bool changed = false;
        foreach (var kv in _entries)
        {
            var e = kv.Value;
            switch (e.State)
            {
                case NeighborState.Incomplete:
                case NeighborState.Probe:
                    if (nowMs - e.LastRequestMs < RetransmitMs) break;
                    if (e.Requests >= MaxRequests)
                    {
                        e.State = NeighborState.Failed;
                        e.UpdatedMs = nowMs;
                        changed = true;
                    }
                    else
                    {
                        e.Requests++;
                        e.LastRequestMs = nowMs;
                        solicit(e, e.State == NeighborState.Probe);
                    }
                    break;
                case NeighborState.Reachable:
                    if (nowMs - e.UpdatedMs >= ReachableMs)
                    {
                        e.State = NeighborState.Stale;
                        e.UpdatedMs = nowMs;
                        changed |= RevalidateWhenStale;
                    }
                    break;
                case NeighborState.Delay:
                    if (nowMs - e.UpdatedMs >= DelayMs)
                    {
                        e.State = NeighborState.Probe;
                        e.UpdatedMs = nowMs;
                        e.Requests = 1;
                        e.LastRequestMs = nowMs;
                        solicit(e, true);
                    }
                    break;
                case NeighborState.Stale:
                    if (nowMs - e.UpdatedMs >= StaleMs && _entries.TryRemove(kv.Key, out _)) changed = true;
                    break;
                case NeighborState.Failed:
                    if (nowMs - e.UpdatedMs >= FailedMs && _entries.TryRemove(kv.Key, out _)) changed = true;
                    break;
            }
        }
        if (changed) Changed();
    }

    /// <summary>
    /// Whether REACHABLE becoming STALE revalidates cached flows. IPv6 needs it: the slow path is
    /// where a stale entry is seen in use and starts DELAY. ARP has no DELAY, so a stale entry
    /// changes nothing a flow depends on.
    /// </summary>
    protected abstract bool RevalidateWhenStale { get; }
}
