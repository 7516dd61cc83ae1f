using System.CommandLine;
using System.Text.Json;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary>
/// <c>vsctl rules ls|add|del</c>: the rule table, /v1/rules, like <c>ovs-ofctl dump-flows / add-flow / del-flows</c>.
/// Rules use ovs-ofctl's syntax: <c>priority=100,in_port=tap1,ip,nw_dst=10.1.0.0/24,actions=output:tap2</c>.
/// </summary>
public static class RulesCommands
{
    public static Command Create(Cli cli)
    {
        var rules = new Command("rules", "The rule table: what the switch does with each kind of packet (ovs-ofctl syntax)");
        var ls = new Command("ls", "List rules, highest priority first, with their packet and byte counts");
        ls.Aliases.Add("dump-flows");
        ls.Aliases.Add("list");
        Cli.ListsByDefault(rules, ls, c => ConfigureList(cli, c));
        rules.Subcommands.Add(ls);
        rules.Subcommands.Add(Add(cli));
        rules.Subcommands.Add(Delete(cli));
        return rules;
    }

    private static void ConfigureList(Cli cli, Command command)
    {
        var match = new Argument<string>("MATCH")
        {
            Description = "Only the rules this match covers, as 'rules del' selects them: 'tcp' lists every TCP rule (with priority=N only that priority; default: all)",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var strict = new Option<bool>("--strict") { Description = "Only the rule whose match (and priority, if given) is exactly MATCH" };
        command.Arguments.Add(match);
        command.Options.Add(strict);
        cli.SetAction(command, async (ctx, ct) =>
        {
            string? m = ctx.Get(match);
            bool exact = ctx.Get(strict);
            var query = new List<string>();
            if (!string.IsNullOrWhiteSpace(m)) query.Add("match=" + ApiClient.Escape(m));
            if (exact) query.Add("strict=true");
            ApiResponse response;
            try { response = await ctx.Api.GetAsync("v1/rules" + (query.Count == 0 ? "" : "?" + string.Join('&', query)), ct); }
            catch (CtlException e) { return RuleText.Fail(ctx, m ?? "", e); }
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            ctx.Write(Table(response.Read(ApiJson.Default.RuleViewArray)));
            return Program.Ok;
        });
    }

    /// <summary>PRIORITY MATCH ACTIONS PACKETS BYTES AGE, and COOKIE / IDLE / HARD only when some rule sets them; MATCH and ACTIONS may be cut.</summary>
    public static TableWriter Table(IReadOnlyList<RuleView> rules)
    {
        bool cookie = rules.Any(r => !IsZeroCookie(r.Cookie));
        bool idle = rules.Any(r => r.IdleTimeout != 0), hard = rules.Any(r => r.HardTimeout != 0);
        var headers = new List<string> { "PRIORITY", "MATCH", "ACTIONS", "PACKETS", "BYTES", "AGE" };
        if (cookie) headers.Add("COOKIE");
        if (idle) headers.Add("IDLE");
        if (hard) headers.Add("HARD");
        var table = new TableWriter([.. headers]).Cut("MATCH", "ACTIONS");
        // The daemon lists in match order already; a stable sort keeps that order within a priority.
        foreach (var r in rules.OrderByDescending(r => r.Priority))
        {
            var row = new List<object?>
            {
                r.Priority, r.Match.Length == 0 ? "*" : r.Match, r.Actions, r.Packets, r.Bytes, Format.Duration(r.AgeSeconds),
            };
            if (cookie) row.Add(r.Cookie);
            if (idle) row.Add(r.IdleTimeout == 0 ? null : r.IdleTimeout);
            if (hard) row.Add(r.HardTimeout == 0 ? null : r.HardTimeout);
            table.AddRow([.. row]);
        }
        return table;
    }

    private static bool IsZeroCookie(string? cookie) =>
        string.IsNullOrEmpty(cookie) || cookie.TrimStart('0', 'x', 'X').Length == 0;

    private static Command Add(Cli cli)
    {
        var rule = new Argument<string>("RULE") { Description = "The rule, e.g. 'priority=100,ip,nw_dst=10.0.0.0/8,actions=drop' (a rule with the same priority and match is replaced)" };
        var add = new Command("add", "Add a rule (ovs-ofctl add-flow)") { rule };
        add.Aliases.Add("add-flow");
        cli.SetAction(add, async (ctx, ct) =>
        {
            string text = ctx.Get(rule)!;
            ApiResponse response;
            try { response = await ctx.Api.PostAsync("v1/rules", new RuleRequest(text), ApiJson.Default.RuleRequest, ct); }
            catch (CtlException e) { return RuleText.Fail(ctx, text, e); }
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            ctx.Out.WriteLine($"added {response.Read(ApiJson.Default.RuleView).Text}");
            return Program.Ok;
        });
        return add;
    }

    private static Command Delete(Cli cli)
    {
        var match = new Argument<string>("MATCH")
        {
            Description = "Which rules, e.g. 'ip,nw_dst=10.0.0.0/8' (every rule it covers; with priority=N only that priority); '' selects all",
        };
        var strict = new Option<bool>("--strict") { Description = "Only the rule whose match (and priority, if given) is exactly MATCH" };
        var del = new Command("del", "Delete rules (ovs-ofctl del-flows)") { match, strict };
        del.Aliases.Add("rm");
        del.Aliases.Add("del-flows");
        cli.SetAction(del, async (ctx, ct) =>
        {
            string text = ctx.Get(match)!;
            string query = "?match=" + ApiClient.Escape(text) + (ctx.Get(strict) ? "&strict=true" : "");
            ApiResponse response;
            try { response = await ctx.Api.DeleteAsync("v1/rules" + query, ct); }
            catch (CtlException e) { return RuleText.Fail(ctx, text, e); }
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var result = response.Read(ApiJson.Default.DeleteResult);
            ctx.Out.WriteLine($"deleted {result.Removed} {(result.Removed == 1 ? "rule" : "rules")}");
            foreach (string r in result.Rules) ctx.Out.WriteLine($"  {r}");
            return Program.Ok;
        });
        return del;
    }
}

/// <summary>
/// Errors in text the daemon parses (rules, matches, packet descriptions, filters). When the answer names
/// the bad token and where it starts, the text is echoed with a caret line under that token, like a compiler:
/// <code>
/// vsctl: bad rule: unknown field 'nw_dts'
///     priority=100,ip,nw_dts=10.0.0.0/8,actions=drop
///                     ^~~~~~~~~~~~~~~~~
/// </code>
/// </summary>
public static class RuleText
{
    private const string Indent = "    ";

