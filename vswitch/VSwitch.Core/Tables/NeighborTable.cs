using System.Collections.Concurrent;

namespace VSwitch.Core.Tables;

/// <summary>Neighbour states, as the kernel's (ip neigh). ARP entries skip DELAY and PROBE; IPv6 neighbours (<see cref="NeighborTable6"/>) go through all of RFC 4861's.</summary>
public enum NeighborState : byte
{
    /// <summary>Asked (ARP request sent), no answer yet: packets wait in a bounded queue.</summary>
    Incomplete,
    /// <summary>Confirmed recently: used for forwarding.</summary>
    Reachable,
    /// <summary>Not confirmed for a while: still used, forgotten if it stays unconfirmed.</summary>
    Stale,
    /// <summary>No answer to the requests: packets get ICMP host unreachable until it is retried.</summary>
    Failed,
    /// <summary>Configured by the operator: never ages.</summary>
    Permanent,
    /// <summary>IPv6: a stale entry was used; waiting a moment for the host to prove itself before probing (RFC 4861 §7.3.2).</summary>
    Delay,
    /// <summary>IPv6: unicast solicitations sent to confirm the entry; still used meanwhile.</summary>
    Probe,
}

/// <summary>One neighbour: an IP address on a network and the MAC that answers for it.</summary>
public sealed class NeighborEntry(ushort network, uint address)
{
    public ushort Network { get; } = network;
    public uint Address { get; } = address;
    private ulong _mac;
    public ulong Mac { get => Volatile.Read(ref _mac); internal set => Volatile.Write(ref _mac, value); }
    private int _state;
    public NeighborState State { get => (NeighborState)Volatile.Read(ref _state); internal set => Volatile.Write(ref _state, (int)value); }
    /// <summary>When the state last changed or was confirmed (monotonic ms).</summary>
    public long UpdatedMs;
    public long LastRequestMs;
    public int Requests;

    public bool Usable => State is NeighborState.Reachable or NeighborState.Stale or NeighborState.Permanent;
}

/// <summary>
/// The router's ARP cache per network (the kernel's neighbour table, `ip neigh`). Entries are
/// created when the router needs a next hop's MAC (INCOMPLETE, a request goes out), confirmed by
/// replies or by the neighbour's own requests (REACHABLE), become STALE after
/// <see cref="ReachableMs"/>, and are forgotten when stale for <see cref="StaleMs"/>. Unanswered
/// after <see cref="MaxRequests"/> requests one second apart, an entry is FAILED for
/// <see cref="FailedMs"/>, then forgotten so the next packet tries again.
/// Reads are lock-free (ConcurrentDictionary lookups); every change that matters to forwarding
/// bumps <see cref="Version"/> so that cached flows revalidate.
/// </summary>
public sealed class NeighborTable
{
    public const long ReachableMs = 30_000;
    public const long StaleMs = 60_000;
    public const long FailedMs = 3_000;
    public const long RetransmitMs = 1_000;
    public const int MaxRequests = 3;
    public const int MaxEntries = 65_536;

    private readonly ConcurrentDictionary<(ushort Network, uint Address), NeighborEntry> _entries = new();
    private long _version;

    private long _refused;

    public long Version => Volatile.Read(ref _version);
    public int Count => _entries.Count;

    /// <summary>Entries not made because the table held <see cref="MaxEntries"/> (the packet was dropped as neighbor-queue-full).</summary>
    public long Refused => Volatile.Read(ref _refused);

    public NeighborEntry? Lookup(ushort network, uint address) =>
        _entries.TryGetValue((network, address), out var e) ? e : null;

    /// <summary>Finds the entry for a next hop, creating it INCOMPLETE when absent. <paramref name="created"/> says whether a request must go out now.</summary>
    public NeighborEntry? Resolve(ushort network, uint address, long nowMs, out bool created)
    {
        created = false;
        if (_entries.TryGetValue((network, address), out var e)) return e;
        if (_entries.Count >= MaxEntries) { Interlocked.Increment(ref _refused); return null; }
        var fresh = new NeighborEntry(network, address) { UpdatedMs = nowMs, LastRequestMs = nowMs, Requests = 1 };
        e = _entries.GetOrAdd((network, address), fresh);
        created = ReferenceEquals(e, fresh);
        return e;
    }

    /// <summary>
    /// An ARP packet told us <paramref name="address"/> is at <paramref name="mac"/>. With
    /// <paramref name="create"/> off (gratuitous ARP, ARP not meant for the router) only an existing entry is updated.
    /// </summary>
    public void Confirm(ushort network, uint address, ulong mac, long nowMs, bool create)
    {
        if (!_entries.TryGetValue((network, address), out var e))
        {
            if (!create) return;
            if (_entries.Count >= MaxEntries) { Interlocked.Increment(ref _refused); return; }
            e = _entries.GetOrAdd((network, address), new NeighborEntry(network, address));
        }
        if (e.State == NeighborState.Permanent) return;
        bool changed = e.Mac != mac || !e.Usable;
        e.Mac = mac;
        e.UpdatedMs = nowMs;
        e.State = NeighborState.Reachable;
        if (changed) Interlocked.Increment(ref _version);
    }

    public void AddStatic(ushort network, uint address, ulong mac)
    {
        var e = _entries.GetOrAdd((network, address), _ => new NeighborEntry(network, address));
        e.Mac = mac;
        e.State = NeighborState.Permanent;
        Interlocked.Increment(ref _version);
    }

    public bool Remove(ushort network, uint address)
    {
        bool removed = _entries.TryRemove((network, address), out _);
        if (removed) Interlocked.Increment(ref _version);
        return removed;
    }

    /// <summary>Forgets learned entries (all, or one network's); static ones stay.</summary>
    public int Flush(ushort? network = null)
    {
        int n = 0;
        foreach (var kv in _entries)
            if ((network is null || kv.Key.Network == network) && kv.Value.State != NeighborState.Permanent && _entries.TryRemove(kv.Key, out _)) n++;
        if (n > 0) Interlocked.Increment(ref _version);
        return n;
    }

    public List<NeighborEntry> Entries() => [.. _entries.Values];

    /// <summary>
    /// Timers, run by the control plane a few times a second: retransmits requests for INCOMPLETE
    /// entries through <paramref name="sendRequest"/>, fails them after the last one, ages
    /// REACHABLE into STALE and forgets long-STALE and FAILED entries.
    /// </summary>
    public void Tick(long nowMs, Action<NeighborEntry> sendRequest)
    {
        bool changed = false;
        foreach (var kv in _entries)
        {
            var e = kv.Value;
            switch (e.State)
            {
                case NeighborState.Incomplete:
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
                        sendRequest(e);
                    }
                    break;
                case NeighborState.Reachable:
                    if (nowMs - e.UpdatedMs >= ReachableMs) { e.State = NeighborState.Stale; e.UpdatedMs = nowMs; }
                    break;
                case NeighborState.Stale:
                    if (nowMs - e.UpdatedMs >= StaleMs && _entries.TryRemove(kv.Key, out _)) changed = true;
                    break;
                case NeighborState.Failed:
                    if (nowMs - e.UpdatedMs >= FailedMs && _entries.TryRemove(kv.Key, out _)) changed = true;
                    break;
            }
        }
        if (changed) Interlocked.Increment(ref _version);
    }
}
