using System.Text.Json.Nodes;
using VSwitchd.Host;
using VSwitchd.Runtime;

namespace VSwitchd.Docker;

/// <summary>Where vswitchd serves Docker's plugin protocol (<c>--docker-plugin PATH</c>) and where dockerd's API is (<c>--docker-host</c>).</summary>
public sealed record DockerPluginOptions(string Socket, string? DockerHost)
{
    public const string DefaultSocket = "/run/docker/plugins/vswitch.sock";

    /// <summary>The driver's name in Docker: the socket file's name without ".sock" (docker network create -d NAME).</summary>
    public string DriverName => Path.GetFileNameWithoutExtension(Socket);
}

/// <summary>
/// Docker's remote driver plugin protocol, served by vswitchd on a Unix socket in /run/docker/plugins (dockerd finds a
/// socket there by its name, without registration): HTTP POSTs of JSON, one path per call (/Plugin.Activate,
/// /NetworkDriver.Join, /IpamDriver.RequestAddress...). A small web server of its own, apart from the management API:
/// dockerd is the only caller, the answers are libnetwork's (PascalCase, errors as <c>{"Err": ...}</c> or, for IPAM,
/// <c>{"Error": ...}</c>, never a 4xx that libnetwork would report as a transport failure), and the API's access
/// control, audit and write gate are not in its way. Its socket is made by each vswitchd that starts (a successor of
/// a hitless restart binds it anew: dockerd opens a connection per call), and removed at stop only if it is still this
/// process's.
/// </summary>
public sealed class DockerPlugin : IHostedService, IDisposable
{
    private const string ContentType = "application/vnd.docker.plugins.v1+json";

    private readonly DockerPluginOptions _options;
    private readonly SwitchRuntime _rt;
    private readonly Attachments _atts;
    private readonly ILogger _log;
    private readonly DockerNames? _names;
    private readonly DockerNetworkDriver _network;
    private readonly DockerIpamDriver _ipam;
    private readonly VSwitchd.Runtime.Handover.WriteGate _writes;
    private WebApplication? _app;
    private (ulong Dev, ulong Ino)? _bound;

    public DockerPlugin(DockerPluginOptions options, SwitchRuntime rt, Attachments atts, VSwitchd.Runtime.Handover.WriteGate writes, ILogger<DockerPlugin> log)
    {
        _writes = writes;
        _options = options;
        _rt = rt;
        _atts = atts;
        _log = log;
        if (options.DockerHost is { } host && rt.Store is { } store) _names = new DockerNames(host, atts, store, log);
        _network = new DockerNetworkDriver(rt, atts, _names, log);
        _ipam = new DockerIpamDriver(rt, atts, log);
    }

