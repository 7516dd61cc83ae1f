using VSwitch.Api;
using VSwitchd.Runtime;

namespace VSwitchd.Api;

/// <summary>/v1/flows and /v1/trace: the datapath flows (`dpctl/dump-flows`) and packet traces (`ofproto/trace`, VPP's `trace add`).</summary>
public static class FlowsApi
{
    public static void Map(RouteGroupBuilder v1)
    {
        // ?match= in rule syntax (icmp, in_port=p1,...), ?port= (in on it or out to it), ?network= (entering it).
        v1.MapGet("/flows", (SwitchRuntime rt, string? match, string? port, string? network) =>
            TypedResults.Ok(rt.DumpFlows(rt.ParseFlowFilter(match, port, network))));
        v1.MapDelete("/flows", (SwitchRuntime rt) => TypedResults.Ok(new FlushResult(rt.FlushFlows())));
        v1.MapGet("/conntrack", (SwitchRuntime rt, string? proto, string? src, string? dst, int? port, string? state, string? nat, int? limit) =>
            TypedResults.Ok(rt.Conntrack(proto, src, dst, port, state, nat, limit)));
        v1.MapDelete("/conntrack", (SwitchRuntime rt) => TypedResults.Ok(new FlushResult(rt.FlushConntrack())));
        v1.MapPost("/trace", (SwitchRuntime rt, TraceRequest body) => TypedResults.Ok(rt.Trace(body.Spec, body.Hex, body.InPort, body.Routed ?? false)));
        v1.MapPost("/trace/live", async (SwitchRuntime rt, LiveTraceRequest body) =>
            TypedResults.Ok(await rt.LiveTraceAsync(body.Filter, body.Count, body.TimeoutSeconds)));
    }
}
