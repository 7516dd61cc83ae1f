using VSwitch.Api;
using VSwitchd.Policy;

namespace VSwitchd.Api;

/// <summary>/v1/policies: network policies with identities (labels), Kubernetes NetworkPolicy's semantics.</summary>
public static class PolicyApi
{
    public static void Map(RouteGroupBuilder v1)
    {
        v1.MapGet("/policies", (NetworkPolicies p) => TypedResults.Ok(p.List()));
        v1.MapGet("/policies/{name}", (NetworkPolicies p, string name) => TypedResults.Ok(p.Get(name)));
        v1.MapPost("/policies", (NetworkPolicies p, PolicyRequest body) => TypedResults.Ok(p.Add(body)));
        v1.MapDelete("/policies/{name}", (NetworkPolicies p, string name) =>
        {
            p.Remove(name);
            return TypedResults.NoContent();
        });
    }
}
