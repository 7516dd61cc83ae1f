using System.Runtime.CompilerServices;

namespace VSwitch.Core.Tables;

/// <summary>What <see cref="MacTable.Learn"/> did.</summary>
public enum LearnResult : byte
{
    Refreshed,
    Learned,
    Moved,
    /// <summary>The table or the port is at its limit: the address was not learned (counted, never evicts).</summary>
    Full,
    /// <summary>Another thread took the slot first; the next frame will learn it.</summary>
    Raced,
    /// <summary>Static entries are never overwritten by learning.</summary>
    Static,
}

/// <summary>One learned address, as the management API shows it.</summary>
public readonly record struct MacEntryInfo(ushort Network, ushort Vlan, ulong Mac, int Port, long AgeMs, bool IsStatic, uint Remote = 0);

/// <summary>
/// The learning bridge's forwarding database: (network, VLAN, MAC) → port, with aging.
///
/// Datapath threads read and learn without locks: the table is an open-addressing array of
/// references to entries, inserts claim an empty or dead slot with a compare-and-swap, and moves
/// and refreshes are plain volatile writes. Removal (flush, aging) marks an entry dead; the slot
/// is a tombstone that later inserts reuse, so probe chains never break and the array is never
/// rebuilt. Probing is bounded, so a lookup touches at most <see cref="ProbeLimit"/> slots.
///
/// Limits follow the Linux bridge and OVS (max-entries, per-port limits): when the table or a
/// port is full, new addresses are refused (and counted by the caller), never evicting hosts that
/// are already learned: a flood of random source MACs on one port cannot push out other ports' hosts.
/// </summary>
public sealed class MacTable
{
    public const int ProbeLimit = 32;
    public const long DefaultAgingMs = 300_000;

    private sealed class Entry(ulong mac, uint domain, int port, long expiresAt, long agingMs, bool isStatic)
    {
        public readonly ulong Mac = mac;
        public readonly long AgingMs = agingMs;
        /// <summary>network &lt;&lt; 12 | vlan.</summary>
        public readonly uint Domain = domain;
        public readonly bool IsStatic = isStatic;
        public int Port = port;
        /// <summary>For an address behind a tunnel port: the remote VTEP (IPv4, host order).</summary>
        public uint Remote;
        public long ExpiresAt = expiresAt;
        private int _dead;
        public bool Dead => Volatile.Read(ref _dead) != 0;
        /// <summary>Marks the entry dead; true for the one caller that did it (flush and aging may race).</summary>
        public bool Kill() => Interlocked.Exchange(ref _dead, 1) == 0;
    }

    private readonly Entry?[] _slots;
    private readonly int _mask;
    private readonly int[] _perPort;
    private int _count;
    private long _generation;
    // Targeted revalidation: a change to one address bumps the counter of its slot (a hash of network,
    // VLAN and address); a cached flow that looked that address up remembers the slot and its counter,
    // and is stale only when that counter moved. Static entries and flushes of many bump _structure,
    // which every flow depends on.
    public const int SlotGenerations = 1 << 18;
    private readonly int[] _slotGen = new int[SlotGenerations];
    private long _structure;

