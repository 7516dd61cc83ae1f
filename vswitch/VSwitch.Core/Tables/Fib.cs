using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace VSwitch.Core.Tables;

/// <summary>
/// The router's forwarding information base: longest prefix match from an address to a next-hop
/// index (1 and up; 0 means "no route"). IPv4 here, IPv6 in Fib6.cs. See FIB.md for the figures.
///
/// IPv4 is DIR-24-8, as DPDK's rte_lpm and most software routers do it: a flat tbl24 indexed by
/// the address's top 24 bits, whose entry is either the next hop of the longest prefix of length
/// 24 or less covering that /24, or the index of a tbl8 group of 256 entries (one per last
/// octet) when some prefix longer than /24 lives in that /24. A lookup is one load, or two for
/// addresses under a /25../32, whatever the number of prefixes. The price is memory, 64 MB of
/// tbl24 (allocated on the first IPv4 route, so a switch that only bridges never pays it) plus
/// 1 KB per tbl8 group, and update cost: a prefix of length L ≤ 24 rewrites 2^(24-L) tbl24
/// entries (a default route, 16M of them, takes tens of milliseconds), one longer than /24 at
/// most one 256-entry group.
///
/// Entries carry the length of the prefix that wrote them, so an add only overwrites entries
/// written by shorter (or the same) prefixes, and a remove only rewrites entries its own prefix
/// wrote, with the next-longest covering prefix, found in the control-plane copy of the routes
/// (one dictionary per length). That copy is also what <see cref="Routes"/> and
/// <see cref="TryGet"/> read.
///
/// Concurrency: one writer at a time (a private lock in Add/Remove), any number of readers that
/// never lock. Every entry is one 32-bit word written with a single store, in an order such that
/// a lookup racing an update returns the old or the new next hop of its address, never 0 or a
/// foreign one: a tbl8 group is completely filled before the tbl24 entry pointing to it is
/// published; a group is unlinked (tbl24 entry set back to a plain next hop) only once it holds
/// the same entry everywhere, so a reader still inside it reads that same answer.
///
/// Reusing an unlinked group is the one hazard: a reader that loaded the tbl24 entry just before
/// the unlink and was then descheduled could read the group after it was refilled for another
/// /24. A group unlinked from a /24 is relinked at once if that same /24 needs a group again
/// (its content is still right there, so the churn of one /32 costs nothing); for another /24
/// it is reused only after the <see cref="Version"/> has moved on and <see cref="GroupGraceMs"/>
/// have passed (FIB.md has the full argument). That makes the race need a reader stalled for that
/// long between two adjacent loads, and even then the index stays in bounds (no fault, one
/// misrouted packet), and a flow cached from that lookup carries an older Version (the slow path
/// reads Version before it looks up), so it is revalidated. A hard
/// guarantee would take quiescent-state reporting from the datapath threads (DPDK's RCU QSBR):
/// a follow-up if the datapath grows such a per-batch hook.
/// </summary>
public sealed partial class Fib
{
    /// <summary>Next hops are stored in 24 bits of an entry, like rte_lpm's.</summary>
    public const int MaxNextHop = (1 << 24) - 1;

    /// <summary>How long an unlinked tbl8 group waits before another /24 may reuse it.</summary>
    internal const long GroupGraceMs = 50;

    // Entry layout: bit 31 set: bits 0..30 are a tbl8 group index. Otherwise bits 24..29 are the
    // length of the prefix that wrote the entry and bits 0..23 its next hop. 0 is "no route"
    // (a default route has length 0 but a next hop of at least 1, so it is never 0).
    private const uint Extended = 0x8000_0000u;
    private const uint NextHopMask = 0x00FF_FFFFu;
    private const int DepthShift = 24;

    private const int GroupSize = 256;
    // Groups live in chunks of 256 (256 KB) that never move; the directory of chunks is copied
    // when it grows, the chunks are not, so a reader holding an old directory still reads live memory.
    private const int ChunkGroupsLog2 = 8;
    private const int ChunkGroups = 1 << ChunkGroupsLog2;
    private const int MaxGroups = 1 << 24;

