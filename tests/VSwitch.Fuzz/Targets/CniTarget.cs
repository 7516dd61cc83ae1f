using VSwitch.Cni;

namespace VSwitch.Fuzz.Targets;

/// <summary>
/// The network configuration a container runtime writes to vswitch-cni's stdin:
/// <see cref="NetConf.Parse"/> and <see cref="NetConf.PeekVersion"/> (used for VERSION and error
/// replies). Documented: <see cref="CniException"/>, which the plugin prints as a CNI error.
/// </summary>
public sealed class CniTarget : FuzzTarget
{
    public override string Name => "cni";
    public override string Description => "CNI netconf on stdin: NetConf.Parse, NetConf.PeekVersion";
    public override string? Dictionary => "cni.dict";
    public override IReadOnlyList<Instrumented> Instrument { get; } = [new("vswitch-cni.dll", "VSwitch.Cni.NetConf")];

    public override void Execute(byte[] input)
    {
        string text = Text(input);
        NetConf.PeekVersion(text);
        try { NetConf.Parse(text); }
        catch (CniException) { }
    }
}
