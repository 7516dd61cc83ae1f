using System.Globalization;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Tables.Rules;
using VSwitchd.Runtime;

namespace VSwitchd.Api;

/// <summary>/v1/flows and /v1/trace: the datapath flows (`dpctl/dump-flows`) and packet traces (`ofproto/trace`, VPP's `trace add`).</summary>
public static class FlowsApi
{
    public static void Map(RouteGroupBuilder v1)
    {
        v1.MapGet("/flows", (SwitchRuntime rt) => Results.Ok(Dump(rt)));
        v1.MapDelete("/flows", (SwitchRuntime rt) =>
        {
            int before = rt.Datapath.Contexts.Sum(c => c.FlowCache.Count);
            rt.Datapath.FlushFlows();
            return Results.Ok(new FlushResult(before));
        });
        v1.MapPost("/trace", (SwitchRuntime rt, TraceRequest body) => Trace(rt, body));
        v1.MapPost("/trace/live", async (SwitchRuntime rt, LiveTraceRequest body) =>
        {
            int count = body.Count ?? 10;
            if (count is < 1 or > 1000) return ManagementApi.BadRequest($"count {count} must be 1..1000");
            double timeout = body.TimeoutSeconds ?? 10;
            if (timeout is <= 0 or > 300) return ManagementApi.BadRequest($"timeoutSeconds {timeout} must be in (0, 300]");
            FlowMatch filter;
            try { filter = RuleParser.ParseMatch(body.Filter ?? "", rt.PortId).Match; }
            catch (RuleSyntaxException e) { return Results.Json(new RuleError($"bad filter: {e.Message}", e.Token, e.Position), statusCode: 400); }
            var live = new LiveTrace(filter, count);
            rt.Datapath.ArmLiveTrace(live);
            await Task.WhenAny(live.Completion, Task.Delay(TimeSpan.FromSeconds(timeout)));
            rt.Datapath.DisarmLiveTrace(live);
            var results = live.Results;
            return Results.Ok(new LiveTraceView(count, results.Count, results.Count >= count, results.Select(View).ToArray()));
        });
    }

    public static FlowView[] Dump(SwitchRuntime rt)
    {
        long now = Environment.TickCount64;
        var list = new List<FlowView>();
        foreach (var ctx in rt.Datapath.Contexts)
            foreach (var e in ctx.FlowCache.Entries())
                list.Add(new FlowView(ctx.Index, FlowKeyFormat.Format(e.Key).Replace("in_port=" + e.Key.InPort, "in_port=" + (rt.PortName(e.Key.InPort) ?? e.Key.InPort.ToString(CultureInfo.InvariantCulture))),
                    FlowAction.Format(e.Actions, rt.PortName), e.Rule?.Format(rt.PortName), e.Packets, e.Bytes,
                    Math.Round((now - e.CreatedMs) / 1000.0, 1), Math.Round((now - e.LastUsedMs) / 1000.0, 1)));
        return list.OrderByDescending(f => f.Packets).ToArray();
    }

    public static FlowCacheView CacheStats(SwitchRuntime rt)
    {
        long flows = 0, hits = 0, misses = 0, reval = 0, evict = 0, exp = 0;
        foreach (var c in rt.Datapath.Contexts)
        {
            var f = c.FlowCache;
            flows += f.Count; hits += f.Hits; misses += f.Misses; reval += f.Revalidations; evict += f.Evictions; exp += f.Expirations;
        }
        double total = hits + misses + reval;
        return new FlowCacheView(flows, hits, misses, reval, evict, exp, total == 0 ? 0 : Math.Round(hits / total, 4));
    }

    private static IResult Trace(SwitchRuntime rt, TraceRequest body)
    {
        byte[] frame;
        int inPort;
        if (!string.IsNullOrWhiteSpace(body.Hex))
        {
            try { frame = Convert.FromHexString(new string(body.Hex.Where(c => !char.IsWhiteSpace(c) && c != ':').ToArray())); }
            catch (FormatException) { return ManagementApi.BadRequest($"hex: '{Shorten(body.Hex)}' is not a hex string"); }
            if (body.InPort is null) return ManagementApi.BadRequest("a hex frame needs inPort (the port it arrives on)");
            if (rt.PortId(body.InPort) is not int id) return ManagementApi.NotFound($"no port named '{body.InPort}'");
            inPort = id;
        }
        else if (!string.IsNullOrWhiteSpace(body.Spec))
        {
            ParsedRule parsed;
            try { parsed = RuleParser.ParseMatch(body.Spec, rt.PortId); }
            catch (RuleSyntaxException e) { return Results.Json(new RuleError($"bad packet description: {e.Message}", e.Token, e.Position), statusCode: 400); }
            var key = parsed.Match.Value;
            if (parsed.Match.Mask.InPort == 0)
            {
                if (body.InPort is null) return ManagementApi.BadRequest("say where the packet comes in: in_port=PORT");
                if (rt.PortId(body.InPort) is not int id) return ManagementApi.NotFound($"no port named '{body.InPort}'");
                key.InPort = (ushort)id;
            }
            inPort = key.InPort;
            frame = FrameBuilder.FromKey(key);
        }
        else return ManagementApi.BadRequest("give a packet: {\"spec\": \"in_port=p1,icmp,nw_dst=...\"} or {\"hex\": \"...\", \"inPort\": \"p1\"}");
        var t = Tracer.Trace(rt.Datapath, frame, inPort, Environment.TickCount64);
        return Results.Ok(View(t));
    }

    private static string Shorten(string s) => s.Length > 40 ? s[..40] + "..." : s;

    private static TraceView View(PacketTrace t) => new(t.Flow, t.Steps.Select(s => new TraceStepView(s.Stage, s.Detail)).ToArray(),
        t.Actions, t.DropReason, t.CacheHit, t.Time.ToString("O"));
}
