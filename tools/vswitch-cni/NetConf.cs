using System.Text.Json;
using System.Text.Json.Nodes;

namespace VSwitch.Cni;

/// <summary>
/// The network configuration a runtime gives on stdin (one plugin of a conflist, with
/// <c>name</c> and <c>cniVersion</c> filled in):
/// <code>
/// {"cniVersion": "1.0.0", "name": "vsnet", "type": "vswitch-cni",
///  "network": "blue", "socket": "/run/vswitch/vswitchd.sock", "mtu": 1450, "dns": {...}}
/// </code>
/// <c>network</c> is vswitchd's network (default: <c>name</c>). <c>runtimeConfig.ips</c> and
/// <c>runtimeConfig.mac</c> (capabilities "ips" and "mac") ask for a static address or MAC.
/// </summary>
public sealed class NetConf
{
    public static readonly string[] SupportedVersions = ["1.0.0", "1.1.0"];
    public const string DefaultSocket = "/run/vswitch/vswitchd.sock";

    public required string CniVersion { get; init; }
    public required string Name { get; init; }
    public required string Network { get; init; }
    public required string Socket { get; init; }
    public int? Mtu { get; init; }
    public JsonNode? Dns { get; init; }
    public JsonNode? PrevResult { get; init; }
    public string? Ip { get; init; }
    public string? Mac { get; init; }
    /// <summary>"portSecurity": false turns port security off for this network's containers (default on, as vswitchd's attachments).</summary>
    public bool? PortSecurity { get; init; }
    /// <summary>
    /// Labels for services and policy, from <c>args.cni.labels</c> (the CNI conventions' list of
    /// <c>{"key": ..., "value": ...}</c>, as runtimes pass them) and a plain map in <c>labels</c>.
    /// </summary>
    public Dictionary<string, string>? Labels { get; init; }
    public JsonObject Raw { get; init; } = [];

    // A key given twice ({"name": "a", "name": "b"}) is invalid JSON here: JsonObject would throw an
    // ArgumentException on first use instead (found by fuzzing).
    private static readonly JsonDocumentOptions Options = new()
    {
        AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip, AllowDuplicateProperties = false,
    };

