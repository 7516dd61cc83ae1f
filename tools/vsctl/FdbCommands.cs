using System.CommandLine;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary><c>vsctl fdb show|add|del|flush</c>: the MAC table, /v1/fdb (learned entries, and static remote MACs behind VXLAN VTEPs).</summary>
public static class FdbCommands
{
    public static Command Create(Cli cli)
    {
        var fdb = new Command("fdb", "The forwarding database: MAC addresses learned per network and VLAN");
        var show = new Command("show", "List MAC entries");
        show.Aliases.Add("ls");
        Cli.ListsByDefault(fdb, show, c => ConfigureShow(cli, c));
        fdb.Subcommands.Add(show);
        fdb.Subcommands.Add(Add(cli));
        fdb.Subcommands.Add(Delete(cli));
        fdb.Subcommands.Add(Flush(cli));
        return fdb;
    }

    private static void ConfigureShow(Cli cli, Command command)
    {
        var network = new Option<string>("--network") { Description = "Only this network", HelpName = "NET" };
        var port = new Option<string>("--port") { Description = "Only the entries on this port (learned there, or behind it)", HelpName = "P" };
        command.Options.Add(network);
        command.Options.Add(port);
        cli.SetAction(command, async (ctx, ct) =>
        {
            string? net = ctx.Get(network), p = ctx.Get(port);
            var query = new List<string>();
            if (net is not null) query.Add("network=" + ApiClient.Escape(net));
            if (p is not null) query.Add("port=" + ApiClient.Escape(p));
            var response = await ctx.Api.GetAsync("v1/fdb" + (query.Count == 0 ? "" : "?" + string.Join('&', query)), ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var entries = response.Read(ApiJson.Default.FdbEntryViewArray);
            // VTEP only when some MAC lives behind one (a switch without an overlay keeps its narrow table).
            bool overlay = entries.Any(e => e.Vtep is not null);
            var table = overlay
                ? new TableWriter("NETWORK", "VLAN", "MAC", "PORT", "VTEP", "AGE")
                : new TableWriter("NETWORK", "VLAN", "MAC", "PORT", "AGE");
            foreach (var e in entries)
            {
                string age = e.Static ? "static" : e.AgeSeconds.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
                if (overlay) table.AddRow(e.Network, e.Vlan, e.Mac, e.Port, e.Vtep, age);
                else table.AddRow(e.Network, e.Vlan, e.Mac, e.Port, age);
            }
            ctx.Write(table);
            return Program.Ok;
        });
    }

    private static Command Add(Cli cli)
    {
        var network = new Argument<string>("NETWORK") { Description = "A VXLAN network (one with a vni)" };
        var mac = new Argument<string>("MAC") { Description = "The remote MAC address (unicast)" };
        var vtep = new Option<string>("--vtep") { Description = "The remote VTEP it lives behind (its underlay address, IPv4 or IPv6: the endpoint's family)", HelpName = "IP", Required = true };
        var add = new Command("add", "Add a static remote MAC: frames to it go to --vtep, never flooded (kept across restarts until fdb del)") { network, mac, vtep };
        cli.SetAction(add, async (ctx, ct) =>
        {
            string net = ctx.Get(network)!, m = ctx.Get(mac)!, v = ctx.Get(vtep)!;
            var body = new RemoteMacRequest(net, m, v);
            ApiResponse response;
            try { response = await ctx.Api.PostAsync("v1/fdb", body, ApiJson.Default.RemoteMacRequest, ct); }
            catch (CtlException e) { throw await OverlayCommands.Explain(ctx.Api, e, ct); }
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            // The answer is the network's table: find the entry, written the daemon's way.
            var entry = response.Read(ApiJson.Default.FdbEntryViewArray)
                .FirstOrDefault(e => Normal(e.Mac) == Normal(m));
            ctx.Out.WriteLine($"static MAC {entry?.Mac ?? m} on network {net} behind vtep {entry?.Vtep ?? v}"
                + (entry is null ? "" : $" (port {entry.Port})"));
            return Program.Ok;
        });
        return add;
    }

    private static Command Delete(Cli cli)
    {
        var network = new Argument<string>("NETWORK") { Description = "The network the MAC is in" };
        var mac = new Argument<string>("MAC") { Description = "The MAC address (learned or static)" };
        var del = new Command("del", "Remove one MAC entry, learned or static (a static remote MAC is forgotten for good)") { network, mac };
        del.Aliases.Add("delete");
        del.Aliases.Add("rm");
        cli.SetAction(del, async (ctx, ct) =>
        {
            string net = ctx.Get(network)!, m = ctx.Get(mac)!;
            var response = await ctx.Api.DeleteAsync($"v1/fdb/{ApiClient.Escape(m)}?network={ApiClient.Escape(net)}", ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            ctx.Out.WriteLine($"MAC {m} deleted from network {net}");
            return Program.Ok;
        });
        return del;
    }

    /// <summary>A MAC's twelve hex digits, lower case, whatever the separators.</summary>
    private static string Normal(string mac) => new(mac.Where(Uri.IsHexDigit).Select(char.ToLowerInvariant).ToArray());

    private static Command Flush(Cli cli)
    {
        var network = new Option<string>("--network") { Description = "Only this network's entries", HelpName = "NET" };
        var port = new Option<string>("--port") { Description = "Only entries learned on this port", HelpName = "P" };
        var flush = new Command("flush", "Forget learned MAC entries (all of them by default; static entries stay)") { network, port };
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
