using VSwitch.Core.Flow;

namespace VSwitch.Core.Pipeline;

/// <summary>Per-port packet and byte counters of one datapath thread (plain fields: one writer).</summary>
public struct PortCounters
{
    public long RxPackets, RxBytes, TxPackets, TxBytes, RxDrops, TxDrops;
    /// <summary>
    /// Frames received that had nowhere to go (no-output: flooded with no other port in their network
    /// and VLAN, like a lone container's IPv6 multicasts). Not faults, so not counted in RxDrops.
    /// </summary>
    public long RxUnsent;

    public void Add(in PortCounters o)
    {
        RxPackets += o.RxPackets; RxBytes += o.RxBytes; TxPackets += o.TxPackets;
        TxBytes += o.TxBytes; RxDrops += o.RxDrops; TxDrops += o.TxDrops; RxUnsent += o.RxUnsent;
    }
}

/// <summary>
/// Cost of one stage, like VPP's `show runtime`: calls (batches) and packets, and the clock ticks
/// spent on the sampled batches with the packets those batches held (cost per packet = Ticks / TimedPackets).
/// </summary>
public struct StageCounters
{
    public long Calls, Packets, Ticks, TimedPackets;

    public readonly double NsPerPacket => TimedPackets == 0 ? 0 : Ticks * 1e9 / System.Diagnostics.Stopwatch.Frequency / TimedPackets;
}

/// <summary>
/// The counters one datapath thread writes. Each thread has its own, so counting is a plain add
/// on a cache line no other core writes; readers sum the threads' copies (torn reads of a
/// counter that is being incremented are off by one increment at most, which is fine for counters).
/// </summary>
public sealed class ThreadCounters
{
    public readonly PortCounters[] Ports = new PortCounters[Topology.SwitchTopology.MaxPorts];
    /// <summary>Drops per (stage, reason), at <c>stage * DropReason.Count + reason</c>: VPP's per-node error counters.</summary>
    public readonly long[] Drops;
    public readonly StageCounters[] Stages;
    /// <summary>Drops of the reasons in <see cref="DropReasons.PerPort"/>, at <c>port * PerPort.Length + slot</c>.</summary>
    public readonly long[] PortDrops = new long[Topology.SwitchTopology.MaxPorts * Flow.DropReasons.PerPort.Length];

    /// <summary>Copies each port mirror made, at its <see cref="PortMirror.Slot"/>.</summary>
    public readonly long[] MirrorPackets = new long[PortMirror.MaxMirrors], MirrorBytes = new long[PortMirror.MaxMirrors];

    public ThreadCounters(int stageCount)
    {
        Stages = new StageCounters[stageCount];
        Drops = new long[stageCount * (int)DropReason.Count];
    }

    public void CountDrop(int stage, DropReason reason, long n = 1) => Drops[stage * (int)DropReason.Count + (int)reason] += n;
}
