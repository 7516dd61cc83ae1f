using VSwitchd.Config;

namespace VSwitch.Fuzz.Targets;

/// <summary>
/// vswitchd's JSON configuration file (`--config`): System.Text.Json into <see cref="VSwitchConfig"/>,
/// then its validation. Documented: <see cref="ConfigException"/> naming the field and value.
/// A configuration that passes is turned into the datapath's options, as the daemon does next.
/// </summary>
public sealed class ConfigTarget : FuzzTarget
{
    public override string Name => "config";
    public override string Description => "vswitchd's JSON config: VSwitchConfig.Parse (deserialise + Validate)";
    public override string? Dictionary => "config.dict";
    public override IReadOnlyList<Instrumented> Instrument { get; } = [new("vswitchd.dll", "VSwitchd.Config")];

    public override void Execute(byte[] input)
    {
        try { VSwitchConfig.Parse(Text(input), "fuzz").ToOptions(); }
        catch (ConfigException) { }
    }
}
