using System.CommandLine;
using System.Globalization;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary><c>vsctl audit [--since 10m|TIME] [--limit N]</c>: who changed what, and with what result (GET /v1/audit).</summary>
public static class AuditCommands
{
    public static Command Create(Cli cli)
    {
        var since = new Option<DateTimeOffset?>("--since")
        {
            Description = "Only records from this time on: an age (30s, 10m, 2h, 7d) or a UTC time (2026-11-28T10:00Z)",
            HelpName = "AGE|TIME",
            CustomParser = r =>
            {
                string text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
                if (ParseSince(text, DateTimeOffset.UtcNow) is { } t) return t;
                r.AddError($"--since: '{text}' is neither an age (30s, 10m, 2h, 7d) nor a time (2026-11-28T10:00Z)");
                return null;
            },
        };
        var limit = Cli.IntOption("--limit", "At most N records, the newest (default 100)");
        var audit = new Command("audit", "The audit log: every change made through the API (allowed or refused), with its caller and result") { since, limit };
        cli.SetAction(audit, async (ctx, ct) =>
        {
            var query = new List<string>();
            if (ctx.Get(since) is DateTimeOffset from) query.Add("since=" + ApiClient.Escape(from.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture)));
            if (ctx.Get(limit) is int n) query.Add("limit=" + n.ToString(CultureInfo.InvariantCulture));
            var response = await ctx.Api.GetAsync("v1/audit" + (query.Count == 0 ? "" : "?" + string.Join('&', query)), ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            Print(ctx, response.Read(ApiJson.Default.AuditView));
            return Program.Ok;
        });
        return audit;
    }

    private static void Print(Context ctx, AuditView view)
    {
        if (view.Entries.Length == 0) ctx.Out.WriteLine("no audit records");
        else
        {
            var table = new TableWriter("TIME (UTC)", "USER", "UID", "PID", "REQUEST", "DETAIL", "STATUS").Cut("REQUEST", "DETAIL");
            foreach (var e in view.Entries)
                table.AddRow(e.Time.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture), e.User ?? e.Subject, e.Uid, e.Pid,
                    $"{e.Method} {e.Path}", e.Summary, Status(e.Status));
            ctx.Write(table);
        }
        string lost = view.Lost > 0 ? $"; {view.Lost} record(s) lost (not written: see vswitchd's log)" : "";
        ctx.Out.WriteLine($"{view.Entries.Length} record(s) shown; vswitchd keeps the newest {view.Keep}, {view.Pruned} older pruned{lost}");
    }

    /// <summary>"201", "403 forbidden", "404 not found": the status, with a word when it is a refusal or failure.</summary>
    public static string Status(int status) => status switch
    {
        400 => "400 invalid",
        403 => "403 forbidden",
        404 => "404 not found",
        409 => "409 conflict",
        503 => "503 unavailable",
        >= 500 => $"{status} error",
        _ => status.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>An age back from <paramref name="now"/> (30s, 10m, 2h, 7d) or a time (a time without an offset is UTC); null when neither.</summary>
    public static DateTimeOffset? ParseSince(string text, DateTimeOffset now)
    {
        text = text.Trim();
        if (text.Length >= 2 && long.TryParse(text[..^1], NumberStyles.None, CultureInfo.InvariantCulture, out long n) && n <= 100_000)
        {
            TimeSpan? age = text[^1] switch
            {
                's' => TimeSpan.FromSeconds(n),
                'm' => TimeSpan.FromMinutes(n),
                'h' => TimeSpan.FromHours(n),
                'd' => TimeSpan.FromDays(n),
                _ => null,
            };
            if (age is { } a) return now - a;
        }
        if (text.Length > 0 && char.IsAsciiDigit(text[0])
            && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t)) return t;
        return null;
    }
}
