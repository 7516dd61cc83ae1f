using System.Text.Json;
using VSwitchd.Services;

namespace VSwitchd.Runtime;

// Services (load-balanced virtual IPs) with their static backends, drains and health-check settings,
// one JSON body a service: a change rewrites its row, committed before the API answers.
public sealed partial class StateStore
{
    private bool _serviceTable;

    private void EnsureServiceTable()
    {
        if (_serviceTable) return;
        Exec("CREATE TABLE IF NOT EXISTS services(name TEXT PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL)");
        _serviceTable = true;
    }

    public void SaveService(ServiceConfig s)
    {
        EnsureServiceTable();
        // The row keeps its place (seq) when it is rewritten, so `service ls` keeps the order services were made in.
        Exec("INSERT INTO services(name, seq, body) VALUES($k, (SELECT COALESCE(MAX(seq),0)+1 FROM services), $b) ON CONFLICT(name) DO UPDATE SET body=excluded.body",
            ("$k", s.Name), ("$b", JsonSerializer.Serialize(s, Json)));
    }

    public void DeleteService(string name)
    {
        EnsureServiceTable();
        Exec("DELETE FROM services WHERE name=$k", ("$k", name));
    }

    public List<ServiceConfig> Services()
    {
        EnsureServiceTable();
        return Bodies<ServiceConfig>("SELECT body FROM services ORDER BY seq");
    }
}
