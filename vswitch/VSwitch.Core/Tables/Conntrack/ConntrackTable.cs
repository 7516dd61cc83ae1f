using VSwitch.Core.Flow;
using System.Numerics;
using System.Runtime.CompilerServices;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Tables.Conntrack;

/// <summary>
/// The connection-tracking table that services (DNAT to a backend), network policy (established and
/// related pass) and north-south NAT (masquerade, published ports) share, as netfilter's and Open
/// vSwitch's are shared by everything that calls <c>ct()</c>.
/// <para>
/// Layout: entries are structs in segments of 65536 (allocated when first needed, never per packet);
/// each entry sits in two hash chains, one for its original tuple and one for its reply tuple, so a
/// packet of either direction finds it with one lookup. Bucket heads and chain links hold node
/// numbers (entry &lt;&lt; 1 | direction) plus one, 0 meaning the end.
/// </para>
/// <para>
/// Concurrency: lookups take no lock. Inserting and removing take <see cref="_writer"/>, which only
/// datapath threads ever take (the management API never does: it reads entries racily and flushes by
/// bumping an epoch that makes every older entry dead at once). A removed entry keeps its chain link
/// and is not reused for <see cref="ReuseGraceMs"/>, so a reader walking a chain through it at that
/// moment still reaches the rest of the chain: a grace period by time instead of by epochs, enough for
/// a batch that lasts microseconds.
/// </para>
/// </summary>
public sealed class ConntrackTable
{
    public const int DefaultCapacity = 262144;
    private const int SegmentBits = 16;
    private const int SegmentSize = 1 << SegmentBits;
    /// <summary>How long a removed entry waits before it is used again (see the class comment).</summary>
    public const long ReuseGraceMs = 1000;

    private readonly ConnEntry[]?[] _segments;
    private readonly int[] _buckets;
    private readonly int _mask;
    private readonly object _writer = new();
    private int _highWater;           // entries ever handed out: [0, _highWater)
    private int _count;
    private int _epoch = 1;
    // Removed entries wait here in removal order (a ring of indices with their time).
    // The time of removal is kept in the entry's LastSeenMs (it is not looked at once the entry is dead).
    private readonly int[] _limbo;
    private int _limboHead, _limboCount;
    private int _sweepCursor;

