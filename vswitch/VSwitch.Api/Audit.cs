namespace VSwitch.Api;

/// <summary>
/// GET /v1/audit?since=&amp;limit=: the newest records of the audit log, oldest first. <see cref="Keep"/> is how many
/// the daemon keeps; <see cref="Pruned"/> how many older ones it dropped to stay there; <see cref="Lost"/> records that
/// never reached the database (a full queue or a failed write, each logged), <see cref="WriteFailures"/> the failed writes.
/// </summary>
public sealed record AuditView(AuditEntryView[] Entries, int Keep, long Pruned, long Lost, long WriteFailures);

/// <summary>
/// One request that may have changed something: when (UTC), who (the Unix socket's peer: uid, user name, pid; or a
/// client certificate's subject), what (method, path with its query, and the body's scalar members, e.g. name=blue)
/// and the HTTP status it got (403 when refused).
/// </summary>
public sealed record AuditEntryView(long Id, DateTime Time, long? Uid, string? User, int? Pid, string? Subject,
    string Method, string Path, string? Summary, int Status);
