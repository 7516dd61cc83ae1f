using System.Text.Json;
using System.Text.Json.Nodes;

namespace VSwitchd.Config;

/// <summary>
/// What a config file would change in the configuration the state database holds: networks and
/// ports only in one of them, fields that differ, the overlay. Said at start when the database
/// wins, so a file that was edited is never ignored without a word.
/// </summary>
public static class ConfigDiff
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static List<string> Between(VSwitchConfig file, IReadOnlyList<NetworkConfig> storedNetworks, IReadOnlyList<PortConfig> storedPorts, OverlayConfig? storedOverlay)
    {
        var diff = new List<string>();
        Compare(diff, "network", file.Networks, n => n.Name ?? "", storedNetworks);
        Compare(diff, "port", file.Ports, p => p.Name ?? "", storedPorts);
        var a = Node(file.Overlay);
        var b = Node(storedOverlay);
        if (!JsonNode.DeepEquals(a, b))
            diff.Add(file.Overlay is null ? "overlay: only in the database"
                : storedOverlay is null ? "overlay: only in the file"
                : "overlay: " + string.Join(", ", Fields(a!.AsObject(), b!.AsObject())));
        return diff;
    }

    private static void Compare<T>(List<string> diff, string kind, IEnumerable<T> file, Func<T, string> name, IEnumerable<T> stored)
    {
        var inFile = file.ToDictionary(name);
        var inStore = stored.ToDictionary(name);
        foreach (var (n, f) in inFile)
        {
            if (!inStore.TryGetValue(n, out var s)) { diff.Add($"{kind} '{n}': only in the file"); continue; }
            var fields = Fields(Node(f)!.AsObject(), Node(s)!.AsObject());
            if (fields.Count > 0) diff.Add($"{kind} '{n}': {string.Join(", ", fields)}");
        }
        foreach (var n in inStore.Keys.Where(n => !inFile.ContainsKey(n))) diff.Add($"{kind} '{n}': only in the database");
    }

    /// <summary>"field: FILE in the file, STORED stored" for each field that differs.</summary>
    private static List<string> Fields(JsonObject file, JsonObject stored) =>
        file.Select(kv => kv.Key).Union(stored.Select(kv => kv.Key))
            .Where(k => !JsonNode.DeepEquals(file[k], stored[k]))
            .Select(k => $"{k} {Show(file[k])} in the file, {Show(stored[k])} stored")
            .ToList();

    private static string Show(JsonNode? n) => n is null ? "unset" : n.ToJsonString();

    private static JsonNode? Node<T>(T value) => value is null ? null : JsonSerializer.SerializeToNode(value, Json);
}
