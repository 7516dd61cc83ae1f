using VSwitch.Core.Flow;
using VSwitch.Core.Tables.Rules;
using VSwitchd.Runtime;

namespace VSwitchd.Api;

/// <summary>/v1/rules: the rule table, like `ovs-ofctl dump-flows / add-flow / del-flows`.</summary>
public static class RulesApi
{
    public static void Map(RouteGroupBuilder v1)
    {
        v1.MapGet("/rules", (SwitchRuntime rt) => Results.Ok(List(rt)));
        v1.MapPost("/rules", (SwitchRuntime rt, RuleRequest body) =>
        {
            if (string.IsNullOrWhiteSpace(body.Rule)) return ManagementApi.BadRequest("give the rule as {\"rule\": \"priority=...,actions=...\"}");
            try
            {
                var rule = rt.AddRule(body.Rule);
                return Results.Created("/v1/rules", View(rt, rule));
            }
            catch (RuleSyntaxException e)
            {
                return Results.Json(new RuleError($"bad rule: {e.Message}", e.Token, e.Position), statusCode: 400);
            }
        });
        v1.MapDelete("/rules", (SwitchRuntime rt, string? match, bool? strict) =>
        {
            try
            {
                var removed = rt.DeleteRules(match ?? "", strict ?? false);
                return Results.Ok(new DeleteResult(removed.Count, removed.Select(r => r.Format(rt.PortName)).ToArray()));
            }
            catch (RuleSyntaxException e)
            {
                return Results.Json(new RuleError($"bad match: {e.Message}", e.Token, e.Position), statusCode: 400);
            }
        });
    }

    public static RuleView[] List(SwitchRuntime rt) => rt.Datapath.Rules.Rules.Select(r => View(rt, r)).ToArray();

    private static RuleView View(SwitchRuntime rt, Rule r)
    {
        var (packets, bytes) = rt.Datapath.RuleCounters(r);
        return new RuleView(r.Priority, "0x" + r.Cookie.ToString("x"), r.Match.Format(rt.PortName), FlowAction.Format(r.Actions, rt.PortName),
            r.Format(rt.PortName), packets, bytes, r.IdleTimeout, r.HardTimeout,
            Math.Round((Environment.TickCount64 - r.InstalledAtMs) / 1000.0, 1));
    }
}
