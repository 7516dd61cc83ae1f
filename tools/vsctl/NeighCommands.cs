using System.CommandLine;
using System.Globalization;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary><c>vsctl neigh ls|add|flush</c>: the router's ARP cache, /v1/neighbors, like <c>ip neigh</c>.</summary>
public static class NeighCommands
{
    public static Command Create(Cli cli)
    {
        var neigh = new Command("neigh", "The router's neighbors: IPv4 and IPv6 to MAC per network, learned by ARP and neighbour discovery, or static (like 'ip neigh')");
        neigh.Aliases.Add("neighbor");
        var ls = new Command("ls", "List neighbor entries");
        ls.Aliases.Add("list");
        ls.Aliases.Add("show");
        Cli.ListsByDefault(neigh, ls, c => ConfigureList(cli, c));
        neigh.Subcommands.Add(ls);
        neigh.Subcommands.Add(Add(cli));
        neigh.Subcommands.Add(Flush(cli));
        return neigh;
    }

    private static void ConfigureList(Cli cli, Command command)
    {
        var network = new Option<string>("--network") { Description = "Only this network", HelpName = "NET" };
        command.Options.Add(network);
        cli.SetAction(command, async (ctx, ct) =>
        {
            string? net = ctx.Get(network);
            var response = await ctx.Api.GetAsync("v1/neighbors" + (net is null ? "" : "?network=" + ApiClient.Escape(net)), ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var table = new TableWriter("NETWORK", "IP", "MAC", "STATE", "AGE");
            foreach (var n in response.Read(ApiJson.Default.NeighborViewArray))
            {
                // A permanent entry does not age: its AGE is "-" rather than a misleading 0.0.
                string? age = n.State == "permanent" ? null : n.AgeSeconds.ToString("0.0", CultureInfo.InvariantCulture);
                table.AddRow(n.Network, n.Ip, n.Mac, n.State, age);
            }
            ctx.Write(table);
            return Program.Ok;
        });
    }

    private static Command Add(Cli cli)
    {
        var network = new Option<string>("--network") { Description = "The network the neighbor is on (default: the one whose subnet holds IP)", HelpName = "NET" };
        var ip = new Argument<string>("IP") { Description = "Its IPv4 or IPv6 address" };
        var mac = new Argument<string>("MAC") { Description = "Its MAC address (unicast)" };
        var add = new Command("add", "Add a static (permanent) entry: no ARP or neighbour solicitation for this address") { network, ip, mac };
        cli.SetAction(add, async (ctx, ct) =>
        {
            var body = new NeighborRequest(ctx.Get(network), ctx.Get(ip)!, ctx.Get(mac)!);
            var response = await ctx.Api.PostAsync("v1/neighbors", body, ApiJson.Default.NeighborRequest, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var n = response.Read(ApiJson.Default.NeighborView);
            ctx.Out.WriteLine($"neighbor {n.Ip} lladdr {n.Mac} on {n.Network} added ({n.State})");
            return Program.Ok;
        });
        return add;
    }

    private static Command Flush(Cli cli)
    {
        var network = new Option<string>("--network") { Description = "Only this network's entries", HelpName = "NET" };
        var flush = new Command("flush", "Forget learned entries (all networks by default); static entries stay") { network };
        cli.SetAction(flush, async (ctx, ct) =>
        {
            string? net = ctx.Get(network);
            var response = await ctx.Api.DeleteAsync("v1/neighbors" + (net is null ? "" : "?network=" + ApiClient.Escape(net)), ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            int removed = response.Read(ApiJson.Default.FlushResult).Removed;
            ctx.Out.WriteLine($"removed {removed} {(removed == 1 ? "entry" : "entries")}");
            return Program.Ok;
        });
        return flush;
    }
}