    public ConntrackTable(int capacity = DefaultCapacity, ConntrackTimeouts? timeouts = null)
    {
        if (capacity < 1 || capacity > 1 << 26) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "1 .. 67108864 connections");
        Capacity = capacity;
        _segments = new ConnEntry[]?[(capacity + SegmentSize - 1) >> SegmentBits];
        int buckets = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, capacity));
        _buckets = new int[buckets];
        _mask = buckets - 1;
        _limbo = new int[capacity];
        Timeouts = timeouts ?? ConntrackTimeouts.Default;
    }

    public int Capacity { get; }
    public ConntrackTimeouts Timeouts { get; set; }

    /// <summary>Entries held, counting those expired but not yet swept.</summary>
    public int Count => Volatile.Read(ref _count);

    // Counters (written under the writer lock, or racily where said; read by the API).
    public long Created;
    public long Removed;
    /// <summary>New connections refused because the table was full.</summary>
    public long Full;
    public long Flushes;
    /// <summary>Connections entered with a masquerade (source NAT to a host address), ever.</summary>
    public long Masqueraded;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref ConnEntry Entry(int index) => ref _segments[index >> SegmentBits]![index & (SegmentSize - 1)];

    /// <summary>Finds the entry with this tuple in either direction; <paramref name="reply"/> says which.</summary>
    public bool Lookup(in ConnTuple t, long nowMs, out int index, out bool reply)
    {
        int epoch = Volatile.Read(ref _epoch);
        int node = Volatile.Read(ref _buckets[(int)t.Hash() & _mask]);
        while (node != 0)
        {
            int n = node - 1;
            ref var e = ref Entry(n >> 1);
            bool dir = (n & 1) != 0;
            if (e.Live != 0 && e.Epoch == epoch && e.ExpiresMs > nowMs && (dir ? e.Reply.Equals(t) : e.Orig.Equals(t)))
            {
                index = n >> 1;
                reply = dir;
                return true;
            }
            node = dir ? Volatile.Read(ref e.NextReply) : Volatile.Read(ref e.NextOrig);
        }
        index = -1;
        reply = false;
        return false;
    }

    public enum CommitResult : byte { Committed, Exists, Full }

    /// <summary>
    /// Enters a new connection: <paramref name="orig"/> as its first packet came, <paramref name="reply"/>
    /// as its answers will come (after NAT). Refused when the table is full even after expired entries
    /// were swept, or when either tuple is already taken (two packets of one new connection at once on
    /// two threads: the second finds the first's).
    /// </summary>
    /// <param name="reuseClosing">A TCP SYN may take the reply tuple of a connection in TIME_WAIT or CLOSE, which is
    /// then removed (netfilter's nf_nat_used_tuple_harder does the same): a masquerade's few ports would otherwise
    /// stay held for TIME_WAIT's 120 s after each short connection.</param>
    public CommitResult Commit(in ConnTuple orig, in ConnTuple reply, long nowMs, long timeoutMs, ConnFlags flags, TcpConnState tcp, int label, out int index,
        bool reuseClosing = false)
    {
        lock (_writer)
        {
            if (Lookup(in orig, nowMs, out index, out _)) return CommitResult.Exists;
            if (Lookup(in reply, nowMs, out index, out _))
            {
                if (!reuseClosing || !Closing(index)) return CommitResult.Exists;
                RemoveLocked(index, nowMs);
            }
            int i = Allocate(nowMs);
            if (i < 0)
            {
                SweepLocked(nowMs, Capacity);
                i = Allocate(nowMs);
                if (i < 0) { Full++; index = -1; return CommitResult.Full; }
            }
            ref var e = ref Entry(i);
            e.Orig = orig;
            e.Reply = reply;
            e.CreatedMs = nowMs;
            e.LastSeenMs = nowMs;
            e.ExpiresMs = nowMs + timeoutMs;
            e.PacketsOrig = e.BytesOrig = e.PacketsReply = e.BytesReply = 0;
            e.Epoch = Volatile.Read(ref _epoch);
            e.Label = label;
            e.Tcp = tcp;
            e.Flags = flags;
            // Fill the entry before linking it: a reader that finds the node sees it whole.
            int bo = (int)orig.Hash() & _mask, br = (int)reply.Hash() & _mask;
            e.NextOrig = _buckets[bo];
            Volatile.Write(ref e.Live, (byte)1);
            Volatile.Write(ref _buckets[bo], (i << 1) + 1);
            e.NextReply = _buckets[br];
            Volatile.Write(ref _buckets[br], (i << 1 | 1) + 1);
            _count++;
            Created++;
            index = i;
            return CommitResult.Committed;
        }
    }

    /// <summary>
    /// A source port for a source NAT to <paramref name="address"/> such that the reply tuple is free:
    /// the connection's own port when it can (as netfilter does), else ports from a hash of the tuple
    /// in <paramref name="low"/>..<paramref name="high"/>; 0 when none was found in 128 tries.
    /// </summary>
    /// <param name="reuseClosing">When no port is free, a TCP SYN may take one whose connection is in TIME_WAIT or CLOSE (see <see cref="Commit"/>).</param>
    public ushort FreeSourcePort(in ConnTuple orig, in ConnTuple replyTemplate, UInt128 address, ushort low, ushort high, long nowMs, bool reuseClosing = false)
    {
        ushort port = FindSourcePort(in orig, in replyTemplate, address, low, high, nowMs, closingIsFree: false);
        return port != 0 || !reuseClosing ? port : FindSourcePort(in orig, in replyTemplate, address, low, high, nowMs, closingIsFree: true);
    }

    /// <summary>A TCP connection that is over (TIME_WAIT, CLOSE): its tuples may be taken by a new one.</summary>
    private bool Closing(int index)
    {
        ref var e = ref Entry(index);
        return e.Orig.Proto == IpProtocols.Tcp && e.Tcp is TcpConnState.TimeWait or TcpConnState.Close;
    }

    private bool Free(in ConnTuple probe, long nowMs, bool closingIsFree) =>
        !Lookup(in probe, nowMs, out int i, out _) || closingIsFree && Closing(i);

    private ushort FindSourcePort(in ConnTuple orig, in ConnTuple replyTemplate, UInt128 address, ushort low, ushort high, long nowMs, bool closingIsFree)
    {
        // ICMP echo's identifier stands in both ports.
        bool icmp = orig.Proto is IpProtocols.Icmp or IpProtocols.IcmpV6;
        var probe = replyTemplate;
        probe.Dst = address;
        probe.DstPort = orig.SrcPort;
        if (icmp) probe.SrcPort = orig.SrcPort;
        if (orig.SrcPort >= low && orig.SrcPort <= high && Free(in probe, nowMs, closingIsFree)) return orig.SrcPort;
        uint span = (uint)(high - low + 1);
        uint start = (uint)(orig.Hash() % span);
        for (uint k = 0; k < 128 && k < span; k++)
        {
            probe.DstPort = (ushort)(low + (start + k * 7919) % span);
            if (icmp) probe.SrcPort = probe.DstPort;
            if (Free(in probe, nowMs, closingIsFree)) return probe.DstPort;
        }
        return 0;
    }

    private int Allocate(long nowMs)
    {
        if (_limboCount > 0 && nowMs - Entry(_limbo[_limboHead]).LastSeenMs >= ReuseGraceMs)
        {
            int i = _limbo[_limboHead];
            _limboHead = (_limboHead + 1) % _limbo.Length;
            _limboCount--;
            return i;
        }
        if (_highWater >= Capacity) return -1;
        int next = _highWater;
        ref var seg = ref _segments[next >> SegmentBits];
        seg ??= new ConnEntry[Math.Min(SegmentSize, Capacity - (next & ~(SegmentSize - 1)))];
        _highWater = next + 1;
        return next;
    }

    /// <summary>Marks the packet's passage: counters, last seen, TCP state and expiry. Returns false when the packet is invalid for the connection.</summary>
    public bool Update(int index, bool reply, byte proto, ushort tcpFlags, int bytes, long nowMs)
    {
        ref var e = ref Entry(index);
        if (reply) { e.PacketsReply++; e.BytesReply += bytes; e.Flags |= ConnFlags.SeenReply; }
        else { e.PacketsOrig++; e.BytesOrig += bytes; }
        e.LastSeenMs = nowMs;
        long timeout;
        if (proto == IpProtocols.Tcp)
        {
            if (!TcpTracker.Step(ref e, reply, tcpFlags)) return false;
            timeout = Timeouts.ForTcp(e.Tcp);
        }
        else if (proto == IpProtocols.Udp) timeout = 1000L * ((e.Flags & ConnFlags.SeenReply) != 0 ? Timeouts.UdpStream : Timeouts.Udp);
        else timeout = 1000L * Timeouts.Icmp;
        e.ExpiresMs = nowMs + timeout;
        return true;
    }

    /// <summary>Removes expired and flushed entries, looking at up to <paramref name="budget"/> of them (datapath threads, a little at a time).</summary>
    /// <summary>Ends one connection now (a SYN reusing a closed connection's tuple, to be entered anew); false when it was gone already.</summary>
    public bool Remove(int index, long nowMs)
    {
        lock (_writer)
        {
            if (Volatile.Read(ref Entry(index).Live) == 0) return false;
            RemoveLocked(index, nowMs);
            return true;
        }
    }

    public int Sweep(long nowMs, int budget)
    {
        if (Volatile.Read(ref _count) == 0) return 0;
        lock (_writer) return SweepLocked(nowMs, budget);
    }

    private int SweepLocked(long nowMs, int budget)
    {
        int removed = 0, epoch = Volatile.Read(ref _epoch);
        int high = _highWater;
        if (high == 0) return 0;
        for (int k = 0; k < budget && k < high; k++)
        {
            int i = _sweepCursor;
            _sweepCursor = i + 1 >= high ? 0 : i + 1;
            ref var e = ref Entry(i);
            if (e.Live != 0 && (e.ExpiresMs <= nowMs || e.Epoch != epoch))
            {
                RemoveLocked(i, nowMs);
                removed++;
            }
        }
        return removed;
    }

    private void RemoveLocked(int i, long nowMs)
    {
        ref var e = ref Entry(i);
        Unlink((int)e.Orig.Hash() & _mask, (i << 1) + 1);
        Unlink((int)e.Reply.Hash() & _mask, (i << 1 | 1) + 1);
        Volatile.Write(ref e.Live, (byte)0);
        int tail = (_limboHead + _limboCount) % _limbo.Length;
        _limbo[tail] = i;
        e.LastSeenMs = nowMs;
        _limboCount++;
        _count--;
        Removed++;
    }

    /// <summary>Takes a node out of its bucket's chain; the node keeps its own link (see the class comment).</summary>
    private void Unlink(int bucket, int node)
    {
        int cur = _buckets[bucket];
        if (cur == node) { Volatile.Write(ref _buckets[bucket], Next(node)); return; }
        while (cur != 0)
        {
            int next = Next(cur);
            if (next == node) { SetNext(cur, Next(node)); return; }
            cur = next;
        }
    }

    private int Next(int node)
    {
        int n = node - 1;
        ref var e = ref Entry(n >> 1);
        return (n & 1) != 0 ? e.NextReply : e.NextOrig;
    }

    private void SetNext(int node, int value)
    {
        int n = node - 1;
        ref var e = ref Entry(n >> 1);
        if ((n & 1) != 0) Volatile.Write(ref e.NextReply, value);
        else Volatile.Write(ref e.NextOrig, value);
    }

    /// <summary>Forgets every connection at once (the API's flush): older entries are dead from now on and swept later.</summary>
    public void Flush()
    {
        Interlocked.Increment(ref _epoch);
        Interlocked.Increment(ref Flushes);
    }

    /// <summary>A copy of every live entry (the API's listing): read without a lock, so an entry changing meanwhile may show half-updated counters.</summary>
    public List<ConnEntry> Snapshot(long nowMs, Func<ConnEntry, bool>? filter = null)
    {
        var list = new List<ConnEntry>();
        int epoch = Volatile.Read(ref _epoch), high = Volatile.Read(ref _highWater);
        for (int i = 0; i < high; i++)
        {
            var seg = Volatile.Read(ref _segments[i >> SegmentBits]);
            if (seg is null) continue;
            var e = seg[i & (SegmentSize - 1)];
            if (e.Live == 0 || e.Epoch != epoch || e.ExpiresMs <= nowMs) continue;
            if (filter is null || filter(e)) list.Add(e);
        }
        return list;
    }

    /// <summary>Bytes one exported entry takes: a successor of another build with another layout does not import.</summary>
    public static int EntrySize => Unsafe.SizeOf<ConnEntry>();

    /// <summary>
    /// The live connections as bytes (entries as they are in memory), at most <paramref name="max"/>,
    /// for a hitless restart's successor on this machine (the clock, Environment.TickCount64, is the
    /// same for both processes). Read without the lock: call it when the datapath has stopped.
    /// </summary>
    public byte[] Export(long nowMs, int max, out int count)
    {
        var live = Snapshot(nowMs);
        count = Math.Min(live.Count, max);
        var entries = new ConnEntry[count];
        for (int i = 0; i < count; i++) entries[i] = live[i];
        return System.Runtime.InteropServices.MemoryMarshal.AsBytes(entries.AsSpan()).ToArray();
    }

    /// <summary>Enters what <see cref="Export"/> gave, keeping each connection's state, NAT, label, counters and expiry; the number entered.</summary>
    public int Import(ReadOnlySpan<byte> data, long nowMs)
    {
        var entries = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ConnEntry>(data);
        int n = 0;
        foreach (ref readonly var x in entries)
        {
            if (x.ExpiresMs <= nowMs) continue;
            if (Commit(in x.Orig, in x.Reply, nowMs, x.ExpiresMs - nowMs, x.Flags, x.Tcp, x.Label, out int i) != CommitResult.Committed) continue;
            ref var e = ref Entry(i);
            e.CreatedMs = x.CreatedMs;
            e.LastSeenMs = x.LastSeenMs;
            e.PacketsOrig = x.PacketsOrig;
            e.BytesOrig = x.BytesOrig;
            e.PacketsReply = x.PacketsReply;
            e.BytesReply = x.BytesReply;
            n++;
        }
        return n;
    }

    /// <summary>Bytes the table holds (segments and index), for the memory figure.</summary>
    public long MemoryBytes
    {
        get
        {
            long b = (long)_buckets.Length * 4 + (long)_limbo.Length * 4;
            foreach (var s in _segments) if (s is not null) b += (long)s.Length * Unsafe.SizeOf<ConnEntry>();
            return b;
        }
    }
}
