using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// The last stage: sends what the action stage queued, each port's frames as one batch (VPP's
/// interface-output). It runs after every batch, even one the earlier stages emptied; its packets
/// are the frames it sent or tried to send.
/// </summary>
public sealed class OutputStage : Stage
{
    public override string Name => "output";

    public override IReadOnlyList<DropReason> DropReasons => OutputQueues.Reasons;

    public override void Process(PacketBatch batch, DatapathContext ctx) => ctx.Output.Flush(ctx);
}
