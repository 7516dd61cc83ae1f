using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace VSwitch.Cni;

/// <summary>vswitchd's management API over its Unix socket. Not reaching it is CNI's "try again later" (11).</summary>
public sealed class Daemon : IDisposable
{
    private readonly HttpClient _http;
    private readonly string _socket;

    public Daemon(string socket)
    {
        _socket = socket;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct);
                    return new NetworkStream(s, ownsSocket: true);
                }
                catch
                {
                    s.Dispose();
                    throw;
                }
            },
        };
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://vswitchd/"), Timeout = TimeSpan.FromSeconds(60) };
    }

    public readonly record struct Reply(HttpStatusCode Status, JsonNode? Body)
    {
        public bool Ok => (int)Status is >= 200 and < 300;
        public string Error => Body is JsonObject o && o["error"] is JsonNode e ? (string?)e ?? "" : $"vswitchd answered {(int)Status}";
    }

    public Reply Get(string path) => Send(HttpMethod.Get, path, null);
    public Reply Delete(string path) => Send(HttpMethod.Delete, path, null);
    public Reply Post(string path, JsonNode body) => Send(HttpMethod.Post, path, body);

    private Reply Send(HttpMethod method, string path, JsonNode? body)
    {
        using var req = new HttpRequestMessage(method, path);
        if (body is not null) req.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        try
        {
            using var resp = _http.Send(req);
            string text = new StreamReader(resp.Content.ReadAsStream()).ReadToEnd();
            JsonNode? node = null;
            if (text.Length > 0)
            {
                try { node = JsonNode.Parse(text); }
                catch (System.Text.Json.JsonException) { node = new JsonObject { ["error"] = text.Trim() }; }
            }
            if (resp.StatusCode == HttpStatusCode.ServiceUnavailable)
                throw new CniException(CniException.TryAgainLater, $"vswitchd at {_socket} is not available", node is null ? null : new Reply(resp.StatusCode, node).Error);
            return new Reply(resp.StatusCode, node);
        }
        catch (HttpRequestException e)
        {
            string why = !File.Exists(_socket) ? "no such socket" : (e.InnerException as SocketException)?.Message ?? e.Message;
            throw new CniException(CniException.TryAgainLater, $"cannot reach vswitchd at {_socket}: {why}", "is vswitchd running? (socket: the network configuration's \"socket\")");
        }
        catch (TaskCanceledException)
        {
            throw new CniException(CniException.TryAgainLater, $"vswitchd at {_socket} did not answer within {_http.Timeout.TotalSeconds:0} s");
        }
    }

    public void Dispose() => _http.Dispose();
}
