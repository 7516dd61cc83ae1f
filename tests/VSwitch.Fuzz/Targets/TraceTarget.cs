using VSwitch.Core.Pipeline;
using VSwitch.Core.Tables.Rules;

namespace VSwitch.Fuzz.Targets;

/// <summary>
/// A trace spec (`vsctl trace SPEC`, POST /v1/trace): the match parser, the frame built from the
/// key (<see cref="FrameBuilder.FromKey"/>) and the dry-run trace through the switch, the way
/// SwitchRuntime.Trace does it. Documented: <see cref="RuleSyntaxException"/>; a spec without
/// in_port comes in on the access port (the daemon asks for one instead).
/// </summary>
public sealed class TraceTarget : FuzzTarget
{
    public override string Name => "trace";
    public override string Description => "trace specs: RuleParser.ParseMatch, FrameBuilder.FromKey, Tracer.Trace";
    public override string? Dictionary => "rules.dict";
    public override IReadOnlyList<Instrumented> Instrument { get; } = [new("VSwitch.Core.dll")];

    public override void Execute(byte[] input)
    {
        var sw = FuzzSwitch.Shared;
        ParsedRule parsed;
        try { parsed = RuleParser.ParseMatch(Text(input), sw.PortId); }
        catch (RuleSyntaxException) { return; }
        var key = parsed.Match.Value;
        if (parsed.Match.Mask.InPort == 0) key.InPort = (ushort)sw.Access;
        var frame = FrameBuilder.FromKey(key);
        Tracer.Trace(sw.Dp, frame, key.InPort, nowMs: 1000, key.TunId, key.TunRemote);
    }
}
