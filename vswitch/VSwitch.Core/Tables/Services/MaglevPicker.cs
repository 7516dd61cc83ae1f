using System.Runtime.CompilerServices;
using VSwitch.Core.Flow;
using VSwitch.Core.Tables.Conntrack;

namespace VSwitch.Core.Tables.Services;

/// <summary>Counters of one service backend that outlive the pickers rebuilt around it (racy increments from datapath threads: a lost one is harmless).</summary>
public sealed class BackendCounters
{
    /// <summary>New connections sent to it.</summary>
    public long Picks;
}

/// <summary>One backend as a picker sees it.</summary>
public readonly record struct PickerBackend(UInt128 Address, ushort Port, int Label, string Note, BackendCounters Counters);

/// <summary>
/// A service port's picker: an immutable snapshot of a Maglev table and its backends, made by the
/// daemon whenever backends, weights, drains or health change, and published with the frontend. On
/// the datapath it hashes the new connection's 5-tuple (or, with client-IP affinity, the client's
/// address only) to a slot and sends it to that slot's backend. No allocation, no lock; with a
/// <see cref="ClientAffinityTable"/> (client-IP affinity with a timeout) a new connection first asks the table for
/// the backend its client had, under that table's short lock.
/// </summary>
public sealed class MaglevPicker : IBackendPicker
{
    private readonly int[] _table;
    private readonly PickerBackend[] _backends;
    private readonly ClientAffinityTable? _sticky;
    private readonly Dictionary<int, int> _byLabel = [];
    private readonly bool[] _inTable;
    private readonly string[] _recalledNotes;

    /// <param name="table">From <see cref="Maglev.Build"/>: slot -> index in <paramref name="backends"/>, or -1.</param>
    /// <param name="clientAffinity">Hash the client's address only, so that one client always meets one backend.</param>
    /// <param name="sticky">Remembers each client's backend for the affinity timeout, across rebuilt pickers (client affinity only).</param>
    public MaglevPicker(int[] table, PickerBackend[] backends, bool clientAffinity, ClientAffinityTable? sticky = null)
    {
        _table = table;
        _backends = backends;
        ClientAffinity = clientAffinity;
        _sticky = clientAffinity ? sticky : null;
        _inTable = new bool[backends.Length];
        foreach (int i in table)
        {
            if (i >= backends.Length) throw new ArgumentException($"slot names backend {i} of {backends.Length}");
            if (i >= 0) _inTable[i] = true;
        }
        for (int i = 0; i < backends.Length; i++) _byLabel[backends[i].Label] = i;
        _recalledNotes = _sticky is null ? [] : [.. backends.Select(b => b.Note + ", this client's backend within the affinity timeout")];
    }

    public bool ClientAffinity { get; }
    public int Size => _table.Length;
    public IReadOnlyList<PickerBackend> Backends => _backends;

    /// <summary>The slot a connection hashes to (for tests and traces).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Slot(in ConnTuple orig)
    {
        ulong h = ClientAffinity ? Maglev.HashAddress(orig.Src) : orig.Hash();
        return (int)(h % (ulong)_table.Length);
    }

    public bool TryPick(in ConnTuple orig, out UInt128 address, out ushort port, out int label, out string? traceNote)
    {
        int i;
        bool recalled = false;
        if (_sticky is not null && _sticky.TryRecall(orig.Src, new InTable(this), out int had))
        {
            i = _byLabel[had];
            recalled = true;
        }
        else
        {
            i = _table.Length == 0 ? -1 : _table[Slot(in orig)];
            if (i >= 0) _sticky?.Remember(orig.Src, _backends[i].Label);
        }
        if (i < 0)
        {
            address = 0; port = 0; label = 0; traceNote = "no backend in service";
            return false;
        }
        ref readonly var b = ref _backends[i];
        b.Counters.Picks++;
        address = b.Address;
        port = b.Port;
        label = b.Label;
        traceNote = recalled ? _recalledNotes[i] : b.Note;
        return true;
    }

    /// <summary>A remembered backend may take the client again if it still holds slots (present, healthy, not draining).</summary>
    private readonly struct InTable(MaglevPicker picker) : ILabelCheck
    {
        public bool Eligible(int label) => picker._byLabel.TryGetValue(label, out int i) && picker._inTable[i];
    }

    /// <summary>How many slots each backend holds (its share of new connections).</summary>
    public int[] SlotCounts()
    {
        var counts = new int[_backends.Length];
        foreach (int i in _table)
            if (i >= 0) counts[i]++;
        return counts;
    }
}
