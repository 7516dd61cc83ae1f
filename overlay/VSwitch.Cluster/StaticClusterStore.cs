using System.Runtime.CompilerServices;
using System.Text.Json;

namespace VSwitch.Cluster;

/// <summary>
/// A cluster without etcd: a file lists the network and every host, the same on every host, so a two-host lab needs
/// nothing else running. Each host finds itself by its public address.
/// <code>
/// { "network": "10.244.0.0/16", "vni": 1, "port": 8472,
///   "hosts": [ { "subnet": "10.244.1.0/24", "publicIp": "192.168.50.1", "vtepMac": "02:aa:00:00:00:01" }, ... ] }
/// </code>
/// </summary>
public sealed class StaticClusterStore : IClusterStore
{
    private readonly FlannelConfig _config;
    private readonly List<SubnetLease> _hosts = [];

    public StaticClusterStore(string path)
    {
        Path = path;
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new ClusterConfigException($"cluster file '{path}': {e.Message}"); }
        JsonElement root;
        try { root = JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }).RootElement; }
        catch (JsonException e) { throw new ClusterConfigException($"cluster file '{path}': not JSON: {e.Message}"); }
        string? Get(JsonElement o, string name) => o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        int? GetInt(JsonElement o, string name) => o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : null;
        string network = Get(root, "network") ?? throw new ClusterConfigException($"cluster file '{path}': network is missing (e.g. \"network\": \"10.244.0.0/16\")");
        int vni = GetInt(root, "vni") ?? 1, port = GetInt(root, "port") ?? FlannelConfig.DefaultPort;
        if (!root.TryGetProperty("hosts", out var hosts) || hosts.ValueKind != JsonValueKind.Array)
            throw new ClusterConfigException($"cluster file '{path}': hosts is missing (a list of {{subnet, publicIp, vtepMac}})");
        int subnetLen = 0;
        int i = 0;
        foreach (var h in hosts.EnumerateArray())
        {
            string where = $"cluster file '{path}': hosts[{i++}]";
            string? s = Get(h, "subnet"), ip = Get(h, "publicIp"), mac = Get(h, "vtepMac");
            if (!Ipv4Prefix.TryParse(s, out var subnet)) throw new ClusterConfigException($"{where}.subnet: '{s}' is not an IPv4 prefix (10.244.1.0/24)");
            if (!Ipv4Prefix.TryParseAddress(ip, out _)) throw new ClusterConfigException($"{where}.publicIp: '{ip}' is not an IPv4 address");
            if (mac is null || !System.Net.NetworkInformation.PhysicalAddress.TryParse(mac.Replace(':', '-'), out var pa) || pa.GetAddressBytes().Length != 6 || (pa.GetAddressBytes()[0] & 1) != 0)
                throw new ClusterConfigException($"{where}.vtepMac: '{mac}' is not a unicast MAC address");
            if (subnetLen != 0 && subnet.Length != subnetLen) throw new ClusterConfigException($"{where}.subnet: '{s}' is not a /{subnetLen} like the hosts before it");
            subnetLen = subnet.Length;
            if (_hosts.FirstOrDefault(x => x.Subnet == subnet || x.PublicIP == ip) is { } dup)
                throw new ClusterConfigException($"{where}: subnet {s} or public IP {ip} is already host {dup.Subnet} at {dup.PublicIP}");
            _hosts.Add(new SubnetLease(subnet, ip!, "vxlan", vni, mac.ToLowerInvariant()));
        }
        if (_hosts.Count == 0) throw new ClusterConfigException($"cluster file '{path}': hosts is empty");
        string json = JsonSerializer.Serialize(new Dictionary<string, object> { ["Network"] = network, ["SubnetLen"] = subnetLen,
            ["Backend"] = new Dictionary<string, object> { ["Type"] = "vxlan", ["VNI"] = vni, ["Port"] = port } });
        try { _config = FlannelConfig.Parse(json); }
        catch (ClusterConfigException e) { throw new ClusterConfigException($"cluster file '{path}': {e.Message.Replace("config: ", "")}"); }
        foreach (var h in _hosts)
            if (!_config.Network.Contains(h.Subnet)) throw new ClusterConfigException($"cluster file '{path}': subnet {h.Subnet} is not in network {network}");
    }

    public string Path { get; }
    public string Describe => "file " + Path;
    public bool Dynamic => false;

    public Task<FlannelConfig> GetConfigAsync(CancellationToken ct) => Task.FromResult(_config);
    public Task<LeaseListing> ListAsync(CancellationToken ct) => Task.FromResult(new LeaseListing(_hosts, 1));

    /// <summary>A file's hosts are fixed: "writing" this host's lease succeeds only for the entry the file gives it.</summary>
    public Task<SubnetLease?> TryWriteAsync(SubnetLease lease, TimeSpan ttl, long takeBackRevision, CancellationToken ct) =>
        Task.FromResult(_hosts.FirstOrDefault(h => h.Subnet == lease.Subnet && h.PublicIP == lease.PublicIP));

    public Task<TimeSpan?> KeepAliveAsync(long etcdLease, CancellationToken ct) => Task.FromResult<TimeSpan?>(TimeSpan.MaxValue);
    public Task<TimeSpan?> TimeToLiveAsync(long etcdLease, CancellationToken ct) => Task.FromResult<TimeSpan?>(null);
    public Task RevokeAsync(long etcdLease, CancellationToken ct) => Task.CompletedTask;

    public async IAsyncEnumerable<IReadOnlyList<LeaseEvent>> WatchAsync(long fromRevision, [EnumeratorCancellation] CancellationToken ct)
    {
        await Task.Delay(Timeout.Infinite, ct); // nothing ever changes
        yield break;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
