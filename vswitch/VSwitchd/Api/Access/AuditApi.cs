using System.Globalization;
using VSwitch.Api;
using VSwitchd.Runtime;

namespace VSwitchd.Api.Access;

/// <summary>GET /v1/audit: the audit log, newest last; ?since= (an RFC 3339 time) and ?limit= select.</summary>
public static class AuditApi
{
    public const int DefaultLimit = 100, MaxLimit = 100_000;

    public static void Map(RouteGroupBuilder v1) =>
        v1.MapGet("/audit", async (StateStore store, AuditLog audit, string? since, string? limit, CancellationToken ct) =>
        {
            var from = ParseSince(since);
            int n = ParseLimit(limit);
            // A caller who just changed something sees it: what was queued before this request is written first.
            await audit.FlushAsync(TimeSpan.FromSeconds(2), ct);
            var rows = store.Audit(from, n);
            var entries = rows.Select(r => new AuditEntryView(r.Id, r.Record.Time.UtcDateTime, r.Record.Uid, r.Record.User, r.Record.Pid, r.Record.Subject,
                r.Record.Method, r.Record.Path, r.Record.Summary, r.Record.Status)).ToArray();
            return TypedResults.Ok(new AuditView(entries, audit.Keep, store.AuditPruned, audit.Dropped, audit.WriteFailures));
        });

    /// <summary>An RFC 3339 / ISO 8601 time (a time without an offset is UTC); null for none.</summary>
    public static DateTimeOffset? ParseSince(string? since)
    {
        if (string.IsNullOrEmpty(since)) return null;
        if (DateTimeOffset.TryParse(since, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AllowWhiteSpaces, out var t)) return t;
        throw new InvalidRequestException($"since: '{since}' is not a time (RFC 3339, e.g. 2026-11-28T10:00:00Z)");
    }

    public static int ParseLimit(string? limit)
    {
        if (string.IsNullOrEmpty(limit)) return DefaultLimit;
        if (int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n is >= 1 and <= MaxLimit) return n;
        throw new InvalidRequestException($"limit: '{limit}' must be a number from 1 to {MaxLimit}");
    }
}
