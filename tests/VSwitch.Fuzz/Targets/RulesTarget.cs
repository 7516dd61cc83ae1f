using VSwitch.Core.Tables.Rules;

namespace VSwitch.Fuzz.Targets;

/// <summary>
/// A flow rule as `vsctl rules add` and the API take it (ovs-ofctl syntax), then as a match alone
/// (`rules del`, `flows MATCH`). Documented: <see cref="RuleSyntaxException"/> naming the bad token.
/// A rule that parses is installed in a table of its own and looked up, as the slow path would.
/// </summary>
public sealed class RulesTarget : FuzzTarget
{
    public override string Name => "rules";
    public override string Description => "flow rules: RuleParser.ParseRule / ParseMatch (match and action syntax)";
    public override string? Dictionary => "rules.dict";
    public override IReadOnlyList<Instrumented> Instrument { get; } = [new("VSwitch.Core.dll", "VSwitch.Core.Tables.Rules", "VSwitch.Core.Flow")];

    public override void Execute(byte[] input)
    {
        string text = Text(input);
        var sw = FuzzSwitch.Shared;
        try
        {
            var rule = RuleParser.ParseRule(text, sw.PortId);
            var table = new RuleTable();
            table.Add(rule, 0);
            var key = rule.Match.Value;
            table.Lookup(key);
        }
        catch (RuleSyntaxException) { }
        try { RuleParser.ParseMatch(text, sw.PortId); }
        catch (RuleSyntaxException) { }
    }
}
