using System.Text.Json;
using Microsoft.Data.Sqlite;
using VSwitchd.Config;

namespace VSwitchd.Runtime;

/// <summary>
/// What the operator configured, kept across restarts: networks, ports and rules, in SQLite.
/// Every change is one statement committed (WAL, synchronous=FULL) before the API answers, so an
/// acknowledged change survives a SIGKILL. Learned state (MAC table, flow cache) is not stored.
/// </summary>
public sealed partial class StateStore : IDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly SqliteConnection _db;
    private readonly object _gate = new();

    public StateStore(string path)
    {
        Path = path;
        string? dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        _db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        _db.Open();
        Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
        Exec("""
            CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS networks(name TEXT PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS ports(name TEXT PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS routes(prefix TEXT NOT NULL, via TEXT NOT NULL, dev TEXT NOT NULL, seq INTEGER NOT NULL,
                                              PRIMARY KEY(prefix, via, dev));
            CREATE TABLE IF NOT EXISTS neighbors(network TEXT NOT NULL, ip TEXT NOT NULL, mac TEXT NOT NULL, PRIMARY KEY(network, ip));
            CREATE TABLE IF NOT EXISTS network_connections(a TEXT NOT NULL, b TEXT NOT NULL, PRIMARY KEY(a, b));
            CREATE TABLE IF NOT EXISTS remote_macs(network TEXT NOT NULL, mac TEXT NOT NULL, vtep TEXT NOT NULL, PRIMARY KEY(network, mac));
            CREATE TABLE IF NOT EXISTS mirrors(name TEXT PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS rules(priority INTEGER NOT NULL, match TEXT NOT NULL, seq INTEGER NOT NULL, text TEXT NOT NULL,
                                             PRIMARY KEY(priority, match));
            """);
    }

    public string Path { get; }

    /// <summary>True once the store holds a configuration (the config file only seeds an empty store).</summary>
    public bool IsSeeded => Scalar("SELECT value FROM meta WHERE key='seeded'") == "1";

    /// <summary>Replaces the stored networks, ports and overlay in one transaction (--config-wins).</summary>
    public void ReplaceConfiguration(IEnumerable<NetworkConfig> networks, IEnumerable<PortConfig> ports, string? overlayJson)
    {
        lock (_gate)
        {
            // BEGIN/COMMIT as statements, as DeleteAttachment does: the Save* helpers run their own commands.
            Exec("BEGIN");
            try
            {
                Exec("DELETE FROM networks; DELETE FROM ports; DELETE FROM meta WHERE key='overlay'");
                foreach (var n in networks) SaveNetwork(n);
                foreach (var p in ports) SavePort(p);
                if (overlayJson is not null) Exec("INSERT OR REPLACE INTO meta(key, value) VALUES('overlay', $v)", ("$v", overlayJson));
                Exec("COMMIT");
            }
            catch
            {
                Exec("ROLLBACK");
                throw;
            }
        }
    }

    public void MarkSeeded() => Exec("INSERT OR REPLACE INTO meta(key, value) VALUES('seeded', '1')");

    public void SaveNetwork(NetworkConfig n) =>
        Exec("INSERT OR REPLACE INTO networks(name, seq, body) VALUES($k, (SELECT COALESCE(MAX(seq),0)+1 FROM networks), $b)", ("$k", n.Name), ("$b", JsonSerializer.Serialize(n, Json)));

    public void DeleteNetwork(string name) => Exec("DELETE FROM networks WHERE name=$k", ("$k", name));

    public void SavePort(PortConfig p) =>
        Exec("INSERT OR REPLACE INTO ports(name, seq, body) VALUES($k, (SELECT COALESCE(MAX(seq),0)+1 FROM ports), $b)", ("$k", p.Name), ("$b", JsonSerializer.Serialize(p, Json)));

    public void SaveMirror(string name, string body) =>
        Exec("INSERT OR REPLACE INTO mirrors(name, seq, body) VALUES($k, (SELECT COALESCE(MAX(seq),0)+1 FROM mirrors), $b)", ("$k", name), ("$b", body));

    public void DeleteMirror(string name) => Exec("DELETE FROM mirrors WHERE name=$k", ("$k", name));

    /// <summary>The stored mirrors' bodies (MirrorRequest as JSON), in the order they were made.</summary>
    public List<string> Mirrors() => Rows("SELECT body FROM mirrors ORDER BY seq", r => r.GetString(0));

    public void DeletePort(string name) => Exec("DELETE FROM ports WHERE name=$k", ("$k", name));

    public void SaveRule(int priority, string match, string text) =>
        Exec("INSERT OR REPLACE INTO rules(priority, match, seq, text) VALUES($p, $m, (SELECT COALESCE(MAX(seq),0)+1 FROM rules), $t)",
            ("$p", priority), ("$m", match), ("$t", text));

    public void DeleteRule(int priority, string match) => Exec("DELETE FROM rules WHERE priority=$p AND match=$m", ("$p", priority), ("$m", match));

    public void SaveRoute(string prefix, string? via, string? dev) =>
        Exec("INSERT OR REPLACE INTO routes(prefix, via, dev, seq) VALUES($p, $v, $d, (SELECT COALESCE(MAX(seq),0)+1 FROM routes))",
            ("$p", prefix), ("$v", via ?? ""), ("$d", dev ?? ""));

    public void DeleteRoute(string prefix, string? via, string? dev) =>
        Exec("DELETE FROM routes WHERE prefix=$p AND ($v='' OR via=$v) AND ($d='' OR dev=$d)", ("$p", prefix), ("$v", via ?? ""), ("$d", dev ?? ""));

    // A connection is symmetric: stored once, its two names in order.
    public void SaveConnection(string a, string b) =>
        Exec("INSERT OR REPLACE INTO network_connections(a, b) VALUES($a, $b)", ("$a", Min(a, b)), ("$b", Max(a, b)));

    public void DeleteConnection(string a, string b) =>
        Exec("DELETE FROM network_connections WHERE a=$a AND b=$b", ("$a", Min(a, b)), ("$b", Max(a, b)));

    public void DeleteConnections(string network) => Exec("DELETE FROM network_connections WHERE a=$n OR b=$n", ("$n", network));

    public List<(string A, string B)> Connections() =>
        Rows("SELECT a, b FROM network_connections ORDER BY a, b", r => (r.GetString(0), r.GetString(1)));

    private static string Min(string a, string b) => string.CompareOrdinal(a, b) <= 0 ? a : b;
    private static string Max(string a, string b) => string.CompareOrdinal(a, b) <= 0 ? b : a;

    public void SaveNeighbor(string network, string ip, string mac) =>
        Exec("INSERT OR REPLACE INTO neighbors(network, ip, mac) VALUES($n, $i, $m)", ("$n", network), ("$i", ip), ("$m", mac));

    public void DeleteNeighbor(string network, string ip) => Exec("DELETE FROM neighbors WHERE network=$n AND ip=$i", ("$n", network), ("$i", ip));

    public void SaveRemoteMac(string network, string mac, string vtep) =>
        Exec("INSERT OR REPLACE INTO remote_macs(network, mac, vtep) VALUES($n, $m, $v)", ("$n", network), ("$m", mac), ("$v", vtep));

    public void DeleteRemoteMac(string network, string mac) => Exec("DELETE FROM remote_macs WHERE network=$n AND mac=$m", ("$n", network), ("$m", mac));

    public void DeleteRemoteMacs(string network) => Exec("DELETE FROM remote_macs WHERE network=$n", ("$n", network));

    public List<(string Network, string Mac, string Vtep)> RemoteMacs() =>
        Rows("SELECT network, mac, vtep FROM remote_macs", r => (r.GetString(0), r.GetString(1), r.GetString(2)));

    public List<(string Prefix, string? Via, string? Dev)> Routes() =>
        Rows("SELECT prefix, via, dev FROM routes ORDER BY seq", r => (r.GetString(0), r.GetString(1) is { Length: > 0 } v ? v : null, r.GetString(2) is { Length: > 0 } d ? d : null));

    public List<(string Network, string Ip, string Mac)> StaticNeighbors() =>
        Rows("SELECT network, ip, mac FROM neighbors", r => (r.GetString(0), r.GetString(1), r.GetString(2)));

    private List<T> Rows<T>(string sql, Func<SqliteDataReader, T> read)
    {
        lock (_gate)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = sql;
            using var r = cmd.ExecuteReader();
            var list = new List<T>();
            while (r.Read()) list.Add(read(r));
            return list;
        }
    }

    public List<NetworkConfig> Networks() => Bodies<NetworkConfig>("SELECT body FROM networks ORDER BY seq");
    public List<PortConfig> Ports() => Bodies<PortConfig>("SELECT body FROM ports ORDER BY seq");

    public List<string> Rules()
    {
        lock (_gate)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = "SELECT text FROM rules ORDER BY seq";
            using var r = cmd.ExecuteReader();
            var list = new List<string>();
            while (r.Read()) list.Add(r.GetString(0));
            return list;
        }
    }

    private List<T> Bodies<T>(string sql)
    {
        lock (_gate)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = sql;
            using var r = cmd.ExecuteReader();
            var list = new List<T>();
            while (r.Read()) list.Add(JsonSerializer.Deserialize<T>(r.GetString(0), Json)!);
            return list;
        }
    }

    private string? Scalar(string sql)
    {
        lock (_gate)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = sql;
            return cmd.ExecuteScalar() as string;
        }
    }

    private void Exec(string sql, params (string Name, object Value)[] args)
    {
        lock (_gate)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = sql;
            foreach (var (n, v) in args) cmd.Parameters.AddWithValue(n, v);
            cmd.ExecuteNonQuery();
        }
    }

    public void Dispose() => _db.Dispose();
}
