using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary>
/// A failure to report as <c>vsctl: message</c> with exit code 1. <see cref="Body"/> is the daemon's error
/// answer as it came (for errors that carry more than a message, like a rule's bad token); null otherwise.
/// </summary>
public sealed class CtlException(string message, string? body = null) : Exception(message)
{
    public string? Body { get; } = body;
}

/// <summary>What the daemon answered: the raw JSON (for --json) and its status.</summary>
public sealed record ApiResponse(HttpStatusCode Status, string Json)
{
    public T Read<T>(JsonTypeInfo<T> type) =>
        JsonSerializer.Deserialize(Json, type) ?? throw new CtlException($"vswitchd sent an empty answer ({(int)Status})");
}

/// <summary>
/// HTTP/JSON to vswitchd's management API over its Unix socket. Every failure becomes a
/// <see cref="CtlException"/>: the daemon's own {"error": "..."} message, or why the socket could not be reached.
/// </summary>
public sealed class ApiClient : IDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly HttpClient _http;

    public string SocketPath { get; }

    public ApiClient(string socketPath)
    {
        SocketPath = socketPath;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
                    return new NetworkStream(s, ownsSocket: true);
                }
                catch
                {
                    s.Dispose();
                    throw;
                }
            },
        };
        // The host name is never resolved: ConnectCallback always dials the socket.
        // Each request has its own deadline (SendAsync): a live trace may wait longer than the default.
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://vswitchd/"), Timeout = System.Threading.Timeout.InfiniteTimeSpan };
    }

    public Task<ApiResponse> GetAsync(string path, CancellationToken ct) => SendAsync(HttpMethod.Get, path, null, Timeout, ct);

    public Task<ApiResponse> DeleteAsync(string path, CancellationToken ct) => SendAsync(HttpMethod.Delete, path, null, Timeout, ct);

    public Task<ApiResponse> PostAsync<T>(string path, T body, JsonTypeInfo<T> type, CancellationToken ct) =>
        PostAsync(path, body, type, Timeout, ct);

    /// <summary>A POST that may take longer than <see cref="Timeout"/> (the daemon waits on purpose, e.g. a live trace).</summary>
    public Task<ApiResponse> PostAsync<T>(string path, T body, JsonTypeInfo<T> type, TimeSpan timeout, CancellationToken ct) =>
        SendAsync(HttpMethod.Post, path, JsonContent.Create(body, type), timeout, ct);

    public Task<ApiResponse> PutAsync<T>(string path, T body, JsonTypeInfo<T> type, CancellationToken ct) =>
        SendAsync(HttpMethod.Put, path, JsonContent.Create(body, type), Timeout, ct);

    /// <summary>A path segment or query value, escaped.</summary>
    public static string Escape(string value) => Uri.EscapeDataString(value);

    private async Task<ApiResponse> SendAsync(HttpMethod method, string path, HttpContent? content, TimeSpan timeout, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            using var response = await _http.SendAsync(request, deadline.Token);
            string json = await response.Content.ReadAsStringAsync(deadline.Token);
            if (response.IsSuccessStatusCode) return new ApiResponse(response.StatusCode, json);
            throw new CtlException(ErrorMessage(response.StatusCode, json), json);
        }
        catch (HttpRequestException e)
        {
            throw Unreachable(e);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new CtlException($"vswitchd at {SocketPath} did not answer within {timeout.TotalSeconds:0}s");
        }
    }

    private static string ErrorMessage(HttpStatusCode status, string json)
    {
        try
        {
            if (JsonSerializer.Deserialize(json, ApiJson.Default.ApiErrorBody) is { Error: { Length: > 0 } error }) return error;
        }
        catch (JsonException) { }
        // Not the API's error shape (e.g. 404 on an unknown route from an older daemon).
        var sb = new StringBuilder($"vswitchd answered {(int)status} {status}");
        if (!string.IsNullOrWhiteSpace(json)) sb.Append(": ").Append(json.Trim());
        return sb.ToString();
    }

    private CtlException Unreachable(HttpRequestException e)
    {
        var socketError = FindInner<SocketException>(e);
        string reason = !File.Exists(SocketPath) ? "no such socket" : socketError?.SocketErrorCode switch
        {
            SocketError.ConnectionRefused => "connection refused",
            SocketError.AccessDenied => "permission denied",
            _ => socketError?.Message ?? e.Message,
        };
        string hint = socketError?.SocketErrorCode == SocketError.AccessDenied
            ? "(run as root or as a member of the socket's group)"
            : "(is it running? start it with: vswitchd --config FILE)";
        return new CtlException($"cannot reach vswitchd at {SocketPath}: {reason} {hint}");
    }

    private static T? FindInner<T>(Exception? e) where T : Exception
    {
        for (; e is not null; e = e.InnerException)
            if (e is T t) return t;
        return null;
    }

    public void Dispose() => _http.Dispose();
}
