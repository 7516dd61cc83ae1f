using System.CommandLine;
using System.Globalization;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary>
/// <c>vsctl trace</c>: what the switch does with a packet, step by step. A made-up packet (a match such as
/// <c>in_port=p1,icmp,nw_dst=10.0.0.2</c>, or a frame in hex) goes through the pipeline without being sent,
/// like <c>ovs-appctl ofproto/trace</c>; <c>--live</c> records the next real packets that pass, like VPP's <c>trace add</c>.
/// </summary>
public static class TraceCommands
{
    /// <summary>What the daemon waits by default in a live trace (LiveTraceRequest.TimeoutSeconds).</summary>
    private const double DefaultLiveSeconds = 10;

    public static Command Create(Cli cli)
    {
        var spec = new Argument<string>("SPEC")
        {
            Description = "The packet as a match: 'in_port=p1,icmp,nw_src=10.0.0.1,nw_dst=10.0.0.2' (fields it leaves out are zero)",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var inPort = new Option<string>("--in-port") { Description = "The port the packet arrives on (when SPEC has no in_port, and for --hex)", HelpName = "PORT" };
        var hex = new Option<string>("--hex") { Description = "The packet as an Ethernet frame in hex (blanks and ':' are ignored)", HelpName = "HEX" };
        var live = new Option<bool>("--live") { Description = "Record real packets as they pass instead of tracing a made-up one" };
        var routed = new Option<bool>("--routed")
        {
            Description = "Send SPEC to the router's MAC (the default already when nw_dst is outside the ingress network's subnet and SPEC has no dl_dst)",
        };
        var filter = new Option<string>("--filter") { Description = "--live: only packets this match selects, e.g. 'icmp,nw_dst=10.0.0.2' (default: all)", HelpName = "MATCH" };
        var count = Cli.IntOption("--count", "--live: how many packets to record (1..1000, default 10)");
        var timeout = new Option<double?>("--timeout")
        {
            Description = $"--live: seconds to wait for them (at most 300, default {DefaultLiveSeconds:0})",
            HelpName = "SECONDS",
            CustomParser = r =>
            {
                string text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
                if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v)) return v;
                r.AddError($"--timeout: '{text}' is not a number of seconds");
                return null;
            },
        };
        var trace = new Command("trace", "Trace a packet through the pipeline: 'SPEC', --hex HEX --in-port P, or --live")
        {
            spec, inPort, hex, live, filter, count, timeout, routed,
        };
        trace.Validators.Add(r =>
        {
            bool hasSpec = r.GetResult(spec) is { Tokens.Count: > 0 }, hasHex = r.GetResult(hex) is not null;
            if (r.GetResult(live) is not null && r.GetValue(live))
            {
                if (hasSpec || hasHex || r.GetResult(inPort) is not null)
                    r.AddError("--live records real packets: give --filter MATCH instead of SPEC, --hex or --in-port");
                return;
            }
            foreach (var o in new Option[] { filter, count, timeout })
                if (r.GetResult(o) is not null) r.AddError($"{o.Name} is for --live");
            if (r.GetResult(routed) is not null && r.GetResult(hex) is not null) r.AddError("--routed is for SPEC: a hex frame carries its own destination MAC");
            if (hasSpec && hasHex) r.AddError("give the packet once: SPEC or --hex, not both");
            else if (!hasSpec && !hasHex) r.AddError("give a packet: vsctl trace 'in_port=P,icmp,nw_dst=...', or --hex HEX --in-port P, or --live");
            else if (hasHex && r.GetResult(inPort) is null) r.AddError("--hex needs --in-port (the port the frame arrives on)");
        });

        cli.SetAction(trace, async (ctx, ct) =>
        {
            if (ctx.Get(live)) return await Live(ctx, ctx.Get(filter), ctx.Get(count), ctx.Get(timeout), ct);
            string? s = ctx.Get(spec), h = ctx.Get(hex);
            ApiResponse response;
            try { response = await ctx.Api.PostAsync("v1/trace", new TraceRequest(s, h, ctx.Get(inPort), ctx.Get(routed) ? true : null), ApiJson.Default.TraceRequest, ct); }
            catch (CtlException e) { return RuleText.Fail(ctx, s ?? "", e); }
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            Print(ctx.Out, response.Read(ApiJson.Default.TraceView));
            return Program.Ok;
        });
        return trace;
    }

    private static async Task<int> Live(Context ctx, string? filter, int? count, double? timeout, CancellationToken ct)
    {
        var body = new LiveTraceRequest(filter, count, timeout);
        // The daemon answers when it has the packets or its timeout passes; allow for that on top of the usual wait.
        var wait = TimeSpan.FromSeconds(Math.Clamp(timeout ?? DefaultLiveSeconds, 0, 300)) + ApiClient.Timeout;
        ApiResponse response;
        try { response = await ctx.Api.PostAsync("v1/trace/live", body, ApiJson.Default.LiveTraceRequest, wait, ct); }
        catch (CtlException e) { return RuleText.Fail(ctx, filter ?? "", e); }
        if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
        var result = response.Read(ApiJson.Default.LiveTraceView);
        var w = ctx.Out;
        for (int i = 0; i < result.Packets.Length; i++)
        {
            var t = result.Packets[i];
            string when = Time(t.Time) is { } time ? $" at {time}" : "";
            w.WriteLine($"Packet {i + 1}{when}{(t.CacheHit ? " (flow cache hit)" : "")}");
            Print(w, t);
            w.WriteLine();
        }
        string stopped = result.Complete ? "" : $" (stopped after {timeout ?? DefaultLiveSeconds:0.#}s)";
        w.WriteLine($"recorded {result.Recorded} of {result.Requested}{stopped}");
        return Program.Ok;
    }

    /// <summary>Like ofproto/trace: the flow, the numbered steps, the final actions and why it was dropped.</summary>
    public static void Print(TextWriter w, TraceView t)
    {
        w.WriteLine($"Flow: {t.Flow}");
        w.WriteLine();
        int width = t.Steps.Length.ToString(CultureInfo.InvariantCulture).Length;
        for (int i = 0; i < t.Steps.Length; i++)
        {
            var step = t.Steps[i];
            string number = (i + 1).ToString(CultureInfo.InvariantCulture).PadLeft(width);
            w.WriteLine(string.IsNullOrEmpty(step.Detail) ? $"  {number}. {step.Stage}" : $"  {number}. {step.Stage}: {step.Detail}");
        }
        if (t.Steps.Length > 0) w.WriteLine();
        w.WriteLine($"Final actions: {(string.IsNullOrEmpty(t.Actions) ? "drop" : t.Actions)}");
        if (!string.IsNullOrEmpty(t.DropReason)) w.WriteLine($"Drop reason: {t.DropReason}");
    }

    /// <summary>The daemon's ISO 8601 time as local wall-clock time with microseconds; null when absent or unreadable.</summary>
    private static string? Time(string? iso) =>
        DateTimeOffset.TryParse(iso, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t)
            ? t.ToLocalTime().ToString("HH:mm:ss.ffffff", CultureInfo.InvariantCulture)
            : null;
}
