using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// A node of the packet graph (VPP's node): it works on a whole batch at once, so its code and
/// tables stay hot in cache, and its cost is measured per batch. A stage removes the packets it
/// drops or consumes from the batch and leaves the rest for the next stage.
/// </summary>
public abstract class Stage
{
    public abstract string Name { get; }

    /// <summary>
    /// The drop reasons this stage can give: its rows in `vsctl stats`, like the error counters a
    /// VPP node declares. A test holds every stage to its list.
    /// </summary>
    public abstract IReadOnlyList<DropReason> DropReasons { get; }

    public abstract void Process(PacketBatch batch, DatapathContext ctx);

    /// <summary>Keeps the packets for which <paramref name="keep"/> is set, in order: the compaction every dropping stage needs.</summary>
    protected static void Compact(PacketBatch batch, int kept) => batch.Truncate(kept);
}
