using System.Collections.Concurrent;
using VSwitch.Core.Flow;

namespace VSwitch.Overlay;

/// <summary>
/// Packets and bytes per remote VTEP, shared by the endpoint's receiver (the owning thread) and
/// transmitter (any datapath thread). Lock-free lookups per packet; the API only enumerates.
/// Also what every receiver of the endpoint needs to know of IPv6 remotes: the table that names them and
/// whether a new one is learned.
/// </summary>
internal sealed class VtepTable(VtepRemoteTable remotes)
{
    /// <summary>Where IPv6 sources get their handles (<see cref="VtepRemote.Shared"/> but in tests of its bound).</summary>
    public VtepRemoteTable Remotes { get; } = remotes;

    /// <summary>
    /// Whether an IPv6 source never seen gets a handle (some VXLAN network accepts unknown VTEPs). Otherwise only the
    /// configured VTEPs have handles, and a datagram from another IPv6 source is dropped as unknown-vtep on receive,
    /// so that strangers cannot fill the table.
    /// </summary>
    public volatile bool LearnUnknown;

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
