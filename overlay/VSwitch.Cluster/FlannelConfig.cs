using System.Text.Json;

namespace VSwitch.Cluster;

/// <summary>
/// The cluster network's configuration, as Flannel keeps it at <c>PREFIX/config</c>:
/// <c>{"Network": "10.244.0.0/16", "SubnetLen": 24, "SubnetMin": ..., "SubnetMax": ..., "Backend": {"Type": "vxlan", "VNI": 1, "Port": 8472}}</c>.
/// Defaults and checks are Flannel's (pkg/subnet/config.go): SubnetLen 24 (or Network's length + 1 when that is
/// 24 or longer), SubnetMin the second subnet (the first is left out, so no host gets the network's own
/// address as its subnet), SubnetMax the last, both on a SubnetLen boundary inside Network; VNI 1, port 8472 (the
/// Linux kernel's VXLAN port, Flannel's default).
/// </summary>
public sealed record FlannelConfig(Ipv4Prefix Network, int SubnetLen, uint SubnetMin, uint SubnetMax, string BackendType, int Vni, int Port)
{
    public const int DefaultPort = 8472;

    /// <summary>Parses and checks the JSON; a bad value is a <see cref="ClusterConfigException"/> that names it.</summary>
    public static FlannelConfig Parse(string json)
    {
        JsonElement root;
        try { root = JsonDocument.Parse(json).RootElement; }
        catch (JsonException e) { throw new ClusterConfigException($"config: not JSON: {e.Message}"); }
        if (root.ValueKind != JsonValueKind.Object) throw new ClusterConfigException("config: not a JSON object");
        string? net = Str(root, "Network") ?? throw new ClusterConfigException("config: Network is missing (e.g. \"Network\": \"10.244.0.0/16\")");
        if (!Ipv4Prefix.TryParse(net, out var network) || network.Length is < 8 or > 28)
            throw new ClusterConfigException($"config: Network '{net}' is not an IPv4 prefix from /8 to /28 with its host bits zero");
        int subnetLen = Int(root, "SubnetLen") ?? (network.Length < 24 ? 24 : network.Length + 1);
        if (subnetLen <= network.Length || subnetLen > 30)
            throw new ClusterConfigException($"config: SubnetLen {subnetLen} must be longer than the Network's /{network.Length} and at most 30");
        uint size = 1u << (32 - subnetLen);
        uint min = network.Address + size, max = network.Address + network.Size - size;
        if (Str(root, "SubnetMin") is { } smin)
        {
            if (!Ipv4Prefix.TryParseAddress(smin, out min) || !network.Contains(min))
                throw new ClusterConfigException($"config: SubnetMin '{smin}' is not an address in {network}");
            if ((min & (size - 1)) != 0) throw new ClusterConfigException($"config: SubnetMin '{smin}' is not on a /{subnetLen} boundary");
        }
        if (Str(root, "SubnetMax") is { } smax)
        {
            if (!Ipv4Prefix.TryParseAddress(smax, out max) || !network.Contains(max))
                throw new ClusterConfigException($"config: SubnetMax '{smax}' is not an address in {network}");
            if ((max & (size - 1)) != 0) throw new ClusterConfigException($"config: SubnetMax '{smax}' is not on a /{subnetLen} boundary");
        }
        if (max < min) throw new ClusterConfigException($"config: SubnetMax {Ipv4Prefix.FormatAddress(max)} is below SubnetMin {Ipv4Prefix.FormatAddress(min)}");
        string type = "vxlan";
        int vni = 1, port = DefaultPort;
        if (root.TryGetProperty("Backend", out var be) && be.ValueKind == JsonValueKind.Object)
        {
            type = Str(be, "Type") ?? "udp"; // Flannel's default backend when Backend names none
            vni = Int(be, "VNI") ?? 1;
            int p = Int(be, "Port") ?? 0;
            port = p == 0 ? DefaultPort : p;
        }
        if (type != "vxlan") throw new ClusterConfigException($"config: Backend.Type '{type}' is not supported: vswitchd speaks Flannel's vxlan backend only");
        if (vni is < 1 or > 0xFFFFFF) throw new ClusterConfigException($"config: Backend.VNI {vni} is not a VNI (1..16777215)");
        if (port is < 1 or > 65535) throw new ClusterConfigException($"config: Backend.Port {port} is not a UDP port");
        return new FlannelConfig(network, subnetLen, min, max, type, vni, port);
    }

    /// <summary>The JSON Flannel writes (and a test or an operator puts at PREFIX/config).</summary>
    public string ToJson() => JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["Network"] = Network.ToString(), ["SubnetLen"] = SubnetLen,
        ["SubnetMin"] = Ipv4Prefix.FormatAddress(SubnetMin), ["SubnetMax"] = Ipv4Prefix.FormatAddress(SubnetMax),
        ["Backend"] = new Dictionary<string, object> { ["Type"] = BackendType, ["VNI"] = Vni, ["Port"] = Port },
    });

    /// <summary>Every subnet a host may lease, lowest first.</summary>
    public IEnumerable<Ipv4Prefix> Subnets()
    {
        uint size = 1u << (32 - SubnetLen);
        for (ulong a = SubnetMin; a <= SubnetMax; a += size) yield return new Ipv4Prefix((uint)a, SubnetLen);
    }

    public bool Holds(Ipv4Prefix subnet) => subnet.Length == SubnetLen && subnet.Address >= SubnetMin && subnet.Address <= SubnetMax;

    private static string? Str(JsonElement o, string name) =>
        o.TryGetProperty(name, out var v) ? v.ValueKind == JsonValueKind.String ? v.GetString()
            : throw new ClusterConfigException($"config: {name} must be a string, not {v}") : null;

    private static int? Int(JsonElement o, string name) =>
        o.TryGetProperty(name, out var v) ? v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i
            : throw new ClusterConfigException($"config: {name} must be a whole number, not {v}") : null;
}

/// <summary>A cluster configuration (etcd's PREFIX/config, a static cluster file, an option) that cannot be used; the message names the value.</summary>
public sealed class ClusterConfigException(string message) : Exception(message);
