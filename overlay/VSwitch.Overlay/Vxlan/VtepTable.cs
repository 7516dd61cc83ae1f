using System.Collections.Concurrent;

namespace VSwitch.Overlay;

/// <summary>
/// Packets and bytes per remote VTEP, shared by the endpoint's receiver (the owning thread) and
/// transmitter (any datapath thread). Lock-free lookups per packet; the API only enumerates.
/// </summary>
internal sealed class VtepTable
{
    private readonly ConcurrentDictionary<uint, VxlanPort.VtepCounters> _vteps = new();

    public void Count(uint remote, bool rx, int bytes)
    {
        if (!_vteps.TryGetValue(remote, out var c))
        {
            if (_vteps.Count >= 4096) return;
            c = _vteps.GetOrAdd(remote, static _ => new VxlanPort.VtepCounters());
        }
        if (rx) { c.RxPackets++; c.RxBytes += bytes; }
        else { Interlocked.Increment(ref c.TxPackets); Interlocked.Add(ref c.TxBytes, bytes); }
    }

    /// <summary>A copy of the counters.</summary>
    public Dictionary<uint, VxlanPort.VtepCounters> Snapshot() => new(_vteps);
}
