using System.Runtime.CompilerServices;

namespace VSwitch.Core.Tables;

/// <summary>
/// IPv6 side of the FIB: one hash table per prefix length present, probed from the longest
/// present length down, so the first hit is the longest match. A lookup costs one probe per
/// distinct length in the table (a handful in a data centre: /0, /48, /64, /128), not per prefix.
/// A DIR-style table does not scale to 128-bit keys and a binary search over lengths
/// (Waldvogel) needs marker entries; neither pays off until IPv6 tables hold many lengths.
///
/// Each table is open addressing over references to immutable route objects, as MacTable does:
/// the single writer publishes an add or a replace with one reference store, a remove turns the
/// slot into a tombstone, so keys never move inside an array and a reader probing without a lock
/// sees the old or the new route. Growth rehashes into a new array published whole. The lengths
/// present are an immutable array swapped on change.
/// </summary>
public sealed partial class Fib
{
    private sealed class Route6(ulong hi, ulong lo, int nextHop)
    {
        public readonly ulong Hi = hi;
        public readonly ulong Lo = lo;
        /// <summary>0 for the tombstone.</summary>
        public readonly int NextHop = nextHop;
    }

    private sealed class Level6
    {
        public Route6?[] Slots = new Route6?[8];
        public int Count;
        /// <summary>Slots not null (live and tombstones): kept at or under half, so every probe meets a null.</summary>
        public int Used;
    }

    private static readonly Route6 Tombstone6 = new(0, 0, 0);
    private static readonly ulong[] MaskHi6 = BuildMasks6(hi: true);
    private static readonly ulong[] MaskLo6 = BuildMasks6(hi: false);

    private readonly Level6?[] _levels6 = new Level6?[129];
    private byte[] _lengths6 = []; // lengths present, longest first
    private int _count6;

    /// <summary>IPv6 prefixes in the table.</summary>
    public int Count6 => Volatile.Read(ref _count6);

