using System.Text.Json;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using VSwitch.Api;
using VSwitchd.Runtime;

namespace VSwitchd.Api.Access;

/// <summary>
/// Authorisation and audit of the management API. When Kestrel accepts a connection on the Unix socket,
/// <see cref="IdentifyPeers"/> reads its peer credentials once (SO_PEERCRED through the connection's socket) and keeps
/// them with the connection; each request is then allowed or refused (403, naming the caller and the group that would
/// allow it) by <see cref="AccessPolicy"/>, and every request that may change something is audited with its result.
/// </summary>
public static class ApiAccess
{
    /// <summary>The caller of a connection, kept in its features by <see cref="IdentifyPeers"/>.</summary>
    public sealed record Caller(PeerIdentity? Peer);

    /// <summary>Kestrel connection middleware: the peer's credentials, read when the connection is accepted.</summary>
    public static void IdentifyPeers(this ListenOptions listen) => listen.Use(next => connection =>
    {
        PeerIdentity? peer = null;
        if (connection.Features.Get<IConnectionSocketFeature>()?.Socket is { } socket)
        {
            try { peer = PeerIdentity.Of(socket); }
            catch (System.Net.Sockets.SocketException) { } // gone already: no identity, every request refused
        }
        connection.Features.Set(new Caller(peer));
        return next(connection);
    });

    /// <summary>The request middleware: put it before the error handler, so that the audit sees the status the error handler gives.</summary>
    /// <summary>Marks a connection as the dashboard's plain HTTP listener (--http): read-only, whoever it is.</summary>
    public sealed class DashboardConnection;

    public static void MarkDashboard(this ListenOptions listen) => listen.Use(next => connection =>
    {
        connection.Features.Set(new DashboardConnection());
        return next(connection);
    });

    public static void UseApiAccess(this WebApplication app)
    {
        var policy = app.Services.GetRequiredService<AccessPolicy>();
        var audit = app.Services.GetRequiredService<AuditLog>();
        app.Use(async (ctx, next) =>
        {
            string method = ctx.Request.Method, path = ctx.Request.Path.Value ?? "/";
            bool isRead = AccessPolicy.IsRead(method, path);
            string? summary = isRead ? null : await Summarize(ctx.Request);
            var peer = ctx.Features.Get<Caller>()?.Peer;
            string? subject = null, refusal = null;
            ApiRole role;
            if (peer is not null)
            {
                role = policy.RoleOf(peer);
                if (!AccessPolicy.Allows(role, isRead)) refusal = policy.Refusal(peer, role, isRead);
            }
            else if (ctx.Features.Get<DashboardConnection>() is not null)
            {
                // --http: whoever reaches the port may look, never change (the trace form posts a made-up packet: a read).
                role = ApiRole.Reader;
                if (!isRead) refusal = "the dashboard's HTTP listener (--http) is read-only: change vswitchd through its socket (vsctl, or the dashboard through 'vsctl ui')";
            }
            else if (ctx.Request.IsHttps)
            {
                var (certSubject, organizations, failure) = await TlsListener.IdentifyAsync(ctx);
                subject = certSubject;
                role = failure is null ? policy.RoleOfCertificate(organizations) : ApiRole.None;
                if (!AccessPolicy.Allows(role, isRead)) refusal = failure ?? policy.CertificateRefusal(certSubject!, role, isRead);
            }
            else
            {
                role = ApiRole.None;
                refusal = "vswitchd cannot tell who is calling (no peer credentials on this connection); refused";
            }
            string what = path + ctx.Request.QueryString;
            if (refusal is not null)
            {
                ctx.Response.StatusCode = StatusCodes.Status403Forbidden;
                await ctx.Response.WriteAsJsonAsync(new ApiErrorBody(refusal));
                if (!isRead) audit.Record(Record(peer, subject, method, what, summary, StatusCodes.Status403Forbidden));
                return;
            }
            if (isRead)
            {
                await next(ctx);
                return;
            }
            int status = StatusCodes.Status500InternalServerError;
            try
            {
                await next(ctx);
                status = ctx.Response.StatusCode;
            }
            finally
            {
                audit.Record(Record(peer, subject, method, what, summary, status));
            }
        });
    }

    private static AuditRecord Record(PeerIdentity? peer, string? subject, string method, string path, string? summary, int status) =>
        new(DateTimeOffset.UtcNow, peer?.Uid, peer?.User, peer?.Pid, subject, method, path, summary, status);

    private const int SummaryBodyBytes = 8192, SummaryChars = 200;

    /// <summary>
    /// "name=blue subnet=10.1.0.0/24": the scalar members of a JSON body (what names the resource), cut to 200
    /// characters; the body stays readable for the endpoint. Null without a body; "(not JSON)" for another one.
    /// </summary>
    public static async Task<string?> Summarize(HttpRequest request)
    {
        if (request.ContentLength is 0 || request.ContentLength is null && !request.Headers.ContainsKey("Transfer-Encoding")) return null;
        request.EnableBuffering(SummaryBodyBytes);
        var buffer = new byte[SummaryBodyBytes];
        int n = 0, read;
        try
        {
            while (n < buffer.Length && (read = await request.Body.ReadAsync(buffer.AsMemory(n))) > 0) n += read;
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            // Over limits.apiBodyBytes: the endpoint meets the same refusal and the API answers it (UseBodyLimitAnswer).
            return "(body over limits.apiBodyBytes)";
        }
        request.Body.Position = 0;
        return n == 0 ? null : Summarize(buffer.AsSpan(0, n));
    }

    /// <summary>The scalar top-level members of a JSON object as name=value, in order, cut to 200 characters.</summary>
    public static string Summarize(ReadOnlySpan<byte> json)
    {
        var parts = new List<string>();
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return "(not a JSON object)";
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                string name = reader.GetString()!;
                if (!reader.Read()) break;
                switch (reader.TokenType)
                {
                    case JsonTokenType.String: parts.Add($"{name}={reader.GetString()}"); break;
                    case JsonTokenType.Number or JsonTokenType.True or JsonTokenType.False:
                        parts.Add($"{name}={System.Text.Encoding.UTF8.GetString(reader.ValueSpan)}"); break;
                    case JsonTokenType.StartArray or JsonTokenType.StartObject:
                        if (!reader.TrySkip()) goto done; // cut off: what was read so far
                        break;
                }
            }
        }
        catch (JsonException) { if (parts.Count == 0) return "(not JSON)"; }
    done:
        string s = string.Join(' ', parts);
        return s.Length <= SummaryChars ? s : s[..(SummaryChars - 1)] + "…";
    }
}
