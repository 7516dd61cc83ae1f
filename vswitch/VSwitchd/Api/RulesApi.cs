using VSwitch.Api;
using VSwitchd.Runtime;

namespace VSwitchd.Api;

/// <summary>/v1/rules: the rule table, like `ovs-ofctl dump-flows / add-flow / del-flows`.</summary>
public static class RulesApi
{
    public static void Map(RouteGroupBuilder v1)
    {
        // ?match= selects as DELETE does: rules at least as specific (strict=true: exactly that match).
        v1.MapGet("/rules", (SwitchRuntime rt, string? match, bool? strict) => TypedResults.Ok(rt.ListRules(match, strict ?? false)));
        v1.MapPost("/rules", (SwitchRuntime rt, RuleRequest body) =>
        {
            if (string.IsNullOrWhiteSpace(body.Rule)) throw new InvalidRequestException("give the rule as {\"rule\": \"priority=...,actions=...\"}");
            return TypedResults.Created("/v1/rules", rt.AddRule(body.Rule));
        });
        v1.MapDelete("/rules", (SwitchRuntime rt, string? match, bool? strict) => TypedResults.Ok(rt.DeleteRules(match ?? "", strict ?? false)));
    }
}