    private readonly object _gate = new();

    private uint[]? _tbl24;
    private uint[][] _tbl8 = [];
    private int _groupsAllocated;          // groups ever handed out (high-water mark)
    private int _groupsLinked;
    private readonly Stack<int> _freeGroups = new();
    // Unlinked groups waiting out their grace period, oldest first, and the same by the /24 they left.
    private readonly Queue<(int Group, int Index24, int Stamp, long Version, long Tick)> _retired = new();
    private readonly Dictionary<int, int> _retiredByIndex24 = new();
    // Per group: the stamp of its current wait, 0 when linked or free; a queue entry whose stamp
    // differs is stale (the group was relinked, and maybe unlinked again later).
    private int[] _retiredStamp = [];
    private int _nextStamp;

    // The control-plane copy: prefixes by length, masked.
    private readonly Dictionary<uint, int>?[] _routes = new Dictionary<uint, int>?[33];
    private int _count;
    private long _version;

    public Fib() { }

    /// <summary>IPv4 prefixes in the table.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Grows on every change (IPv4 or IPv6): cached flows compare it to know they are stale.</summary>
    public long Version => Volatile.Read(ref _version);

    /// <summary>tbl8 groups linked from tbl24 now (1 KB each).</summary>
    internal int Tbl8GroupsInUse => Volatile.Read(ref _groupsLinked);

    /// <summary>tbl8 groups ever allocated: the memory tbl8 holds, in KB.</summary>
    internal int Tbl8GroupsAllocated => Volatile.Read(ref _groupsAllocated);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Mask(int length) => length == 0 ? 0u : uint.MaxValue << (32 - length);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Entry(int nextHop, int length) => (uint)length << DepthShift | (uint)nextHop;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Depth(uint entry) => (int)(entry >> DepthShift) & 0x3F;

    /// <summary>True when an add of a prefix of <paramref name="length"/> owns this (non-extended) entry:
    /// it is empty or was written by a prefix no longer than this one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Overwritable(uint entry, int length) => entry == 0 || Depth(entry) <= length;

