using System.CommandLine;
using System.Globalization;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary>
/// <c>vsctl conntrack [ls] [--proto P] [--src A] [--dst A] [--port N] [--state S] [--nat dnat|snat] | flush</c>:
/// the connection-tracking table that services, policy and NAT share, /v1/conntrack, like the
/// <c>conntrack -L</c> and <c>conntrack -F</c> of netfilter's tools.
/// </summary>
public static class ConntrackCommands
{
    public static Command Create(Cli cli)
    {
        var conntrack = new Command("conntrack", "Tracked connections (services, policy, NAT share the table), like 'conntrack -L'");
        conntrack.Aliases.Add("ct");
        var ls = new Command("ls", "List tracked connections");
        ls.Aliases.Add("list");
        Cli.ListsByDefault(conntrack, ls, c => ConfigureList(cli, c));
        conntrack.Subcommands.Add(ls);
        conntrack.Subcommands.Add(Flush(cli));
        return conntrack;
    }

    private static void ConfigureList(Cli cli, Command command)
    {
        var proto = new Option<string>("--proto", "-p") { Description = "Only this protocol: tcp, udp, icmp, icmpv6", HelpName = "P" };
        var src = new Option<string>("--src", "-s") { Description = "Only connections from this address (original direction)", HelpName = "ADDR" };
        var dst = new Option<string>("--dst", "-d") { Description = "Only connections to this address (original direction, before NAT)", HelpName = "ADDR" };
        var port = new Option<int?>("--port") { Description = "Only connections with this port, either side, either direction", HelpName = "N" };
        var state = new Option<string>("--state") { Description = "Only TCP connections in this state (ESTABLISHED, TIME_WAIT...)", HelpName = "S" };
        var nat = new Option<string>("--nat") { Description = "Only translated connections: dnat or snat", HelpName = "KIND" };
        var limit = new Option<int?>("--limit") { Description = "At most this many (default 10000)", HelpName = "N" };
        foreach (var o in new Option[] { proto, src, dst, port, state, nat, limit }) command.Options.Add(o);
        cli.SetAction(command, async (ctx, ct) =>
        {
            var q = new List<string>();
            void Add(string name, string? v) { if (!string.IsNullOrWhiteSpace(v)) q.Add(name + "=" + ApiClient.Escape(v)); }
            Add("proto", ctx.Get(proto));
            Add("src", ctx.Get(src));
            Add("dst", ctx.Get(dst));
            Add("port", ctx.Get(port)?.ToString(CultureInfo.InvariantCulture));
            Add("state", ctx.Get(state));
            Add("nat", ctx.Get(nat));
            Add("limit", ctx.Get(limit)?.ToString(CultureInfo.InvariantCulture));
            var response = await ctx.Api.GetAsync("v1/conntrack" + (q.Count == 0 ? "" : "?" + string.Join('&', q)), ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var view = response.Read(ApiJson.Default.ConntrackView);
            var table = new TableWriter("PROTO", "STATE", "ORIGINAL", "REPLY", "NAT", "EXPIRES", "PACKETS", "BYTES", "FLAGS").Cut("REPLY", "FLAGS");
            foreach (var c in view.Connections)
                table.AddRow(c.Proto, c.TcpState ?? "-", Endpoints(c.Proto, c.OrigSrc, c.OrigSport, c.OrigDst, c.OrigDport),
                    Endpoints(c.Proto, c.ReplySrc, c.ReplySport, c.ReplyDst, c.ReplyDport), c.Nat ?? "-",
                    c.ExpiresInSeconds.ToString("0", CultureInfo.InvariantCulture), c.PacketsOrig + c.PacketsReply, c.BytesOrig + c.BytesReply,
                    c.Status.Length == 0 ? "-" : string.Join(',', c.Status));
            ctx.Write(table);
            ctx.Out.WriteLine(view.Tracking
                ? $"{view.Count} of {view.Capacity} connections tracked{(view.Truncated ? $", {view.Connections.Length} shown (--limit)" : "")}; "
                  + $"{view.Created} created, {view.Removed} removed, {view.Full} refused (table full), {view.Invalid} invalid packets dropped"
                : "conntrack is off: no service, policy or NAT asks for it");
            return Program.Ok;
        });
    }

    private static string Endpoints(string proto, string src, int sport, string dst, int dport) =>
        proto.StartsWith("icmp", StringComparison.Ordinal) ? $"{src} -> {dst} id={sport}" : $"{src}:{sport} -> {dst}:{dport}";

    private static Command Flush(Cli cli)
    {
        var flush = new Command("flush", "Forget every tracked connection (like 'conntrack -F'): TCP ones are taken up again by their next packet");
        cli.SetAction(flush, async (ctx, ct) =>
        {
            var response = await ctx.Api.DeleteAsync("v1/conntrack", ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            int removed = response.Read(ApiJson.Default.FlushResult).Removed;
            ctx.Out.WriteLine($"forgot {removed} {(removed == 1 ? "connection" : "connections")}");
            return Program.Ok;
        });
        return flush;
    }
}
