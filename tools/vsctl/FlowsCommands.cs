using System.CommandLine;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary>
/// <c>vsctl flows [flush]</c>: the datapath flows, /v1/flows, like <c>ovs-appctl dpctl/dump-flows</c>: each thread's
/// cache of exact flow keys and the actions the rule table resolved them to.
/// </summary>
public static class FlowsCommands
{
    public static Command Create(Cli cli)
    {
        var flows = new Command("flows", "Datapath flows: the per-thread flow cache (list with no subcommand)");
        cli.SetAction(flows, async (ctx, ct) =>
        {
            var response = await ctx.Api.GetAsync("v1/flows", ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            Print(ctx.Out, response.Read(ApiJson.Default.FlowViewArray));
            return Program.Ok;
        });
        flows.Subcommands.Add(List(cli));
        flows.Subcommands.Add(Flush(cli));
        return flows;
    }

    private static Command List(Cli cli)
    {
        var ls = new Command("ls", "List datapath flows, busiest first (the same as 'vsctl flows')");
        ls.Aliases.Add("list");
        cli.SetAction(ls, async (ctx, ct) =>
        {
            var response = await ctx.Api.GetAsync("v1/flows", ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            Print(ctx.Out, response.Read(ApiJson.Default.FlowViewArray));
            return Program.Ok;
        });
        return ls;
    }

    /// <summary>THREAD PACKETS BYTES AGE IDLE FLOW ACTIONS; AGE and IDLE in seconds with a tenth, as flows live briefly.</summary>
    public static void Print(TextWriter w, IReadOnlyList<FlowView> flows)
    {
        var table = new TableWriter("THREAD", "PACKETS", "BYTES", "AGE", "IDLE", "FLOW", "ACTIONS");
        foreach (var f in flows)
            table.AddRow(f.Thread, f.Packets, f.Bytes, f.AgeSeconds, f.IdleSeconds, f.Flow, f.Actions);
        table.Write(w);
    }

    private static Command Flush(Cli cli)
    {
        var flush = new Command("flush", "Empty every thread's flow cache (packets then take the slow path once more)");
        flush.Aliases.Add("del-flows");
        cli.SetAction(flush, async (ctx, ct) =>
        {
            var response = await ctx.Api.DeleteAsync("v1/flows", ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            int removed = response.Read(ApiJson.Default.FlushResult).Removed;
            ctx.Out.WriteLine($"removed {removed} {(removed == 1 ? "flow" : "flows")}");
            return Program.Ok;
        });
        return flush;
    }
}
