using System.Text.Json;
using VSwitch.Api;

namespace VSwitchd.Runtime;

public sealed partial class StateStore
{
    private bool _publishTable;

    private void EnsurePublishTable()
    {
        if (_publishTable) return;
        Exec("CREATE TABLE IF NOT EXISTS publishes(id TEXT PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL)");
        _publishTable = true;
    }

    public void SavePublish(string id, PublishRequest p)
    {
        EnsurePublishTable();
        Exec("INSERT OR REPLACE INTO publishes(id, seq, body) VALUES($k, (SELECT COALESCE(MAX(seq),0)+1 FROM publishes), $b)", ("$k", id), ("$b", JsonSerializer.Serialize(p, Json)));
    }

    public void DeletePublish(string id)
    {
        EnsurePublishTable();
        Exec("DELETE FROM publishes WHERE id=$k", ("$k", id));
    }

    public List<PublishRequest> Publishes()
    {
        EnsurePublishTable();
        return Bodies<PublishRequest>("SELECT body FROM publishes ORDER BY seq");
    }
}
