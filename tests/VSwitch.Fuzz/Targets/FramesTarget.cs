using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;

namespace VSwitch.Fuzz.Targets;

/// <summary>
/// A frame off the wire: <see cref="Classify.Extract(ReadOnlySpan{byte}, int, ref FlowKey)"/> (every
/// header view: Ethernet, 802.1Q/802.1ad, ARP, IPv4, IPv6 with extension headers, ICMP/ICMPv6, TCP,
/// UDP), then the whole pipeline as a dry-run trace from the port the first byte picks (access,
/// trunk, routed), as the datapath would take it. Documented: a bad frame is a drop reason; nothing throws.
/// </summary>
public sealed class FramesTarget : FuzzTarget
{
    public override string Name => "frames";
    public override string Description => "Ethernet frames: Classify (all wire views) and the pipeline (trace, dry run)";
    public override IReadOnlyList<Instrumented> Instrument { get; } = [new("VSwitch.Core.dll")];

    public override void Execute(byte[] input)
    {
        if (input.Length == 0) return;
        var sw = FuzzSwitch.Shared;
        // The first byte chooses the ingress port, so that VLAN ingress and the router are reached too.
        int port = (input[0] % 3) switch { 0 => sw.Access, 1 => sw.Trunk, _ => sw.Routed };
        var frame = input.AsSpan(1);
        FlowKey key = default;
        Classify.Extract((ReadOnlySpan<byte>)frame, port, ref key);
        Tracer.Trace(sw.Dp, frame, port, nowMs: 1000);
    }
}
