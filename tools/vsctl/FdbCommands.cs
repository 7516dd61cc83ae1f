using System.CommandLine;

namespace VSwitch.Ctl;

/// <summary><c>vsctl fdb show|flush</c>: the learned MAC table, /v1/fdb.</summary>
public static class FdbCommands
{
    public static Command Create(Cli cli)
    {
        var fdb = new Command("fdb", "The forwarding database: MAC addresses learned per network and VLAN");
        fdb.Subcommands.Add(Show(cli));
        fdb.Subcommands.Add(Flush(cli));
        return fdb;
    }

    private static Command Show(Cli cli)
    {
        var network = new Option<string>("--network") { Description = "Only this network", HelpName = "NET" };
        var show = new Command("show", "List MAC entries") { network };
        show.Aliases.Add("ls");
        cli.SetAction(show, async (ctx, ct) =>
        {
            string? net = ctx.Get(network);
            var response = await ctx.Api.GetAsync("v1/fdb" + (net is null ? "" : "?network=" + ApiClient.Escape(net)), ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var table = new TableWriter("NETWORK", "VLAN", "MAC", "PORT", "AGE");
            foreach (var e in response.Read(ApiJson.Default.FdbEntryViewArray))
                table.AddRow(e.Network, e.Vlan, e.Mac, e.Port, e.Static ? "static" : e.AgeSeconds.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture));
            table.Write(ctx.Out);
            return Program.Ok;
        });
        return show;
    }

    private static Command Flush(Cli cli)
    {
        var network = new Option<string>("--network") { Description = "Only this network's entries", HelpName = "NET" };
        var port = new Option<string>("--port") { Description = "Only entries learned on this port", HelpName = "P" };
        var flush = new Command("flush", "Forget learned MAC entries (all of them by default)") { network, port };
        flush.Validators.Add(r =>
        {
            if (r.GetResult(network) is not null && r.GetResult(port) is not null)
                r.AddError("give --network or --port, not both (a port belongs to one network)");
        });
        cli.SetAction(flush, async (ctx, ct) =>
        {
            string? net = ctx.Get(network), p = ctx.Get(port);
            string query = p is not null ? "?port=" + ApiClient.Escape(p) : net is not null ? "?network=" + ApiClient.Escape(net) : "";
            var response = await ctx.Api.DeleteAsync("v1/fdb" + query, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            int removed = response.Read(ApiJson.Default.FlushResult).Removed;
            ctx.Out.WriteLine($"removed {removed} {(removed == 1 ? "entry" : "entries")}");
            return Program.Ok;
        });
        return flush;
    }
}
