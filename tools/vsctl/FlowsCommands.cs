using System.CommandLine;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary>
/// <c>vsctl flows [MATCH] [--port P] [--network N] | flush</c>: the datapath flows, /v1/flows, like
/// <c>ovs-appctl dpctl/dump-flows</c>: each thread's cache of exact flow keys and the actions the rule table
/// resolved them to. The filters are the daemon's (<c>?match=&amp;port=&amp;network=</c>): the match is rule syntax.
/// </summary>
public static class FlowsCommands
{
    public static Command Create(Cli cli)
    {
        var flows = new Command("flows", "Datapath flows: the per-thread flow cache");
        var ls = new Command("ls", "List datapath flows, busiest first (the same as 'vsctl flows')");
        ls.Aliases.Add("list");
        Cli.ListsByDefault(flows, ls, c => ConfigureList(cli, c));
        flows.Subcommands.Add(ls);
        flows.Subcommands.Add(Flush(cli));
        return flows;
    }

    private static void ConfigureList(Cli cli, Command command)
    {
        var match = new Argument<string>("MATCH")
        {
            Description = "Only the flows this match accepts, in rule syntax: 'icmp', 'in_port=tapa', 'tcp,tp_dst=80' (default: all)",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var port = new Option<string>("--port") { Description = "Only flows that come in on this port or are sent out on it", HelpName = "P" };
        var network = new Option<string>("--network") { Description = "Only flows that come into this network", HelpName = "NET" };
        command.Arguments.Add(match);
        command.Options.Add(port);
        command.Options.Add(network);
        cli.SetAction(command, async (ctx, ct) =>
        {
            string? m = ctx.Get(match), p = ctx.Get(port), n = ctx.Get(network);
            var query = new List<string>();
            if (!string.IsNullOrWhiteSpace(m)) query.Add("match=" + ApiClient.Escape(m));
            if (p is not null) query.Add("port=" + ApiClient.Escape(p));
            if (n is not null) query.Add("network=" + ApiClient.Escape(n));
            ApiResponse response;
            try { response = await ctx.Api.GetAsync("v1/flows" + (query.Count == 0 ? "" : "?" + string.Join('&', query)), ct); }
            catch (CtlException e) { return RuleText.Fail(ctx, m ?? "", e); }
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            ctx.Write(Table(response.Read(ApiJson.Default.FlowViewArray), ctx.Wide));
            return Program.Ok;
        });
    }

    /// <summary>
    /// THREAD PACKETS BYTES AGE IDLE FLOW ACTIONS; AGE and IDLE in seconds with a tenth, as flows live briefly.
    /// Unless wide, each flow is abbreviated (<see cref="Abbreviate"/>) and FLOW and ACTIONS may be cut to fit.
    /// </summary>
    public static TableWriter Table(IReadOnlyList<FlowView> flows, bool wide)
    {
        var table = new TableWriter("THREAD", "PACKETS", "BYTES", "AGE", "IDLE", "FLOW", "ACTIONS").Cut("FLOW", "ACTIONS");
        foreach (var f in flows)
            table.AddRow(f.Thread, f.Packets, f.Bytes, f.AgeSeconds, f.IdleSeconds, wide ? f.Flow : Abbreviate(f.Flow), f.Actions);
        return table;
    }

    /// <summary>The fields an abbreviated flow leaves out (they are in every exact flow key, and rarely what one looks for).</summary>
    private static readonly HashSet<string> Quiet = ["nw_tos", "nw_ttl", "tcp_flags", "icmp_code", "icmpv6_code", "dl_vlan_pcp", "arp_sha", "arp_tha"];

    /// <summary>
    /// A datapath flow key as a person scans it: "ip,...,nw_proto=1" becomes "icmp" (tcp, udp, and the IPv6 ones
    /// alike), the fields in <see cref="Quiet"/> are left out, and when the flow has IP or ARP fields the Ethernet
    /// addresses come after them, so that a cut takes them first. --wide (and --json) show the key whole.
    /// </summary>
    public static string Abbreviate(string flow)
    {
        var fields = flow.Split(',').ToList();
        string Value(string name) => fields.FirstOrDefault(f => f.StartsWith(name + "=", StringComparison.Ordinal))?[(name.Length + 1)..] ?? "";
        int ip = fields.IndexOf("ip"), ipv6 = fields.IndexOf("ipv6");
        if (ip >= 0 || ipv6 >= 0)
        {
            string? proto = (Value("nw_proto"), ipv6 >= 0) switch
            {
                ("1", false) => "icmp", ("6", false) => "tcp", ("17", false) => "udp",
                ("58", true) => "icmp6", ("6", true) => "tcp6", ("17", true) => "udp6",
                _ => null,
            };
            if (proto is not null)
            {
                fields[ip >= 0 ? ip : ipv6] = proto;
                fields.RemoveAll(f => f.StartsWith("nw_proto=", StringComparison.Ordinal));
            }
        }
        fields.RemoveAll(f => f.IndexOf('=') is int eq and > 0 && Quiet.Contains(f[..eq]));
        int l3 = fields.FindIndex(f => f is "ip" or "ipv6" or "arp" or "icmp" or "tcp" or "udp" or "icmp6" or "tcp6" or "udp6");
        if (l3 >= 0)
        {
            var ethernet = fields.Where(f => f.StartsWith("dl_src=", StringComparison.Ordinal) || f.StartsWith("dl_dst=", StringComparison.Ordinal)).ToList();
            fields.RemoveAll(ethernet.Contains);
            fields.AddRange(ethernet);
        }
        return string.Join(',', fields);
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