    public async Task StartAsync(CancellationToken ct)
    {
        string path = _options.Socket;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        if (File.Exists(path)) File.Delete(path); // a predecessor's (it stops listening on it) or a crashed one's
        int fd = ApiSocket.Listen(path);
        _bound = Attachments.NetnsIdentity(path);
        var builder = WebApplication.CreateSlimBuilder(VSwitchd.Host.WebHostOptions.Isolated());
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.ListenHandle((ulong)fd));
        var app = builder.Build();
        app.MapPost("/{call}", Handle);
        await app.StartAsync(ct);
        _app = app;
        _names?.LearnUnnamed();
        _log.LogInformation("Docker network and IPAM driver '{Driver}' on {Socket}{Docker}", _options.DriverName, path,
            _names is null ? " (no --docker-host: endpoints are named by their id)" : $", container names from Docker's API at {_names.Socket}");
    }

    private async Task Handle(HttpContext ctx, string call)
    {
        JsonNode body;
        try
        {
            using var reader = new StreamReader(ctx.Request.Body);
            string text = await reader.ReadToEndAsync(ctx.RequestAborted);
            body = string.IsNullOrWhiteSpace(text) || text.Trim() == "null" ? new JsonObject() : JsonNode.Parse(text) ?? new JsonObject();
        }
        catch (System.Text.Json.JsonException e)
        {
            await Answer(ctx, call, Error(call, $"{call}: the body is not JSON ({e.Message})"));
            return;
        }
        JsonObject answer;
        // A change while a hitless restart hands over would land after the successor read the state database: it is
        // refused as the API's writes are, and Docker reports it (docker run fails; run it again).
        bool changes = !ReadOnlyCalls.Contains(call);
        if (changes && !_writes.TryEnter())
        {
            await Answer(ctx, call, Error(call, "vswitchd is handing over to a new vswitchd (vsctl restart): try again in a moment"));
            return;
        }
        try { answer = Dispatch(call, body); }
        catch (SwitchRuntimeException e)
        {
            _log.LogWarning("Docker {Call} refused: {Error}", call, e.Message);
            answer = Error(call, e.Message);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Nothing Docker sends may take the daemon down: an unexpected failure is this call's error.
            _log.LogError(e, "Docker {Call} failed", call);
            answer = Error(call, $"{call}: {e.Message}");
        }
        finally
        {
            if (changes) _writes.Exit();
        }
        await Answer(ctx, call, answer);
    }

    private static readonly HashSet<string> ReadOnlyCalls =
    [
        "Plugin.Activate", "NetworkDriver.GetCapabilities", "NetworkDriver.EndpointOperInfo", "IpamDriver.GetCapabilities", "IpamDriver.GetDefaultAddressSpaces",
    ];

    private JsonObject Dispatch(string call, JsonNode body) => call switch
    {
        "Plugin.Activate" => new JsonObject { ["Implements"] = new JsonArray("NetworkDriver", "IpamDriver") },
        "NetworkDriver.GetCapabilities" => new JsonObject { ["Scope"] = "local", ["ConnectivityScope"] = "local" },
        "NetworkDriver.CreateNetwork" => _network.CreateNetwork(body),
        "NetworkDriver.DeleteNetwork" => _network.DeleteNetwork(body),
        "NetworkDriver.CreateEndpoint" => _network.CreateEndpoint(body),
        "NetworkDriver.DeleteEndpoint" => _network.DeleteEndpoint(body),
        "NetworkDriver.EndpointOperInfo" => _network.EndpointOperInfo(body),
        "NetworkDriver.Join" => _network.Join(body),
        "NetworkDriver.Leave" => _network.Leave(body),
        // Published ports (-p) and swarm's network allocation and discovery are not the switch's business here.
        "NetworkDriver.ProgramExternalConnectivity" or "NetworkDriver.RevokeExternalConnectivity"
            or "NetworkDriver.DiscoverNew" or "NetworkDriver.DiscoverDelete"
            or "NetworkDriver.AllocateNetwork" or "NetworkDriver.FreeNetwork" => [],
        "IpamDriver.GetCapabilities" => DockerIpamDriver.Capabilities(),
        "IpamDriver.GetDefaultAddressSpaces" => DockerIpamDriver.AddressSpaces(),
        "IpamDriver.RequestPool" => _ipam.RequestPool(body),
        "IpamDriver.ReleasePool" => _ipam.ReleasePool(body),
        "IpamDriver.RequestAddress" => _ipam.RequestAddress(body),
        "IpamDriver.ReleaseAddress" => _ipam.ReleaseAddress(body),
        _ => throw new NotFoundException($"'{call}' is not a call of Docker's network or IPAM driver protocol"),
    };

    /// <summary>libnetwork's error: "Err" for the network driver and the plugin's own calls, "Error" for IPAM.</summary>
    private static JsonObject Error(string call, string message) =>
        call.StartsWith("IpamDriver.", StringComparison.Ordinal) ? new JsonObject { ["Error"] = message } : new JsonObject { ["Err"] = message };

    private static async Task Answer(HttpContext ctx, string call, JsonObject answer)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = ContentType;
        await ctx.Response.WriteAsync(answer.ToJsonString(), ctx.RequestAborted);
    }

    public async Task StopAsync(CancellationToken ct)
    {
        if (_app is not null) await _app.StopAsync(ct);
        // A successor may have bound the path already: only our own socket file goes.
        if (_bound is { } ours && Attachments.NetnsIdentity(_options.Socket) == ours)
            try { File.Delete(_options.Socket); } catch (IOException) { }
    }

    private int _disposed;

    public void Dispose()
    {
        // Registered as a singleton and as a hosted service: the container may dispose it twice.
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _names?.Dispose();
        (_app as IDisposable)?.Dispose();
    }
}
