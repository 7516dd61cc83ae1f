using System.CommandLine;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary><c>vsctl route ls|add|del</c>: the router's FIB, /v1/routes, like <c>ip route</c>.</summary>
public static class RouteCommands
{
    public static Command Create(Cli cli)
    {
        var route = new Command("route", "Routes between networks: connected subnets and static routes (like 'ip route')");
        var ls = new Command("ls", "List routes, one row per path (an ECMP route has several)");
        ls.Aliases.Add("list");
        ls.Aliases.Add("show");
        Cli.ListsByDefault(route, ls, c => ConfigureList(cli, c));
        route.Subcommands.Add(ls);
        route.Subcommands.Add(Add(cli));
        route.Subcommands.Add(Delete(cli));
        return route;
    }

    private static void ConfigureList(Cli cli, Command command) =>
        cli.SetAction(command, async (ctx, ct) =>
        {
            var response = await ctx.Api.GetAsync("v1/routes", ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var table = new TableWriter("PREFIX", "KIND", "NETWORK", "VIA");
            foreach (var r in response.Read(ApiJson.Default.RouteViewArray))
            {
                if (r.Paths.Length == 0) table.AddRow(r.Prefix, null, null, null);
                foreach (var p in r.Paths) table.AddRow(r.Prefix, p.Kind, p.Network, p.Via);
            }
            ctx.Write(table);
            return Program.Ok;
        });

    private static Command Add(Cli cli)
    {
        var prefix = new Argument<string>("PREFIX") { Description = "The destination, an IPv4 or IPv6 prefix (e.g. 10.9.0.0/16, 0.0.0.0/0, fd00:9::/64)" };
        var via = new Option<string>("--via") { Description = "Next hop: a gateway address on a routed network's subnet (subnet6 for an IPv6 prefix)", HelpName = "IP" };
        var dev = new Option<string>("--dev") { Description = "Out of this network, the destination being on its link", HelpName = "NETWORK" };
        var add = new Command("add", "Add a static route (again with another --via for ECMP)") { prefix, via, dev };
        add.Validators.Add(r =>
        {
            bool hasVia = r.GetResult(via) is not null, hasDev = r.GetResult(dev) is not null;
            if (hasVia == hasDev) r.AddError("give exactly one of --via IP or --dev NETWORK");
        });
        cli.SetAction(add, async (ctx, ct) =>
        {
            string? v = ctx.Get(via), d = ctx.Get(dev);
            var body = new RouteRequest(ctx.Get(prefix)!, v, d);
            var response = await ctx.Api.PostAsync("v1/routes", body, ApiJson.Default.RouteRequest, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var route = response.Read(ApiJson.Default.RouteView);
            // The answer is the whole route: name the path this command added.
            var path = route.Paths.FirstOrDefault(p => v is not null ? p.Kind == "via" && p.Via == v : p.Kind == "dev" && p.Network == d);
            string what = path is not null ? Describe(path) : v is not null ? $"via {v}" : $"dev {d}";
            string ecmp = route.Paths.Length > 1 ? $" ({route.Paths.Length} paths)" : "";
            ctx.Out.WriteLine($"route {route.Prefix} {what} added{ecmp}");
            return Program.Ok;
        });
        return add;
    }

    private static Command Delete(Cli cli)
    {
        var prefix = new Argument<string>("PREFIX") { Description = "The route's prefix" };
        var via = new Option<string>("--via") { Description = "Only the path through this gateway (default: the whole route)", HelpName = "IP" };
        var dev = new Option<string>("--dev") { Description = "Only the path out of this network", HelpName = "NETWORK" };
        var del = new Command("del", "Delete a static route, or one of its paths (connected routes go with their network's gateway)") { prefix, via, dev };
        del.Aliases.Add("delete");
        del.Aliases.Add("rm");
        del.Validators.Add(r =>
        {
            if (r.GetResult(via) is not null && r.GetResult(dev) is not null) r.AddError("give --via or --dev, not both");
        });
        cli.SetAction(del, async (ctx, ct) =>
        {
            string? v = ctx.Get(via), d = ctx.Get(dev);
            string query = "?prefix=" + ApiClient.Escape(ctx.Get(prefix)!)
                + (v is not null ? "&via=" + ApiClient.Escape(v) : "")
                + (d is not null ? "&dev=" + ApiClient.Escape(d) : "");
            var response = await ctx.Api.DeleteAsync("v1/routes" + query, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            string path = v is not null ? $" via {v}" : d is not null ? $" dev {d}" : "";
            ctx.Out.WriteLine($"route {ctx.Get(prefix)}{path} deleted");
            return Program.Ok;
        });
        return del;
    }

    /// <summary>A path the way <c>ip route</c> says it: "via 10.1.0.254 dev red", "dev red", "dev red (connected)".</summary>
    public static string Describe(RoutePathView p) => p.Kind switch
    {
        "via" => $"via {p.Via} dev {p.Network}",
        "connected" => $"dev {p.Network} (connected)",
        _ => $"dev {p.Network}",
    };
}
