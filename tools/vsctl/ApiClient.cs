using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary>What kind of failure: each has its exit code and its name in a --json error (README: "Exit codes").</summary>
public enum ErrorKind
{
    /// <summary>Anything else: the daemon failed (500), or answered what vsctl cannot read. Exit 1, "error".</summary>
    Error,
    /// <summary>The command line does not parse. Exit 2, "usage".</summary>
    Usage,
    /// <summary>A name that is not there (404). Exit 3, "not-found".</summary>
    NotFound,
    /// <summary>Clashes with what exists (409). Exit 4, "conflict".</summary>
    Conflict,
    /// <summary>No socket, connection refused, no answer in time, or the daemon is stopping (503). Exit 5, "unreachable".</summary>
    Unreachable,
    /// <summary>A value the daemon refuses (400): a bad address, a rule or match that does not parse. Exit 6, "invalid".</summary>
    Invalid,
    /// <summary>The caller's role does not allow the request (403): not root, nor in the admin group (or, to read, the read group). Exit 7, "forbidden".</summary>
    Forbidden,
}

/// <summary>
/// A failure to report as <c>vsctl: message</c> (or, with --json, as a JSON error), with the exit code of its
/// <see cref="Kind"/>. <see cref="Body"/> is the daemon's error answer as it came (for errors that carry more
/// than a message, like a rule's bad token) and <see cref="Status"/> its HTTP status; null when vsctl found the error itself.
/// </summary>
public sealed class CtlException(string message, string? body = null, ErrorKind kind = ErrorKind.Error, int? status = null) : Exception(message)
{
    public string? Body { get; } = body;
    public ErrorKind Kind { get; } = kind;
    public int? Status { get; } = status;

    /// <summary>Something vsctl looked for and did not find (the daemon was asked and has no such thing).</summary>
    public static CtlException NotFound(string message) => new(message, kind: ErrorKind.NotFound);

    /// <summary>The same failure with another message (a hint added), its kind and body kept.</summary>
    public CtlException WithMessage(string message) => new(message, Body, Kind, Status);

    /// <summary>The kind of an HTTP error status.</summary>
    public static ErrorKind KindOf(HttpStatusCode status) => status switch
    {
        HttpStatusCode.BadRequest => ErrorKind.Invalid,
        HttpStatusCode.NotFound => ErrorKind.NotFound,
        HttpStatusCode.Conflict => ErrorKind.Conflict,
        HttpStatusCode.ServiceUnavailable => ErrorKind.Unreachable,
        HttpStatusCode.Forbidden => ErrorKind.Forbidden,
        _ => ErrorKind.Error,
    };
}

/// <summary>What the daemon answered: the raw JSON (for --json) and its status.</summary>
public sealed record ApiResponse(HttpStatusCode Status, string Json)
{
    public T Read<T>(JsonTypeInfo<T> type) =>
        JsonSerializer.Deserialize(Json, type) ?? throw new CtlException($"vswitchd sent an empty answer ({(int)Status})");
}

/// <summary>
/// HTTP/JSON to vswitchd's management API over its Unix socket. Every failure becomes a
/// <see cref="CtlException"/>: the daemon's own {"error": "..."} message and the kind of its status, or why the
/// socket could not be reached.
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

    public Task<ApiResponse> PatchAsync<T>(string path, T body, JsonTypeInfo<T> type, CancellationToken ct) =>
        SendAsync(HttpMethod.Patch, path, JsonContent.Create(body, type), Timeout, ct);

    /// <summary>
    /// A POST whose answer is read as it comes (a capture's pcapng stream): returns once the headers are in, with the
    /// body still open; the caller disposes the response. A refusal (an error status) is a <see cref="CtlException"/> as usual.
    /// </summary>
    public async Task<HttpResponseMessage> PostStreamingAsync<T>(string path, T body, JsonTypeInfo<T> type, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body, type) };
        HttpResponseMessage response;
        // The deadline is for the answer to start; the stream itself lasts as long as the capture.
        using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            deadline.CancelAfter(Timeout);
            try { response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token); }
            catch (HttpRequestException e) { throw Unreachable(e); }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new CtlException($"vswitchd at {SocketPath} did not answer within {Timeout.TotalSeconds:0}s", kind: ErrorKind.Unreachable);
            }
        }
        if (response.IsSuccessStatusCode) return response;
        using (response)
        {
            string json = await response.Content.ReadAsStringAsync(ct);
            throw new CtlException(ErrorMessage(response.StatusCode, json), json, CtlException.KindOf(response.StatusCode), (int)response.StatusCode);
        }
    }

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
            throw new CtlException(ErrorMessage(response.StatusCode, json), json, CtlException.KindOf(response.StatusCode), (int)response.StatusCode);
        }
        catch (HttpRequestException e)
        {
            throw Unreachable(e);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new CtlException($"vswitchd at {SocketPath} did not answer within {timeout.TotalSeconds:0}s", kind: ErrorKind.Unreachable);
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
            ? "(the socket's mode or folder keeps this user out: vswitchd makes it 0666 and authorises each request itself; run as root or ask who set it up)"
            : "(is it running? start it with: vswitchd --config FILE)";
        return new CtlException($"cannot reach vswitchd at {SocketPath}: {reason} {hint}", kind: ErrorKind.Unreachable);
    }

    private static T? FindInner<T>(Exception? e) where T : Exception
    {
        for (; e is not null; e = e.InnerException)
            if (e is T t) return t;
        return null;
    }

    public void Dispose() => _http.Dispose();
}
