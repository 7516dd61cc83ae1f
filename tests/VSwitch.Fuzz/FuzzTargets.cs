using VSwitch.Fuzz.Targets;

namespace VSwitch.Fuzz;

/// <summary>Every target, by name: the one list tools/fuzz.sh and the corpus replay test read.</summary>
public static class FuzzTargets
{
    public static IReadOnlyList<FuzzTarget> All { get; } =
    [
        new FramesTarget(),
        new RulesTarget(),
        new TraceTarget(),
        new ConfigTarget(),
        new CniTarget(),
        new VxlanTarget(),
    ];

    public static FuzzTarget? Find(string name) => All.FirstOrDefault(t => t.Name == name);
}
