using System.Runtime.CompilerServices;
using VSwitch.Core.Flow;

namespace VSwitch.Core.Tables;

/// <summary>
/// The exact-match flow cache of one datapath thread (OVS's EMC and megaflow cache rolled into
/// one, keyed exactly). Set-associative: a key hashes to a set of <see cref="Ways"/> slots and
/// lives in one of them; a full set evicts its least recently used flow, so the cache never
/// grows past its size and a burst of new flows only pushes out cold ones. Only the owning
/// thread writes; the API reads the slots for dumps (counters may be a packet behind).
/// </summary>
public sealed class FlowCache
{
    public const int Ways = 8;
    public const int DefaultCapacity = 65536;
    public const long DefaultIdleMs = 10_000; // OVS's max-idle

    private readonly FlowEntry?[] _slots;
    private readonly int _setMask;
    private int _count;

    public FlowCache(int capacity = DefaultCapacity, long idleMs = DefaultIdleMs)
    {
        if (capacity < Ways) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"flow cache needs at least {Ways} entries");
        int size = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)capacity);
        _slots = new FlowEntry?[size];
        _setMask = (size / Ways) - 1;
        IdleMs = idleMs;
    }

    public int Capacity => _slots.Length;
    public int Count => Volatile.Read(ref _count);
    public long IdleMs { get; set; }
    public long Hits, Misses, Revalidations, Evictions, Expirations;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int SetStart(ulong hash) => (int)((hash >> 7) & (ulong)_setMask) * Ways;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FlowEntry? Lookup(in FlowKey key, ulong hash)
    {
        int start = SetStart(hash);
        var slots = _slots;
        for (int i = 0; i < Ways; i++)
        {
            var e = slots[start + i];
            if (e is not null && e.Hash == hash && e.Key.Equals(in key)) return e;
        }
        return null;
    }

    /// <summary>Places a new entry for the key, evicting the set's least recently used entry when the set is full.</summary>
    public FlowEntry Install(in FlowKey key, ulong hash, long nowMs, Action<FlowEntry>? retire)
    {
        int start = SetStart(hash);
        int victim = -1;
        long oldest = long.MaxValue;
        for (int i = 0; i < Ways; i++)
        {
            var e = _slots[start + i];
            if (e is null) { victim = start + i; oldest = long.MinValue; break; }
            if (e.LastUsedMs < oldest) { oldest = e.LastUsedMs; victim = start + i; }
        }
        var old = _slots[victim];
        if (old is not null)
        {
            Evictions++;
            retire?.Invoke(old);
        }
        else Interlocked.Increment(ref _count);
        // A new flow costs one object: it is the slow path's price, paid once per flow, not per packet.
        var entry = new FlowEntry { Key = key, Hash = hash, CreatedMs = nowMs, LastUsedMs = nowMs };
        Volatile.Write(ref _slots[victim], entry);
        return entry;
    }

    /// <summary>Removes flows idle for longer than <see cref="IdleMs"/>; returns how many.</summary>
    public int ExpireIdle(long nowMs, Action<FlowEntry>? retire)
    {
        int n = 0;
        for (int i = 0; i < _slots.Length; i++)
        {
            var e = _slots[i];
            if (e is null || nowMs - e.LastUsedMs < IdleMs) continue;
            Volatile.Write(ref _slots[i], null);
            Interlocked.Decrement(ref _count);
            retire?.Invoke(e);
            n++;
        }
        Expirations += n;
        return n;
    }

    public int Flush(Action<FlowEntry>? retire)
    {
        int n = 0;
        for (int i = 0; i < _slots.Length; i++)
        {
            var e = _slots[i];
            if (e is null) continue;
            Volatile.Write(ref _slots[i], null);
            Interlocked.Decrement(ref _count);
            retire?.Invoke(e);
            n++;
        }
        return n;
    }

    /// <summary>The live entries (for dumps and per-rule counters), read from another thread.</summary>
    public List<FlowEntry> Entries()
    {
        var list = new List<FlowEntry>();
        foreach (var e in _slots) if (e is not null) list.Add(e);
        return list;
    }
}