    /// <summary>
    /// The next hop of the longest prefix matching <paramref name="address"/> (host byte order), 0 if none.
    /// Lock-free and allocation-free: one load from tbl24, a second from tbl8 under a prefix longer than /24.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Lookup(uint address)
    {
        var tbl24 = _tbl24;
        if (tbl24 is null) return 0;
        // address >> 8 < 2^24 = tbl24.Length: no bounds check needed. The acquire orders the
        // directory and group reads below after the entry that points to them.
        uint e = Volatile.Read(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(tbl24), (nint)(address >> 8)));
        if ((int)e < 0) e = ReadTbl8(e, address);
        return (int)(e & NextHopMask);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint ReadTbl8(uint e, uint address)
    {
        uint g = e & ~Extended;
        var chunk = _tbl8[g >> ChunkGroupsLog2]; // checked: the one index whose validity rests on publication order
        // ((g mod 256) << 8 | last octet) < 65536 = chunk.Length.
        nint i = (nint)(((g & (ChunkGroups - 1)) << 8) | (address & 0xFF));
        return Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(chunk), i);
    }

    /// <summary>Adds a route, or replaces the next hop of the same prefix. Host bits beyond <paramref name="length"/> are ignored.</summary>
    public void Add(uint prefix, int length, int nextHop)
    {
        CheckLength(length, 32);
        CheckNextHop(nextHop);
        prefix &= Mask(length);
        lock (_gate)
        {
            var tbl24 = _tbl24;
            if (tbl24 is null)
            {
                tbl24 = new uint[1 << 24];
                Volatile.Write(ref _tbl24, tbl24);
            }
            uint entry = Entry(nextHop, length);
            if (length <= 24)
            {
                int first = (int)(prefix >> 8), end = first + (1 << (24 - length));
                for (int i = first; i < end; i++)
                {
                    uint e = tbl24[i];
                    if ((int)e < 0)
                        FillGroup(e & ~Extended, 0, GroupSize, entry, length);
                    else if (Overwritable(e, length))
                        Volatile.Write(ref tbl24[i], entry);
                }
            }
            else
            {
                int i24 = (int)(prefix >> 8);
                int from = (int)(prefix & 0xFF), count = 1 << (32 - length);
                uint e = tbl24[i24];
                if ((int)e < 0)
                {
                    FillGroup(e & ~Extended, from, count, entry, length);
                }
                else
                {
                    // A new group starts as the covering entry everywhere, then takes the prefix; only
                    // then does tbl24 point to it, so no reader ever sees a half-filled group.
                    int g = TakeGroup(i24);
                    var group = GroupSpan(g);
                    for (int k = 0; k < GroupSize; k++) Volatile.Write(ref group[k], k >= from && k < from + count ? entry : e);
                    Volatile.Write(ref tbl24[i24], Extended | (uint)g);
                    _groupsLinked++;
                }
            }
            // Recorded last: if the tables could not take the route (out of memory or of groups), nothing changed.
            var byLength = _routes[length] ??= new Dictionary<uint, int>();
            ref int slot = ref CollectionsMarshal.GetValueRefOrAddDefault(byLength, prefix, out bool existed);
            slot = nextHop;
            if (!existed) Volatile.Write(ref _count, _count + 1);
            Interlocked.Increment(ref _version);
        }
    }

    /// <summary>Removes a route; the addresses it covered fall back to the next-longest covering prefix. False when absent.</summary>
    public bool Remove(uint prefix, int length)
    {
        CheckLength(length, 32);
        prefix &= Mask(length);
        lock (_gate)
        {
            var byLength = _routes[length];
            if (byLength is null || !byLength.Remove(prefix)) return false;
            Volatile.Write(ref _count, _count - 1);
            uint replacement = Covering(prefix, length);
            var tbl24 = _tbl24!;
            if (length <= 24)
            {
                int first = (int)(prefix >> 8), end = first + (1 << (24 - length));
                for (int i = first; i < end; i++)
                {
                    uint e = tbl24[i];
                    if ((int)e < 0)
                        ReplaceInGroup((int)(e & ~Extended), 0, GroupSize, length, replacement);
                    else if (e != 0 && Depth(e) == length)
                        Volatile.Write(ref tbl24[i], replacement);
                }
            }
            else
            {
                int i24 = (int)(prefix >> 8);
                int g = (int)(tbl24[i24] & ~Extended); // a prefix longer than /24 always has its group
                ReplaceInGroup(g, (int)(prefix & 0xFF), 1 << (32 - length), length, replacement);
                TryUnlink(i24, g);
            }
            Interlocked.Increment(ref _version);
            return true;
        }
    }

    /// <summary>The next hop of exactly this prefix (host bits ignored).</summary>
    public bool TryGet(uint prefix, int length, out int nextHop)
    {
        CheckLength(length, 32);
        lock (_gate)
        {
            var byLength = _routes[length];
            if (byLength is not null && byLength.TryGetValue(prefix & Mask(length), out nextHop)) return true;
        }
        nextHop = 0;
        return false;
    }

    /// <summary>A copy of the IPv4 routes, shortest prefixes first, for the API (allocates; not the hot path).</summary>
    public List<(uint Prefix, int Length, int NextHop)> Routes()
    {
        lock (_gate)
        {
            var list = new List<(uint, int, int)>(_count);
            for (int len = 0; len <= 32; len++)
            {
                if (_routes[len] is not { } byLength) continue;
                foreach (var (p, nh) in byLength) list.Add((p, len, nh));
            }
            return list;
        }
    }

    /// <summary>The entry the addresses of a removed prefix fall back to: its longest shorter covering prefix, or no route.</summary>
    private uint Covering(uint prefix, int length)
    {
        for (int len = length - 1; len >= 0; len--)
        {
            if (_routes[len] is { Count: > 0 } byLength && byLength.TryGetValue(prefix & Mask(len), out int nh))
                return Entry(nh, len);
        }
        return 0;
    }

    private void FillGroup(uint g, int from, int count, uint entry, int length)
    {
        var group = GroupSpan((int)g);
        for (int k = from; k < from + count; k++)
            if (Overwritable(group[k], length)) Volatile.Write(ref group[k], entry);
    }

    private void ReplaceInGroup(int g, int from, int count, int length, uint replacement)
    {
        var group = GroupSpan(g);
        for (int k = from; k < from + count; k++)
        {
            uint e = group[k];
            if (e != 0 && Depth(e) == length) Volatile.Write(ref group[k], replacement);
        }
    }

    /// <summary>
    /// When no prefix longer than /24 is left in a group, every entry in it is the same (written by
    /// the prefixes of length ≤ 24 covering the whole /24), so tbl24 can hold that entry itself.
    /// </summary>
    private void TryUnlink(int i24, int g)
    {
        var group = GroupSpan(g);
        for (int k = 0; k < GroupSize; k++)
            if (Depth(group[k]) > 24) return;
        Volatile.Write(ref _tbl24![i24], group[0]);
        _groupsLinked--;
        // The Version bump that ends this Remove is the one the grace period counts from.
        int stamp = ++_nextStamp == 0 ? ++_nextStamp : _nextStamp;
        _retired.Enqueue((g, i24, stamp, _version + 1, Environment.TickCount64));
        _retiredByIndex24[i24] = g;
        _retiredStamp[g] = stamp;
    }

    private int TakeGroup(int i24)
    {
        // Back to the /24 it left: a reader still holding the old pointer reads entries of its own /24.
        if (_retiredByIndex24.Remove(i24, out int same))
        {
            _retiredStamp[same] = 0;
            return same;
        }
        long now = Environment.TickCount64;
        while (_retired.TryPeek(out var r))
        {
            if (_retiredStamp[r.Group] != r.Stamp)
            {
                _retired.Dequeue(); // relinked since (and maybe retired again, with a newer queue entry)
                continue;
            }
            if (_version < r.Version || now - r.Tick < GroupGraceMs) break;
            _retired.Dequeue();
            _retiredByIndex24.Remove(r.Index24);
            _retiredStamp[r.Group] = 0;
            _freeGroups.Push(r.Group);
        }
        if (_freeGroups.TryPop(out int g)) return g;
        return NewGroup();
    }

    private int NewGroup()
    {
        int g = _groupsAllocated;
        if (g >= MaxGroups) throw new InvalidOperationException($"the FIB is out of tbl8 groups ({MaxGroups} prefixes longer than /24 in distinct /24s)");
        int c = g >> ChunkGroupsLog2;
        if (c >= _tbl8.Length)
        {
            var dir = new uint[Math.Max(4, _tbl8.Length * 2)][];
            Array.Copy(_tbl8, dir, _tbl8.Length);
            for (int i = _tbl8.Length; i < dir.Length; i++) dir[i] = [];
            dir[c] = new uint[ChunkGroups * GroupSize];
            Volatile.Write(ref _tbl8, dir);
            Array.Resize(ref _retiredStamp, dir.Length * ChunkGroups);
        }
        else if (_tbl8[c].Length == 0)
        {
            // Readers reach this chunk only through a tbl24 entry written after it (a release).
            Volatile.Write(ref _tbl8[c], new uint[ChunkGroups * GroupSize]);
        }
        Volatile.Write(ref _groupsAllocated, g + 1);
        return g;
    }

    private Span<uint> GroupSpan(int g) => _tbl8[g >> ChunkGroupsLog2].AsSpan((g & (ChunkGroups - 1)) * GroupSize, GroupSize);

    private static void CheckLength(int length, int max)
    {
        if ((uint)length > (uint)max)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"prefix length must be 0..{max}");
    }

    private static void CheckNextHop(int nextHop)
    {
        if (nextHop < 1 || nextHop > MaxNextHop)
            throw new ArgumentOutOfRangeException(nameof(nextHop), nextHop, $"next hop must be 1..{MaxNextHop} (0 means no route)");
    }
}
