using System.Collections.Concurrent;

namespace VSwitch.Core.Tables;

/// <summary>One IPv6 neighbour: an address on a network, the MAC that answers for it, and its RFC 4861 state.</summary>
public sealed class NeighborEntry6(ushort network, UInt128 address)
{
    public ushort Network { get; } = network;
    public UInt128 Address { get; } = address;
    private ulong _mac;
    public ulong Mac { get => Volatile.Read(ref _mac); internal set => Volatile.Write(ref _mac, value); }
    private int _state;
    public NeighborState State { get => (NeighborState)Volatile.Read(ref _state); internal set => Volatile.Write(ref _state, (int)value); }
    /// <summary>When the state last changed or was confirmed (monotonic ms).</summary>
    public long UpdatedMs;
    public long LastRequestMs;
    /// <summary>Solicitations sent in the current INCOMPLETE or PROBE round.</summary>
    public int Requests;

    /// <summary>Whether packets may use the MAC: RFC 4861 keeps sending to STALE, DELAY and PROBE entries while it checks them.</summary>
    public bool Usable => State is NeighborState.Reachable or NeighborState.Stale or NeighborState.Delay or NeighborState.Probe or NeighborState.Permanent;
}

/// <summary>
/// The router's IPv6 neighbour cache per network, with the states of RFC 4861 §7.3.2 as the
/// kernel keeps them (<c>ip -6 neigh</c>):
/// <list type="bullet">
/// <item>INCOMPLETE: a next hop is needed; multicast NS to its solicited-node group, every
/// <see cref="RetransMs"/>, <see cref="MaxMulticastSolicit"/> times, then FAILED (packets get
/// "address unreachable") for <see cref="FailedMs"/>, then forgotten.</item>
/// <item>REACHABLE: a solicited NA confirmed it; STALE after <see cref="ReachableMs"/>.</item>
/// <item>STALE: learned from an NS or an unsolicited NA, or timed out. Still used; the first
/// use (a routed flow decided through it) makes it DELAY. Forgotten after <see cref="StaleMs"/> unused.</item>
/// <item>DELAY: used while stale; after <see cref="DelayMs"/> without confirmation, PROBE.</item>
/// <item>PROBE: unicast NS every <see cref="RetransMs"/>, <see cref="MaxUnicastSolicit"/> times;
/// an answer makes it REACHABLE, silence FAILED.</item>
/// </list>
/// Reads are lock-free (ConcurrentDictionary lookups, from the slow path only: a cached routed flow
/// does not touch this table). Every change that matters to forwarding bumps <see cref="Version"/>,
/// and so does REACHABLE becoming STALE: cached flows then revalidate, and the slow path sees the
/// entry in use and starts DELAY, which is how a flow-cached datapath notices "the entry was used".
/// </summary>
public sealed class NeighborTable6
{
    public const long ReachableMs = 30_000;
    public const long StaleMs = 60_000;
    public const long DelayMs = 5_000;
    public const long RetransMs = 1_000;
    public const long FailedMs = 3_000;
    public const int MaxMulticastSolicit = 3;
    public const int MaxUnicastSolicit = 3;
    public const int MaxEntries = 65_536;

    private readonly ConcurrentDictionary<(ushort Network, UInt128 Address), NeighborEntry6> _entries = new();
    private long _version, _refused;

    public long Version => Volatile.Read(ref _version);
    public int Count => _entries.Count;
    /// <summary>Entries not made because the table was full.</summary>
    public long Refused => Volatile.Read(ref _refused);

    public NeighborEntry6? Lookup(ushort network, UInt128 address) =>
        _entries.TryGetValue((network, address), out var e) ? e : null;

    /// <summary>Finds the entry for a next hop, creating it INCOMPLETE when absent; <paramref name="created"/> says a solicitation must go out now.</summary>
    public NeighborEntry6? Resolve(ushort network, UInt128 address, long nowMs, out bool created)
    {
        created = false;
        if (_entries.TryGetValue((network, address), out var e)) return e;
        if (_entries.Count >= MaxEntries) { Interlocked.Increment(ref _refused); return null; }
        var fresh = new NeighborEntry6(network, address) { UpdatedMs = nowMs, LastRequestMs = nowMs, Requests = 1 };
        e = _entries.GetOrAdd((network, address), fresh);
        created = ReferenceEquals(e, fresh);
        return e;
    }

    /// <summary>A routed flow was decided through this entry: a STALE one starts DELAY (RFC 4861 §7.3.3).</summary>
    public void Used(NeighborEntry6 e, long nowMs)
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
        if (!_entries.TryGetValue((network, address), out var e))
        {
            if (_entries.Count >= MaxEntries) { Interlocked.Increment(ref _refused); return; }
            e = _entries.GetOrAdd((network, address), new NeighborEntry6(network, address) { State = NeighborState.Stale });
        }
        if (e.State == NeighborState.Permanent) return;
        if (e.Mac == mac && e.State != NeighborState.Incomplete && e.State != NeighborState.Failed) return;
        e.Mac = mac;
        e.State = NeighborState.Stale;
        e.UpdatedMs = nowMs;
        Interlocked.Increment(ref _version);
    }

    /// <summary>
    /// An NA for <paramref name="target"/> (RFC 4861 §7.2.5). False when nobody asked: no entry for
    /// the target, so the advertisement is discarded and creates nothing (the table cannot be filled
    /// or poisoned by unsolicited advertisements), or an INCOMPLETE entry and no target link-layer option.
    /// </summary>
    public bool OnAdvertisement(ushort network, UInt128 target, ulong mac, bool solicited, bool overrideFlag, long nowMs)
    {
        if (!_entries.TryGetValue((network, target), out var e)) return false;
        var state = e.State;
        if (state == NeighborState.Permanent) return true;
        if (state is NeighborState.Incomplete or NeighborState.Failed)
        {
            if (mac == 0) return false;
            e.Mac = mac;
            e.State = solicited ? NeighborState.Reachable : NeighborState.Stale;
            e.UpdatedMs = nowMs;
            e.Requests = 0;
            Interlocked.Increment(ref _version);
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
            Interlocked.Increment(ref _version);
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

    public void AddStatic(ushort network, UInt128 address, ulong mac)
    {
        var e = _entries.GetOrAdd((network, address), _ => new NeighborEntry6(network, address));
        e.Mac = mac;
        e.State = NeighborState.Permanent;
        Interlocked.Increment(ref _version);
    }

    public bool Remove(ushort network, UInt128 address)
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

    public List<NeighborEntry6> Entries() => [.. _entries.Values];

    /// <summary>
    /// The timers, run by the control plane a few times a second. <paramref name="solicit"/> gets
    /// the entry and whether the solicitation is unicast (PROBE: to the MAC it has) or multicast
    /// (INCOMPLETE: to the solicited-node group).
    /// </summary>
    public void Tick(long nowMs, Action<NeighborEntry6, bool> solicit)
    {
        bool changed = false;
        foreach (var kv in _entries)
        {
            var e = kv.Value;
            switch (e.State)
            {
                case NeighborState.Incomplete:
                case NeighborState.Probe:
                    if (nowMs - e.LastRequestMs < RetransMs) break;
                    if (e.Requests >= (e.State == NeighborState.Incomplete ? MaxMulticastSolicit : MaxUnicastSolicit))
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
                        changed = true; // cached flows revalidate: a flow still in use moves it to DELAY
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
        if (changed) Interlocked.Increment(ref _version);
    }
}
