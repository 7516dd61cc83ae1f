using System.Numerics;
using System.Runtime.CompilerServices;

namespace VSwitch.Core.Tables.Services;

/// <summary>
/// Maglev consistent hashing (Eisenbud et al., NSDI 2016): a lookup table of a prime number of slots,
/// each naming a backend, filled by letting every backend walk its own permutation of the slots
/// (offset + j * skip mod M) and take the first free one, in turns. Removing or adding one of N
/// backends moves about 1/N of the slots, so a client hashed to a slot keeps its backend unless that
/// backend is the one that changed. Weights: in each turn a backend takes as many slots as its weight,
/// so its share of the table is its share of the total weight.
/// </summary>
public static class Maglev
{
    /// <summary>The default table size: a prime, about 650 slots per backend at 100 backends (the paper's 65537).</summary>
    public const int DefaultSize = 65537;

    /// <summary>
    /// Fills a table of <paramref name="size"/> slots (a prime) for backends named by <paramref name="keys"/>
    /// (stable names: "10.1.0.7:8080") with <paramref name="weights"/> (0 takes no slot). Each slot holds
    /// the backend's index, or -1 when there is no backend of positive weight.
    /// </summary>
    public static int[] Build(IReadOnlyList<string> keys, IReadOnlyList<int> weights, int size = DefaultSize)
    {
        if (!IsPrime(size)) throw new ArgumentException($"the Maglev table size {size} is not a prime", nameof(size));
        if (keys.Count != weights.Count) throw new ArgumentException("one weight per backend");
        var table = new int[size];
        Array.Fill(table, -1);
        int n = keys.Count;
        var offset = new uint[n];
        var skip = new uint[n];
        var next = new uint[n];
        long totalWeight = 0;
        for (int i = 0; i < n; i++)
        {
            if (weights[i] < 0) throw new ArgumentException($"weight {weights[i]} of {keys[i]} is negative");
            totalWeight += weights[i];
            ulong h = Fnv1a(keys[i]);
            offset[i] = (uint)(Mix(h) % (ulong)size);
            skip[i] = (uint)(Mix(h ^ 0x5bd1e9955bd1e995UL) % (ulong)(size - 1)) + 1;
        }
        if (totalWeight == 0) return table;
        int filled = 0;
        while (true)
        {
            for (int i = 0; i < n; i++)
            {
                for (int w = 0; w < weights[i]; w++)
                {
                    // Walk this backend's permutation to its next free slot. M prime and 0 < skip < M: every slot is on the walk.
                    uint c;
                    do
                    {
                        c = (uint)((offset[i] + (ulong)next[i] * skip[i]) % (ulong)size);
                        next[i]++;
                    }
                    while (table[c] >= 0);
                    table[c] = i;
                    if (++filled == size) return table;
                }
            }
        }
    }

    public static bool IsPrime(int n)
    {
        if (n < 2) return false;
        if (n % 2 == 0) return n == 2;
        for (int d = 3; (long)d * d <= n; d += 2)
            if (n % d == 0) return false;
        return true;
    }

    /// <summary>FNV-1a over the key's UTF-16 code units: stable across processes (string.GetHashCode is randomized per process).</summary>
    public static ulong Fnv1a(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (char ch in s)
        {
            h ^= ch;
            h *= 1099511628211UL;
        }
        return h;
    }

    /// <summary>A 64-bit finalizer (murmur3's fmix64): spreads every input bit over the output.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Mix(ulong h)
    {
        h ^= h >> 33;
        h *= 0xFF51AFD7ED558CCDUL;
        h ^= h >> 33;
        h *= 0xC4CEB9FE1A85EC53UL;
        h ^= h >> 33;
        return h;
    }

    /// <summary>A hash of a client address only (client-IP affinity).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong HashAddress(UInt128 a) =>
        Mix((ulong)a ^ BitOperations.RotateLeft((ulong)(a >> 64), 31) ^ 0x9E3779B97F4A7C15UL);
}
