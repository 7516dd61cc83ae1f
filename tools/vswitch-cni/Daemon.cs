using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using VSwitch.Api;

namespace VSwitch.Cni;

/// <summary>
/// vswitchd's management API over its Unix socket, spoken with the API contract's records (VSwitch.Api).
/// Not reaching it, or a daemon that is stopping (503), is CNI's "try again later" (11).
/// </summary>
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

    /// <summary>What vswitchd answered: its status and body; <see cref="Error"/> is its message when it refused.</summary>
    public readonly record struct Reply(HttpStatusCode Status, string Body)
    {
        public bool Ok => (int)Status is >= 200 and < 300;

        /// <summary>The daemon's <see cref="ApiErrorBody"/> message, the body as it came when it is not one, or the status.</summary>
        public string Error
        {
            get
            {
                if (Body.Length == 0) return $"vswitchd answered {(int)Status}";
                try { return JsonSerializer.Deserialize(Body, ApiJson.Default.ApiErrorBody)?.Error ?? $"vswitchd answered {(int)Status}"; }
                catch (JsonException) { return Body.Trim(); } // not JSON: say what came
            }
        }

        /// <summary>The answer as a record of the contract; a body that is not one is a decoding failure (CNI code 6).</summary>
        public T Read<T>(JsonTypeInfo<T> type)
        {
            try
            {
                return JsonSerializer.Deserialize(Body, type)
                    ?? throw new CniException(CniException.DecodeFailure, $"vswitchd sent an empty answer ({(int)Status})");
            }
            catch (JsonException e)
            {
                throw new CniException(CniException.DecodeFailure, $"vswitchd's answer is not a {typeof(T).Name}", e.Message);
            }
        }
    }

    public Reply Get(string path) => Send(HttpMethod.Get, path, null);
    public Reply Delete(string path) => Send(HttpMethod.Delete, path, null);
    public Reply Post<T>(string path, T body, JsonTypeInfo<T> type) => Send(HttpMethod.Post, path, JsonContent.Create(body, type));

    private Reply Send(HttpMethod method, string path, HttpContent? content)
    {
        using var req = new HttpRequestMessage(method, path) { Content = content };
        try
        {
            using var resp = _http.Send(req);
            string text = new StreamReader(resp.Content.ReadAsStream()).ReadToEnd();
            var reply = new Reply(resp.StatusCode, text);
            if (resp.StatusCode == HttpStatusCode.ServiceUnavailable)
                throw new CniException(CniException.TryAgainLater, $"vswitchd at {_socket} is not available", text.Length == 0 ? null : reply.Error);
            return reply;
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
