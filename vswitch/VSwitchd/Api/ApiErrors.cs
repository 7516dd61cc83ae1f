using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Diagnostics;
using VSwitch.Api;
using VSwitchd.Runtime;

namespace VSwitchd.Api;

/// <summary>
/// The one place where a failure becomes an HTTP answer: the runtime's refusals by their type, a body
/// the framework could not bind, and anything else as an internal error. Every answer is an
/// <see cref="ApiErrorBody"/>; endpoints throw and never choose an error status themselves.
/// </summary>
public static partial class ApiErrors
{
    /// <summary>The status and body for an exception an endpoint (or its binding) threw.</summary>
    public static (int Status, ApiErrorBody Body) Describe(Exception? e) => e switch
    {
        InvalidSyntaxException s => (StatusCodes.Status400BadRequest, new ApiErrorBody(s.Message) { Token = s.Token, Position = s.Position }),
        InvalidRequestException => (StatusCodes.Status400BadRequest, new ApiErrorBody(e.Message)),
        NotFoundException => (StatusCodes.Status404NotFound, new ApiErrorBody(e.Message)),
        ConflictException => (StatusCodes.Status409Conflict, new ApiErrorBody(e.Message)),
        UnavailableException => (StatusCodes.Status503ServiceUnavailable, new ApiErrorBody(e.Message)),
        // A restart that did not happen: the successor's failure, in words; this daemon runs on.
        VSwitchd.Runtime.Handover.HandoverException => (StatusCodes.Status500InternalServerError, new ApiErrorBody(e.Message)),
        BadHttpRequestException b => (b.StatusCode, new ApiErrorBody("bad request: " + (b.InnerException is JsonException j ? InvalidJson(j) : b.Message))),
        _ => (StatusCodes.Status500InternalServerError, new ApiErrorBody("internal error: " + e?.Message)),
    };

    /// <summary>Answers every exception of the pipeline through <see cref="Describe"/>; a refusal is not logged as a failure.</summary>
    public static void UseApiErrors(this WebApplication app) => app.UseExceptionHandler(new ExceptionHandlerOptions
    {
        ExceptionHandler = async ctx =>
        {
            var (status, body) = Describe(ctx.Features.Get<IExceptionHandlerFeature>()?.Error);
            ctx.Response.StatusCode = status;
            await ctx.Response.WriteAsJsonAsync(body); // the daemon's JSON options, as every other answer
        },
        SuppressDiagnosticsCallback = c => c.Exception is SwitchRuntimeException,
    });

    /// <summary>
    /// A body over limits.apiBodyBytes: Kestrel refuses it while the endpoint binds it, and the binding
    /// answers a bare 413 without throwing (the refusal is an IOException to it). So the 413 is counted and
    /// explained here, after the endpoint, whichever way the body came (Content-Length or chunked).
    /// </summary>
    public static void UseBodyLimitAnswer(this WebApplication app, SwitchRuntime rt) => app.Use(async (ctx, next) =>
    {
        await next(ctx);
        if (ctx.Response.StatusCode != StatusCodes.Status413PayloadTooLarge) return;
        rt.CountApiBodyRefused();
        if (!ctx.Response.HasStarted)
            await ctx.Response.WriteAsJsonAsync(new ApiErrorBody($"request body larger than {rt.Limits.ApiBodyBytes} bytes (limits.apiBodyBytes)"));
    });

    /// <summary>"invalid JSON at vlan: The JSON value could not be converted to System.Int32." (the path, then the reader's message).</summary>
    private static string InvalidJson(JsonException j)
    {
        string path = j.Path?.TrimStart('$', '.') is { Length: > 0 } p ? $" at {p}" : "";
        // An optional request field is a nullable: name the type a user would write, as for a required one.
        string message = NullableOf().Replace(j.Message.Split(" Path:")[0], "$1");
        return $"invalid JSON{path}: {message}";
    }

    [GeneratedRegex(@"System\.Nullable`1\[([^\]]+)\]")]
    private static partial Regex NullableOf();
}