    public MacTable(int capacity = 65536, int perPortLimit = 16384, int maxPorts = 4096)
    {
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "capacity must be positive");
        if (perPortLimit <= 0) throw new ArgumentOutOfRangeException(nameof(perPortLimit), perPortLimit, "per-port limit must be positive");
        Capacity = capacity;
        PerPortLimit = perPortLimit;
        // Twice the capacity keeps the load factor at or under one half, so bounded probes succeed.
        int size = (int)Math.Min(1 << 30, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)capacity * 2));
        _slots = new Entry?[size];
        _mask = size - 1;
        _perPort = new int[maxPorts];
        Moves = new MacMoves(maxPorts);
    }

    /// <summary>Addresses that moved from one port to another: counted per port, queued for the log.</summary>
    public MacMoves Moves { get; }

    /// <summary>The port of a static entry for this address, or -1 (learned or unknown). For the slow path's pinned-MAC check.</summary>
    public int StaticPort(ushort network, ushort vlan, ulong mac)
    {
        uint domain = Domain(network, vlan);
        var slots = _slots;
        int h = Hash(mac, domain);
        for (int i = 0; i < ProbeLimit; i++)
        {
            var e = slots[(h + i) & _mask];
            if (e is null) return -1;
            if (e.Mac == mac && e.Domain == domain && !e.Dead) return e.IsStatic ? Volatile.Read(ref e.Port) : -1;
        }
        return -1;
    }

    public int Capacity { get; }
    public int PerPortLimit { get; }
    public int Count => Volatile.Read(ref _count);

    /// <summary>Changes whenever an address is added, moves or goes away (flows that looked up several addresses depend on it all).</summary>
    public long Generation => Volatile.Read(ref _generation);

    /// <summary>Changes when a static entry comes or goes or many addresses are flushed at once: every cached flow depends on it.</summary>
    public long StructureGeneration => Volatile.Read(ref _structure);

    /// <summary>The slot of an address's generation counter.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int GenerationSlot(ushort network, ushort vlan, ulong mac) => (int)((uint)Hash(mac, Domain(network, vlan)) >> 14);

    /// <summary>The counter of a slot: it moves whenever an address of that slot is learned, moves or goes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int SlotGeneration(int slot) => Volatile.Read(ref _slotGen[slot]);

    private void Changed(uint domain, ulong mac)
    {
        Interlocked.Increment(ref _slotGen[(int)((uint)Hash(mac, domain) >> 14)]);
        Interlocked.Increment(ref _generation);
    }

    private long _refused;

    /// <summary>
    /// Addresses not learned because the table or the port was at its limit (mac-table-full): the
    /// frame is still forwarded (flooded), as a switch whose table is full does, but it is counted.
    /// </summary>
    public long RefusedLearns => Volatile.Read(ref _refused);

    private LearnResult Refuse()
    {
        Interlocked.Increment(ref _refused);
        return LearnResult.Full;
    }

    public int CountOnPort(int port) => (uint)port < (uint)_perPort.Length ? Volatile.Read(ref _perPort[port]) : 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Domain(ushort network, ushort vlan) => ((uint)network << 12) | (vlan & 0xFFFu);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Hash(ulong mac, uint domain)
    {
        ulong h = (mac ^ ((ulong)domain << 48) ^ ((ulong)domain >> 16)) * 0x9E3779B97F4A7C15UL;
        return (int)(h >> 32);
    }

    /// <summary>Looks an address up; returns its port, or -1 when unknown or aged out.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Lookup(ushort network, ushort vlan, ulong mac, long nowMs) => Lookup(network, vlan, mac, nowMs, out _);

    /// <summary>Looks an address up; also gives the remote VTEP for an address learned from a tunnel.</summary>
    public int Lookup(ushort network, ushort vlan, ulong mac, long nowMs, out uint remote)
    {
        remote = 0;
        uint domain = Domain(network, vlan);
        var slots = _slots;
        int h = Hash(mac, domain);
        for (int i = 0; i < ProbeLimit; i++)
        {
            var e = slots[(h + i) & _mask];
            if (e is null) return -1;
            if (e.Mac == mac && e.Domain == domain && !e.Dead)
            {
                if (!e.IsStatic && Volatile.Read(ref e.ExpiresAt) <= nowMs) return -1;
                remote = Volatile.Read(ref e.Remote);
                return Volatile.Read(ref e.Port);
            }
        }
        return -1;
    }

    /// <summary>Learns that <paramref name="mac"/> lives behind <paramref name="port"/>.</summary>
    public LearnResult Learn(ushort network, ushort vlan, ulong mac, int port, long nowMs, long agingMs = DefaultAgingMs, uint remote = 0)
        => Insert(Domain(network, vlan), mac, port, nowMs, agingMs, isStatic: false, remote);

    /// <summary>Adds an address that never ages and that learning never moves (for a tunnel port, behind <paramref name="remote"/>).</summary>
    public LearnResult AddStatic(ushort network, ushort vlan, ulong mac, int port, uint remote = 0)
        => Insert(Domain(network, vlan), mac, port, 0, 0, isStatic: true, remote);

    private LearnResult Insert(uint domain, ulong mac, int port, long nowMs, long agingMs, bool isStatic, uint remote)
    {
        if ((uint)port >= (uint)_perPort.Length) throw new ArgumentOutOfRangeException(nameof(port), port, "port id out of range");
        var slots = _slots;
        int h = Hash(mac, domain);
        int free = -1;
        Entry? freeWas = null;
        for (int i = 0; i < ProbeLimit; i++)
        {
            int idx = (h + i) & _mask;
            var e = slots[idx];
            if (e is null)
            {
                if (free < 0) { free = idx; freeWas = null; }
                break;
            }
            if (e.Dead)
            {
                if (free < 0) { free = idx; freeWas = e; }
                continue;
            }
            if (e.Mac != mac || e.Domain != domain) continue;

            if (e.IsStatic)
            {
                if (!isStatic) return LearnResult.Static;
                if (e.Kill()) Decrement(Volatile.Read(ref e.Port)); // replaced by the new static entry below
                free = idx; freeWas = e;
                break;
            }
            if (isStatic)
            {
                if (e.Kill()) Decrement(Volatile.Read(ref e.Port));
                free = idx; freeWas = e;
                break;
            }
            long expires = nowMs + agingMs;
            int old = Volatile.Read(ref e.Port);
            if (old == port && Volatile.Read(ref e.Remote) != remote)
            {
                // Moved to another VTEP behind the same tunnel port.
                Volatile.Write(ref e.Remote, remote);
                Volatile.Write(ref e.ExpiresAt, expires);
                Changed(domain, mac);
                return LearnResult.Moved;
            }
            if (old != port)
            {
                if (Volatile.Read(ref _perPort[port]) >= PerPortLimit) return Refuse();
                // Two threads may see the same move; only the one that wins the swap counts it.
                if (Interlocked.CompareExchange(ref e.Port, port, old) != old) return LearnResult.Raced;
                Interlocked.Increment(ref _perPort[port]);
                Interlocked.Decrement(ref _perPort[old]);
                Volatile.Write(ref e.Remote, remote);
                Volatile.Write(ref e.ExpiresAt, expires);
                Changed(domain, mac);
                Moves.Record(domain, mac, old, port, nowMs);
                return LearnResult.Moved;
            }
            // Refresh at most once a second: the write would otherwise bounce the entry's
            // cache line between cores on every frame.
            if (expires - Volatile.Read(ref e.ExpiresAt) > 1000)
            {
                bool wasExpired = Volatile.Read(ref e.ExpiresAt) <= nowMs;
                Volatile.Write(ref e.ExpiresAt, expires);
                if (wasExpired)
                {
                    Changed(domain, mac);
                    return LearnResult.Learned;
                }
            }
            return LearnResult.Refreshed;
        }

        if (free < 0) return Refuse();
        if (Volatile.Read(ref _count) >= Capacity || Volatile.Read(ref _perPort[port]) >= PerPortLimit)
            return Refuse();
        // A new address costs one small object: learning is a control event, not a per-frame cost.
        var entry = new Entry(mac, domain, port, nowMs + agingMs, agingMs, isStatic) { Remote = remote };
        if (!ReferenceEquals(Interlocked.CompareExchange(ref slots[free], entry, freeWas), freeWas))
            return LearnResult.Raced;
        Interlocked.Increment(ref _count);
        Interlocked.Increment(ref _perPort[port]);
        Changed(domain, mac);
        // A static entry also decides which port may send as the address (pinned MACs): every flow may depend on it.
        if (isStatic) Interlocked.Increment(ref _structure);
        return LearnResult.Learned;
    }

    private void Decrement(int port)
    {
        Interlocked.Decrement(ref _count);
        Interlocked.Decrement(ref _perPort[port]);
    }

    private int RemoveWhere(Func<Entry, bool> match)
    {
        int removed = 0;
        bool structural = false;
        foreach (var e in _slots)
        {
            if (e is null || e.Dead || !match(e) || !e.Kill()) continue;
            Decrement(Volatile.Read(ref e.Port));
            Changed(e.Domain, e.Mac);
            structural |= e.IsStatic;
            removed++;
        }
        if (structural) Interlocked.Increment(ref _structure);
        return removed;
    }

    /// <summary>Forgets every learned address on a port (port removed or gone down). Static entries go too.</summary>
    public int FlushPort(int port) => RemoveWhere(e => e.Port == port);

    public int FlushNetwork(ushort network) => RemoveWhere(e => (e.Domain >> 12) == network);

    public int FlushAll() => RemoveWhere(static _ => true);

    /// <summary>
    /// What the operator's flush does (API, <c>vsctl fdb flush</c>): learned entries go, static ones stay,
    /// as <c>ip neigh flush</c> keeps permanent neighbours. Static entries leave one at a time (<see cref="Remove"/>).
    /// </summary>
    public int FlushLearned(ushort? network = null, int? port = null) =>
        RemoveWhere(e => !e.IsStatic && (network is null || (e.Domain >> 12) == network) && (port is null || Volatile.Read(ref e.Port) == port));

    /// <summary>Removes one address; false when it was not there.</summary>
    public bool Remove(ushort network, ushort vlan, ulong mac)
    {
        uint domain = Domain(network, vlan);
        return RemoveWhere(e => e.Mac == mac && e.Domain == domain) > 0;
    }

    /// <summary>Removes an address from every VLAN of a network; false when it was in none.</summary>
    public bool Remove(ushort network, ulong mac) => RemoveWhere(e => e.Mac == mac && (e.Domain >> 12) == network) > 0;

    /// <summary>Ages out learned addresses not seen for their network's aging time. Run by the control plane, not per frame.</summary>
    public int Expire(long nowMs) => RemoveWhere(e => !e.IsStatic && Volatile.Read(ref e.ExpiresAt) <= nowMs);

    /// <summary>A copy of the live entries, for the API (not the hot path).</summary>
    public List<MacEntryInfo> Entries(long nowMs)
    {
        var list = new List<MacEntryInfo>();
        foreach (var e in _slots)
        {
            if (e is null || e.Dead) continue;
            if (!e.IsStatic && Volatile.Read(ref e.ExpiresAt) <= nowMs) continue;
            list.Add(new MacEntryInfo((ushort)(e.Domain >> 12), (ushort)(e.Domain & 0xFFF), e.Mac, e.Port,
                e.IsStatic ? 0 : nowMs - (Volatile.Read(ref e.ExpiresAt) - e.AgingMs), e.IsStatic, Volatile.Read(ref e.Remote)));
        }
        return list;
    }
}
