namespace VSwitch.Core.Flow;

/// <summary>One step of a trace: which stage, and what it did.</summary>
public sealed record TraceStep(string Stage, string Detail);

/// <summary>
/// What happened to one packet, stage by stage (like `ovs-appctl ofproto/trace` and VPP's `show
/// trace`). The stages write it as they handle a packet whose <c>Packet.Trace</c> is set, so a
/// trace says what the datapath did, not what a replay thinks it would do. Copies of the packet
/// (flood, segments) share it, so every output shows. Never built on the normal path.
/// </summary>
public sealed class PacketTrace
{
    public List<TraceStep> Steps { get; } = [];
    public string Flow { get; set; } = "";
    /// <summary>The actions of the flow that decided (the cached flow, or what the slow path chose).</summary>
    public string Actions { get; set; } = "";
    /// <summary>Why the packet itself was dropped, if it was (the first drop recorded).</summary>
    public string? DropReason { get; set; }
    public bool CacheHit { get; set; }
    /// <summary>Copies that left (or would leave, in a synthetic trace) on a port.</summary>
    public int Outputs { get; set; }
    public DateTime Time { get; set; } = DateTime.UtcNow;

    public void Add(string stage, string detail) => Steps.Add(new TraceStep(stage, detail));
}
