using System.Text.Json;
using VSwitch.Api;

namespace VSwitchd.Runtime;

// Network policies, kept as they were given (the request), in the order they were added.
public sealed partial class StateStore
{
    private bool _policyTable;

    private void EnsurePolicyTable()
    {
        if (_policyTable) return;
        Exec("CREATE TABLE IF NOT EXISTS policies(name TEXT PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL);");
        _policyTable = true;
    }

    public void SavePolicy(PolicyRequest p)
    {
        EnsurePolicyTable();
        Exec("INSERT OR REPLACE INTO policies(name, seq, body) VALUES($k, (SELECT COALESCE(MAX(seq),0)+1 FROM policies), $b)",
            ("$k", p.Name), ("$b", JsonSerializer.Serialize(p, Json)));
    }

    public void DeletePolicy(string name)
    {
        EnsurePolicyTable();
        Exec("DELETE FROM policies WHERE name=$k", ("$k", name));
    }

    public List<PolicyRequest> Policies()
    {
        EnsurePolicyTable();
        return Bodies<PolicyRequest>("SELECT body FROM policies ORDER BY seq");
    }
}