    private static ulong[] BuildMasks6(bool hi)
    {
        var masks = new ulong[129];
        for (int len = 0; len <= 128; len++)
        {
            int bits = hi ? Math.Min(len, 64) : Math.Max(len - 64, 0);
            masks[len] = bits == 0 ? 0 : ulong.MaxValue << (64 - bits);
        }
        return masks;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Hash6(ulong hi, ulong lo, int length)
    {
        ulong h = (hi * 0x9E3779B97F4A7C15UL) ^ (lo * 0xC2B2AE3D27D4EB4FUL) ^ (ulong)length;
        return (int)((h ^ (h >> 29)) >> 16);
    }

    /// <summary>The next hop of the longest prefix matching <paramref name="address"/>, 0 if none. Lock-free and allocation-free.</summary>
    public int Lookup6(UInt128 address)
    {
        ulong hi = (ulong)(address >> 64), lo = (ulong)address;
        var lengths = Volatile.Read(ref _lengths6);
        var levels = _levels6;
        for (int i = 0; i < lengths.Length; i++)
        {
            int len = lengths[i];
            ulong kh = hi & MaskHi6[len], kl = lo & MaskLo6[len];
            var slots = Volatile.Read(ref levels[len]!.Slots);
            int mask = slots.Length - 1;
            for (int h = Hash6(kh, kl, len); ; h++)
            {
                var r = slots[h & mask];
                if (r is null) break;
                if (r.Hi == kh && r.Lo == kl && r.NextHop != 0) return r.NextHop;
            }
        }
        return 0;
    }

    /// <summary>Adds an IPv6 route, or replaces the next hop of the same prefix. Host bits are ignored.</summary>
    public void Add6(UInt128 prefix, int length, int nextHop)
    {
        CheckLength(length, 128);
        CheckNextHop(nextHop);
        ulong kh = (ulong)(prefix >> 64) & MaskHi6[length], kl = (ulong)prefix & MaskLo6[length];
        lock (_gate)
        {
            var level = _levels6[length];
            if (level is null) Volatile.Write(ref _levels6[length], level = new Level6());
            var route = new Route6(kh, kl, nextHop);
            int at = Find6(level.Slots, kh, kl, length, out int free);
            if (at >= 0)
            {
                Volatile.Write(ref level.Slots[at], route);
            }
            else
            {
                if (level.Slots[free] is null && (level.Used + 1) * 2 > level.Slots.Length)
                {
                    Rehash6(level, length, level.Count + 1);
                    Find6(level.Slots, kh, kl, length, out free);
                }
                if (level.Slots[free] is null) level.Used++;
                Volatile.Write(ref level.Slots[free], route);
                if (++level.Count == 1) PublishLengths6();
                Volatile.Write(ref _count6, _count6 + 1);
            }
            Interlocked.Increment(ref _version);
        }
    }

    /// <summary>Removes an IPv6 route; false when absent.</summary>
    public bool Remove6(UInt128 prefix, int length)
    {
        CheckLength(length, 128);
        ulong kh = (ulong)(prefix >> 64) & MaskHi6[length], kl = (ulong)prefix & MaskLo6[length];
        lock (_gate)
        {
            var level = _levels6[length];
            if (level is null) return false;
            int at = Find6(level.Slots, kh, kl, length, out _);
            if (at < 0) return false;
            Volatile.Write(ref level.Slots[at], Tombstone6);
            if (--level.Count == 0)
            {
                PublishLengths6();
                Rehash6(level, length, 0); // drop the tombstones
            }
            Volatile.Write(ref _count6, _count6 - 1);
            Interlocked.Increment(ref _version);
            return true;
        }
    }

    /// <summary>The next hop of exactly this IPv6 prefix (host bits ignored).</summary>
    public bool TryGet6(UInt128 prefix, int length, out int nextHop)
    {
        CheckLength(length, 128);
        ulong kh = (ulong)(prefix >> 64) & MaskHi6[length], kl = (ulong)prefix & MaskLo6[length];
        lock (_gate)
        {
            if (_levels6[length] is { } level && Find6(level.Slots, kh, kl, length, out _) is int at and >= 0)
            {
                nextHop = level.Slots[at]!.NextHop;
                return true;
            }
        }
        nextHop = 0;
        return false;
    }

    /// <summary>A copy of the IPv6 routes, shortest prefixes first, for the API (allocates; not the hot path).</summary>
    public List<(UInt128 Prefix, int Length, int NextHop)> Routes6()
    {
        lock (_gate)
        {
            var list = new List<(UInt128, int, int)>(_count6);
            for (int len = 0; len <= 128; len++)
            {
                if (_levels6[len] is not { Count: > 0 } level) continue;
                foreach (var r in level.Slots)
                    if (r is { NextHop: > 0 }) list.Add((new UInt128(r.Hi, r.Lo), len, r.NextHop));
            }
            return list;
        }
    }

    /// <summary>The slot holding the key, or -1 with <paramref name="free"/> the first tombstone or null slot of its chain.</summary>
    private static int Find6(Route6?[] slots, ulong kh, ulong kl, int length, out int free)
    {
        int mask = slots.Length - 1;
        free = -1;
        for (int h = Hash6(kh, kl, length); ; h++)
        {
            int i = h & mask;
            var r = slots[i];
            if (r is null)
            {
                if (free < 0) free = i;
                return -1;
            }
            if (r.NextHop == 0)
            {
                if (free < 0) free = i;
            }
            else if (r.Hi == kh && r.Lo == kl) return i;
        }
    }

    private static void Rehash6(Level6 level, int length, int count)
    {
        var slots = new Route6?[(int)Math.Max(8, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)count * 4))];
        int mask = slots.Length - 1;
        foreach (var r in level.Slots)
        {
            if (r is not { NextHop: > 0 }) continue;
            int h = Hash6(r.Hi, r.Lo, length);
            while (slots[h & mask] is not null) h++;
            slots[h & mask] = r;
        }
        level.Used = level.Count;
        Volatile.Write(ref level.Slots, slots); // filled before it is published
    }

    private void PublishLengths6()
    {
        int n = 0;
        for (int len = 128; len >= 0; len--) if (_levels6[len] is { Count: > 0 }) n++;
        var lengths = new byte[n];
        n = 0;
        for (int len = 128; len >= 0; len--) if (_levels6[len] is { Count: > 0 }) lengths[n++] = (byte)len;
        Volatile.Write(ref _lengths6, lengths);
    }
}
