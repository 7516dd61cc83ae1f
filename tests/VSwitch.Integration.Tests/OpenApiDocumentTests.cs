using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using VSwitch.Api;

namespace VSwitch.Integration.Tests;

/// <summary>
/// The API is documented by the OpenAPI document the daemon serves: every route it maps is there,
/// with a summary, the schema of what it answers, every error status with the error body, and an
/// example of each request body; and the schemas are the contract vsctl and vswitch-cni read and write.
/// </summary>
public class OpenApiDocumentTests
{
    /// <summary>The routes the daemon maps, read from its source (MapGet/MapPost/MapPut/MapDelete under the /v1 group).</summary>
    private static List<(string Method, string Path)> RoutesInSource()
    {
        var routes = new List<(string, string)>();
        foreach (var file in Directory.GetFiles(Path.Combine(Repo.Root, "vswitch/VSwitchd/Api"), "*.cs"))
            foreach (Match m in Regex.Matches(File.ReadAllText(file), @"\bv1\.Map(Get|Post|Put|Delete)\(""([^""]+)"""))
                routes.Add((m.Groups[1].Value.ToLowerInvariant(), "/v1" + m.Groups[2].Value));
        return routes;
    }

    [Fact]
    public void Every_route_is_documented_with_its_responses_errors_and_examples()
    {
        using var d = Vswitchd.Start(null);
        var doc = d.Get("/openapi/v1.json");
        var paths = doc["paths"]!.AsObject();
        var routes = RoutesInSource();
        Assert.True(routes.Count >= 35, $"only {routes.Count} routes found in the source: the scan is broken");
        var schemas = doc["components"]!["schemas"]!.AsObject();
        foreach (var (method, path) in routes)
        {
            var op = paths[path]?[method];
            Assert.True(op is not null, $"{method.ToUpperInvariant()} {path} is not in the OpenAPI document");
            Assert.False(string.IsNullOrEmpty((string?)op!["summary"]), $"{method} {path} has no summary");
            var responses = op["responses"]!.AsObject();
            var success = responses.Where(r => r.Key.StartsWith('2')).ToList();
            Assert.True(success.Count == 1, $"{method} {path}: {success.Count} success responses");
            if (success[0].Key != "204")
                Assert.True(success[0].Value!.ToJsonString().Contains("schema"), $"{method} {path}: its {success[0].Key} answer has no schema");
            foreach (var status in new[] { "400", "500", "503" })
                Assert.True(responses[status]?.ToJsonString().Contains("ApiErrorBody") == true, $"{method} {path}: no {status} with the error body");
            if (op["requestBody"] is { } body)
            {
                // A body that may be left out (POST /v1/threads/rebalance) is "oneOf: [null, $ref]": the $ref inside.
                var schema = body["content"]?["application/json"]?["schema"];
                string? reference = (string?)schema?["$ref"]
                    ?? schema?["oneOf"]?.AsArray().Select(s => (string?)s?["$ref"]).FirstOrDefault(r => r is not null);
                Assert.True(reference is not null, $"{method} {path}: its request body has no schema");
                string name = reference!.Split('/')[^1];
                Assert.True(schemas[name]?["example"] is not null, $"{method} {path}: the request body {name} has no example");
            }
        }
        // Statuses the runtime really gives are documented where they occur.
        Assert.Contains("404", paths["/v1/networks/{name}"]!["get"]!["responses"]!.AsObject().Select(r => r.Key));
        Assert.Contains("409", paths["/v1/networks"]!["post"]!["responses"]!.AsObject().Select(r => r.Key));
    }

    [Fact]
    public void The_documents_schemas_are_the_contract_the_clients_use()
    {
        using var d = Vswitchd.Start(null);
        var schemas = d.Get("/openapi/v1.json")["components"]!["schemas"]!.AsObject();
        var contract = typeof(ApiErrorBody).Assembly.GetTypes().Where(t => t.IsPublic && !t.IsAbstract && t.Namespace == "VSwitch.Api")
            .ToDictionary(t => t.Name);
        int compared = 0;
        foreach (var (name, schema) in schemas)
        {
            Assert.True(contract.TryGetValue(name, out var type), $"schema {name} is not a record of the contract (VSwitch.Api)");
            var info = ApiJson.Default.GetTypeInfo(type!);
            Assert.NotNull(info);
            var documented = schema!["properties"]!.AsObject().Select(p => p.Key).OrderBy(k => k, StringComparer.Ordinal).ToArray();
            var used = info!.Properties.Select(p => p.Name).OrderBy(k => k, StringComparer.Ordinal).ToArray();
            Assert.True(documented.SequenceEqual(used), $"{name}: the document has [{string.Join(", ", documented)}], the clients' contract [{string.Join(", ", used)}]");
            compared++;
        }
        Assert.True(compared >= 30, $"only {compared} schemas compared");
    }
}