    /// <summary>Reports <paramref name="e"/> (on stderr with the caret when it can; with --json as JSON) and returns its exit code.</summary>
    public static int Fail(Context ctx, string text, CtlException e) => ctx.Cli.Report(e, ctx.Json, text);

    /// <summary>The token and position of a <see cref="ApiErrorBody"/> (a bad rule, match, packet or filter); null when the body has neither.</summary>
    public static (string Token, int Position)? Locate(string? body)
    {
        if (string.IsNullOrWhiteSpace(body)) return null;
        try
        {
            var err = JsonSerializer.Deserialize(body, ApiJson.Default.ApiErrorBody);
            if (err is null || err.Position is not int pos || err.Token is null) return null;
            return (err.Token, pos);
        }
        catch (JsonException) { return null; }
    }

    /// <summary>
    /// The text (trimmed, as the daemon parsed it) and a line with '^' under the token's first character and
    /// '~' under the rest. The daemon's position is where the comma-separated field starts, which may be a
    /// blank before the token, so the token is looked for from there.
    /// </summary>
    public static string[] Caret(string text, string token, int position)
    {
        string s = text.Trim();
        int at = Math.Clamp(position, 0, s.Length);
        string t = token.Trim();
        if (t.Length > 0)
        {
            int found = s.IndexOf(t, at, StringComparison.Ordinal);
            if (found >= 0) at = found;
        }
        int length = Math.Max(1, Math.Min(t.Length, s.Length - at));
        // Tabs stay tabs so the caret lines up however the terminal expands them.
        string pad = string.Concat(s[..at].Select(c => c == '\t' ? '\t' : ' '));
        return [Indent + s, Indent + pad + "^" + new string('~', length - 1)];
    }
}
