using System.Text.Json;

namespace VSwitchd.Runtime;

/// <summary>
/// A Docker network served by the remote driver: Docker's id, the vswitch network behind it, whether the driver made
/// that network (and so removes it with the Docker network), and Docker's name for it once learned from Docker's API.
/// </summary>
public sealed record DockerNetwork(string Id, string Network, bool Created, string? Subnet, string? DockerName = null);

/// <summary>An address pool handed to Docker by the IPAM driver (its id is the subnet), with the gateway Docker asked for.</summary>
public sealed record DockerPool(string Pool, string? Gateway);

// The Docker drivers' own state: which Docker network is which vswitch network, and the IPAM driver's pools. The
// addresses themselves are in the ipam table with every other address the switch hands out.
public sealed partial class StateStore
{
    private bool _dockerTables;

    private void EnsureDockerTables()
    {
        if (_dockerTables) return;
        Exec("""
            CREATE TABLE IF NOT EXISTS docker_networks(id TEXT PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS docker_pools(pool TEXT PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL);
            """);
        _dockerTables = true;
    }

    public void SaveDockerNetwork(DockerNetwork n)
    {
        EnsureDockerTables();
        Exec("INSERT OR REPLACE INTO docker_networks(id, seq, body) VALUES($k, (SELECT COALESCE(MAX(seq),0)+1 FROM docker_networks), $b)",
            ("$k", n.Id), ("$b", JsonSerializer.Serialize(n, Json)));
    }

    public void DeleteDockerNetwork(string id)
    {
        EnsureDockerTables();
        Exec("DELETE FROM docker_networks WHERE id=$k", ("$k", id));
    }

    public List<DockerNetwork> DockerNetworks()
    {
        EnsureDockerTables();
        return Bodies<DockerNetwork>("SELECT body FROM docker_networks ORDER BY seq");
    }

    public void SaveDockerPool(DockerPool p)
    {
        EnsureDockerTables();
        Exec("INSERT OR REPLACE INTO docker_pools(pool, seq, body) VALUES($k, (SELECT COALESCE(MAX(seq),0)+1 FROM docker_pools), $b)",
            ("$k", p.Pool), ("$b", JsonSerializer.Serialize(p, Json)));
    }

    public void DeleteDockerPool(string pool)
    {
        EnsureDockerTables();
        Exec("DELETE FROM docker_pools WHERE pool=$k", ("$k", pool));
    }

    public List<DockerPool> DockerPools()
    {
        EnsureDockerTables();
        return Bodies<DockerPool>("SELECT body FROM docker_pools ORDER BY seq");
    }
}
