using System.Net.Sockets;
using System.Text.Json.Nodes;
using VSwitchd.Runtime;

namespace VSwitchd.Docker;

/// <summary>
/// What libnetwork does not tell a remote driver: the container behind an endpoint (its name, id and labels) and the
/// Docker network's name. They are read from dockerd's own API (<c>--docker-host</c>) once Join has answered:
/// <c>GET /networks/ID</c> lists the network's containers with their endpoint ids, <c>GET /containers/ID/json</c>
/// has the labels. Asked again at a short interval until the endpoint shows there (Docker records it after Join
/// returns), for at most <see cref="Patience"/>; a Docker that cannot be reached leaves the endpoint named by its id.
/// </summary>
public sealed class DockerNames : IDisposable
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private readonly HttpClient _http;
    private readonly Attachments _atts;
    private readonly StateStore _store;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();

    public DockerNames(string dockerSocket, Attachments atts, StateStore store, ILogger log)
    {
        Socket = dockerSocket;
        _atts = atts;
        _store = store;
        _log = log;
        _http = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try { await s.ConnectAsync(new UnixDomainSocketEndPoint(dockerSocket), ct); }
                catch { s.Dispose(); throw; }
                return new NetworkStream(s, ownsSocket: true);
            },
        }) { BaseAddress = new Uri("http://docker"), Timeout = TimeSpan.FromSeconds(5) };
    }

    public string Socket { get; }

    /// <summary>The Docker network's name, for vsctl's views.</summary>
    public void LearnNetwork(string networkId) => _ = Task.Run(() => Poll(networkId, null));

    /// <summary>The container behind an endpoint that just joined.</summary>
    public void LearnEndpoint(string networkId, string endpointId) => _ = Task.Run(() => Poll(networkId, endpointId));

    /// <summary>At start: endpoints restored from the state database that were never named (Docker was unreachable then).</summary>
    public void LearnUnnamed()
    {
        var nets = _store.DockerNetworks();
        foreach (var a in _atts.List().Where(a => a.Runtime == DockerNetworkDriver.Runtime && a.RuntimeContainerId is null && a.Netns.Length > 0))
            if (nets.FirstOrDefault(n => n.Network == a.Network) is { } n) LearnEndpoint(n.Id, a.ContainerId);
        foreach (var n in nets.Where(n => n.DockerName is null)) LearnNetwork(n.Id);
    }

    private async Task Poll(string networkId, string? endpointId)
    {
        var deadline = DateTime.UtcNow + Patience;
        var delay = TimeSpan.FromMilliseconds(100);
        string? lastError = null;
        while (!_stop.IsCancellationRequested && DateTime.UtcNow < deadline)
        {
            try
            {
                if (await Get("/networks/" + networkId) is JsonObject net)
                {
                    if (net["Name"]?.ToString() is { Length: > 0 } networkName) RecordNetworkName(networkId, networkName);
                    if (endpointId is null) return;
                    if (_atts.ByEndpoint(DockerNetworkDriver.Runtime, endpointId) is null) return; // deleted meanwhile
                    if (net["Containers"] is JsonObject containers)
                        foreach (var (cid, c) in containers)
                            if (c?["EndpointID"]?.ToString() == endpointId)
                            {
                                // While Docker is still starting the container, its entry is keyed "ep-ENDPOINT" (no
                                // container id yet) but carries the name, which /containers/NAME/json accepts too.
                                string name = c["Name"]?.ToString() is { Length: > 0 } n ? n : cid;
                                if (await Get("/containers/" + Uri.EscapeDataString(cid.StartsWith("ep-", StringComparison.Ordinal) ? name : cid) + "/json") is not JsonObject ctr
                                    || ctr["Id"]?.ToString() is not { Length: > 0 } id)
                                    break; // not there yet: ask again
                                var labels = new Dictionary<string, string>(StringComparer.Ordinal);
                                if (ctr["Config"]?["Labels"] is JsonObject l)
                                    foreach (var (k, v) in l) labels[k] = v?.ToString() ?? "";
                                _atts.SetRuntimeIdentity(DockerNetworkDriver.Runtime, endpointId, ctr["Name"]?.ToString() ?? name, id, labels);
                                return;
                            }
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException or System.Text.Json.JsonException)
            {
                lastError = e.Message;
            }
            try { await Task.Delay(delay, _stop.Token); }
            catch (OperationCanceledException) { return; }
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 2000));
        }
        if (!_stop.IsCancellationRequested)
            _log.LogWarning("Docker API at {Socket}: {What} not learned within {Seconds} s{Why}", Socket,
                endpointId is null ? $"the name of network {DockerNetworkDriver.Short(networkId)}" : $"the container of endpoint {DockerNetworkDriver.Short(endpointId)}",
                Patience.TotalSeconds, lastError is null ? "" : $" ({lastError})");
    }

    private void RecordNetworkName(string networkId, string name)
    {
        if (_store.DockerNetworks().FirstOrDefault(n => n.Id == networkId) is { } n && n.DockerName != name)
            _store.SaveDockerNetwork(n with { DockerName = name });
    }

    private async Task<JsonNode?> Get(string path)
    {
        using var r = await _http.GetAsync(path, _stop.Token);
        if (!r.IsSuccessStatusCode) return null;
        return JsonNode.Parse(await r.Content.ReadAsStringAsync(_stop.Token));
    }

    private int _disposed;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return; // the host disposes its services, and the plugin disposes this
        _stop.Cancel();
        _http.Dispose();
        _stop.Dispose();
    }
}
