using System.Text.Json;

namespace VSwitchd.Runtime;

// Attachments (containers on networks) and the addresses IPAM handed them, kept across restarts.
// An address row names its attachment; an address whose attachment row is missing (a crash between
// the two writes) is released at start.
public sealed partial class StateStore
{
    private bool _attachmentTables;

    private void EnsureAttachmentTables()
    {
        if (_attachmentTables) return;
        Exec("""
            CREATE TABLE IF NOT EXISTS attachments(id TEXT PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS ipam(network TEXT NOT NULL, address TEXT NOT NULL, attachment TEXT NOT NULL,
                                            PRIMARY KEY(network, address));
            """);
        _attachmentTables = true;
    }

    public void SaveAttachment(Attachment a)
    {
        EnsureAttachmentTables();
        Exec("INSERT OR REPLACE INTO attachments(id, seq, body) VALUES($k, (SELECT COALESCE(MAX(seq),0)+1 FROM attachments), $b)",
            ("$k", a.Id), ("$b", JsonSerializer.Serialize(a, Json)));
    }

    /// <summary>Deletes the attachment and every address it held, in one transaction.</summary>
    public void DeleteAttachment(string id)
    {
        EnsureAttachmentTables();
        Exec("BEGIN; DELETE FROM ipam WHERE attachment=$k; DELETE FROM attachments WHERE id=$k; COMMIT;", ("$k", id));
    }

    public List<Attachment> Attachments()
    {
        EnsureAttachmentTables();
        return Bodies<Attachment>("SELECT body FROM attachments ORDER BY seq");
    }

    /// <summary>Records an address as taken; false when it already is (the primary key refuses it).</summary>
    public bool TryAllocate(string network, string address, string attachment)
    {
        EnsureAttachmentTables();
        lock (_gate)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = "INSERT OR IGNORE INTO ipam(network, address, attachment) VALUES($n, $a, $k)";
            cmd.Parameters.AddWithValue("$n", network);
            cmd.Parameters.AddWithValue("$a", address);
            cmd.Parameters.AddWithValue("$k", attachment);
            return cmd.ExecuteNonQuery() == 1;
        }
    }

    public void Release(string network, string address) =>
        Exec("DELETE FROM ipam WHERE network=$n AND address=$a", ("$n", network), ("$a", address));

    /// <summary>Every stored allocation: (network, address, attachment id).</summary>
    public List<(string Network, string Address, string Attachment)> Allocations()
    {
        EnsureAttachmentTables();
        lock (_gate)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = "SELECT network, address, attachment FROM ipam ORDER BY network, address";
            using var r = cmd.ExecuteReader();
            var list = new List<(string, string, string)>();
            while (r.Read()) list.Add((r.GetString(0), r.GetString(1), r.GetString(2)));
            return list;
        }
    }
}