    /// <summary>Reads and checks the configuration; a bad one throws code 7 (or 1 for a version this plugin does not speak).</summary>
    public static NetConf Parse(string text)
    {
        if (string.IsNullOrWhiteSpace(text))
            throw new CniException(CniException.InvalidConfig, "no network configuration on stdin");
        JsonObject o;
        try
        {
            o = JsonNode.Parse(text, documentOptions: Options) as JsonObject
                ?? throw new CniException(CniException.InvalidConfig, "network configuration: not a JSON object");
        }
        catch (JsonException e)
        {
            throw new CniException(CniException.InvalidConfig, "network configuration: invalid JSON", e.Message);
        }
        string version = Str(o, "cniVersion") ?? throw new CniException(CniException.InvalidConfig, "network configuration: cniVersion is missing");
        if (!SupportedVersions.Contains(version))
            throw new CniException(CniException.IncompatibleVersion, $"cniVersion {version} is not supported",
                "supported versions: " + string.Join(", ", SupportedVersions));
        string name = Str(o, "name") is { Length: > 0 } n ? n : throw new CniException(CniException.InvalidConfig, "network configuration: name is missing");
        string type = Str(o, "type") ?? throw new CniException(CniException.InvalidConfig, "network configuration: type is missing (it must be \"vswitch-cni\")");
        if (type != "vswitch-cni") throw new CniException(CniException.InvalidConfig, $"network configuration: type is '{type}', not 'vswitch-cni'");
        string network = Str(o, "network") is { Length: > 0 } net ? net : name;
        string socket = Str(o, "socket") is { Length: > 0 } s ? s : DefaultSocket;
        int? mtu = null;
        if (o["mtu"] is JsonNode m)
        {
            if (m.GetValueKind() != JsonValueKind.Number || !m.AsValue().TryGetValue(out int v) || v is < 68 or > 9000)
                throw new CniException(CniException.InvalidConfig, $"network configuration: mtu {m.ToJsonString()} must be a number 68..9000");
            mtu = v;
        }
        if (o["ipam"] is JsonObject ipam && ipam.Count > 0)
            throw new CniException(CniException.UnsupportedField, "network configuration: ipam is not supported",
                "vswitch-cni takes addresses from vswitchd's IPAM (the network's subnet); remove the ipam section");

        bool? portSecurity = null;
        if (o["portSecurity"] is JsonNode ps)
        {
            if (ps.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False))
                throw new CniException(CniException.InvalidConfig, $"network configuration: portSecurity {ps.ToJsonString()} must be true or false");
            portSecurity = ps.GetValue<bool>();
        }
        var labels = ReadLabels(o);
        string? ip = null, mac = null;
        if (o["runtimeConfig"] is JsonObject rc)
        {
            if (rc["ips"] is JsonArray ips && ips.Count > 0)
            {
                if (ips.Count > 1) throw new CniException(CniException.UnsupportedField, "runtimeConfig.ips: one IPv4 address is supported");
                ip = ips[0]?.GetValueKind() == JsonValueKind.String ? (string?)ips[0] : throw new CniException(CniException.InvalidConfig, "runtimeConfig.ips: not a string");
            }
            if (rc["mac"] is JsonNode mm) mac = mm.GetValueKind() == JsonValueKind.String ? (string?)mm : throw new CniException(CniException.InvalidConfig, "runtimeConfig.mac: not a string");
        }
        return new NetConf
        {
            CniVersion = version, Name = name, Network = network, Socket = socket, Mtu = mtu,
            Dns = o["dns"]?.DeepClone(), PrevResult = o["prevResult"]?.DeepClone(), Ip = ip, Mac = mac, PortSecurity = portSecurity, Labels = labels, Raw = o,
        };
    }

    private static Dictionary<string, string>? ReadLabels(JsonObject o)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (o["labels"] is JsonNode plain)
        {
            if (plain is not JsonObject map) throw new CniException(CniException.InvalidConfig, "network configuration: labels must be an object of strings");
            foreach (var (k, v) in map)
                labels[k] = v?.GetValueKind() == JsonValueKind.String ? (string)v! : throw new CniException(CniException.InvalidConfig, $"network configuration: labels.{k} must be a string");
        }
        if (o["args"] is JsonObject args && args["cni"] is JsonObject cni && cni["labels"] is JsonNode list)
        {
            if (list is not JsonArray arr) throw new CniException(CniException.InvalidConfig, "args.cni.labels must be a list of {\"key\", \"value\"}");
            foreach (var item in arr)
            {
                if (item is not JsonObject kv || kv["key"]?.GetValueKind() != JsonValueKind.String || kv["value"]?.GetValueKind() != JsonValueKind.String)
                    throw new CniException(CniException.InvalidConfig, $"args.cni.labels: {item?.ToJsonString() ?? "null"} is not {{\"key\": \"...\", \"value\": \"...\"}}");
                labels[(string)kv["key"]!] = (string)kv["value"]!;
            }
        }
        if (labels.Count == 0) return null;
        if (VSwitch.Api.Labels.WhyNot(labels) is { } why) throw new CniException(CniException.InvalidConfig, "network configuration: " + why);
        return labels;
    }

    /// <summary>The version named on stdin, when it can be read at all (for VERSION and for error replies).</summary>
    public static string? PeekVersion(string text)
    {
        try { return JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }) is JsonObject o ? Str(o, "cniVersion") : null; }
        catch (Exception e) when (e is JsonException or CniException) { return null; }
    }

    private static string? Str(JsonObject o, string key)
    {
        if (o[key] is not JsonNode v) return null;
        if (v.GetValueKind() != JsonValueKind.String) throw new CniException(CniException.InvalidConfig, $"network configuration: {key} must be a string");
        return (string?)v;
    }
}
