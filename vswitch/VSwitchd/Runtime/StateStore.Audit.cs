namespace VSwitchd.Runtime;

/// <summary>One audited request: when (UTC), who (uid, user and pid, or a certificate's subject), what, and its status.</summary>
public sealed record AuditRecord(DateTimeOffset Time, uint? Uid, string? User, int? Pid, string? Subject, string Method, string Path, string? Summary, int Status);

// The audit log: every request that may change something, with its caller and result. Bounded: the newest `keep`
// rows stay, and how many were pruned is counted in meta('audit_pruned').
public sealed partial class StateStore
{
    private bool _auditTable;

    private void EnsureAuditTable()
    {
        if (_auditTable) return;
        Exec("""
            CREATE TABLE IF NOT EXISTS audit(id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL,
                                             uid INTEGER, user TEXT, pid INTEGER, subject TEXT,
                                             method TEXT NOT NULL, path TEXT NOT NULL, summary TEXT, status INTEGER NOT NULL);
            CREATE INDEX IF NOT EXISTS audit_at ON audit(at_ms);
            """);
        _auditTable = true;
    }

    /// <summary>Appends the records in one transaction, then drops all but the newest <paramref name="keep"/>; returns how many it dropped.</summary>
    public long AppendAudit(IReadOnlyList<AuditRecord> batch, int keep)
    {
        lock (_gate)
        {
            EnsureAuditTable();
            Exec("BEGIN");
            try
            {
                foreach (var a in batch)
                    Exec("INSERT INTO audit(at_ms, uid, user, pid, subject, method, path, summary, status) VALUES($t, $u, $n, $p, $s, $m, $path, $sum, $st)",
                        ("$t", a.Time.ToUnixTimeMilliseconds()), ("$u", (object?)a.Uid ?? DBNull.Value), ("$n", (object?)a.User ?? DBNull.Value),
                        ("$p", (object?)a.Pid ?? DBNull.Value), ("$s", (object?)a.Subject ?? DBNull.Value), ("$m", a.Method), ("$path", a.Path),
                        ("$sum", (object?)a.Summary ?? DBNull.Value), ("$st", a.Status));
                // Ids only grow (AUTOINCREMENT) and rows leave only here, oldest first: the newest `keep` have the top ids.
                long pruned = ExecCount("DELETE FROM audit WHERE id <= (SELECT MAX(id) FROM audit) - $k", ("$k", keep));
                if (pruned > 0)
                    Exec("INSERT INTO meta(key, value) VALUES('audit_pruned', $n) ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + $n AS TEXT)",
                        ("$n", pruned));
                Exec("COMMIT");
                return pruned;
            }
            catch
            {
                Exec("ROLLBACK");
                throw;
            }
        }
    }

    /// <summary>How many audit records the database holds now.</summary>
    public long AuditCount
    {
        get
        {
            lock (_gate)
            {
                using var cmd = _db.CreateCommand();
                cmd.CommandText = "SELECT count(*) FROM audit";
                try { return Convert.ToInt64(cmd.ExecuteScalar()); }
                catch (Microsoft.Data.Sqlite.SqliteException) { return 0; } // no audit table yet
            }
        }
    }

    /// <summary>How many audit records were dropped to keep the log bounded, since the database was made.</summary>
    public long AuditPruned => long.TryParse(Scalar("SELECT value FROM meta WHERE key='audit_pruned'"), out long n) ? n : 0;

    /// <summary>The newest <paramref name="limit"/> records at or after <paramref name="since"/>, oldest first, with their ids.</summary>
    public List<(long Id, AuditRecord Record)> Audit(DateTimeOffset? since, int limit)
    {
        lock (_gate)
        {
            EnsureAuditTable();
            var rows = Rows($"""
                SELECT * FROM (SELECT id, at_ms, uid, user, pid, subject, method, path, summary, status FROM audit
                               WHERE at_ms >= {since?.ToUnixTimeMilliseconds() ?? long.MinValue} ORDER BY id DESC LIMIT {limit})
                ORDER BY id
                """, r => (r.GetInt64(0), new AuditRecord(
                    DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1)),
                    r.IsDBNull(2) ? null : (uint)r.GetInt64(2), r.IsDBNull(3) ? null : r.GetString(3),
                    r.IsDBNull(4) ? null : r.GetInt32(4), r.IsDBNull(5) ? null : r.GetString(5),
                    r.GetString(6), r.GetString(7), r.IsDBNull(8) ? null : r.GetString(8), r.GetInt32(9))));
            return rows;
        }
    }

    private long ExecCount(string sql, params (string Name, object Value)[] args)
    {
        lock (_gate)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = sql;
            foreach (var (n, v) in args) cmd.Parameters.AddWithValue(n, v);
            return cmd.ExecuteNonQuery();
        }
    }
}
