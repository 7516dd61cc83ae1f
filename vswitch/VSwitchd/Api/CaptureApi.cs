using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using VSwitch.Api;
using VSwitchd.Runtime;

namespace VSwitchd.Api;

/// <summary>
/// /v1/capture, /v1/mirrors and /v1/ipfix: seeing the traffic. /v1/capture is tcpdump inside the switch. The request is checked and the capture armed before the answer starts,
/// so a refusal is an ordinary JSON error; then the answer is a pcapng stream written through the response's
/// PipeWriter as frames come.
/// </summary>
public static class CaptureApi
{
    public static void Map(RouteGroupBuilder v1)
    {
        v1.MapPost("/capture", async (HttpContext http, SwitchRuntime rt, IHostApplicationLifetime life, CaptureRequest body) =>
        {
            var session = rt.StartCapture(body);
            // A capture may be quiet for minutes and its reader may pause (a pipe into a pager): Kestrel's minimum
            // response rate would cut it; the ring, not the connection, is what bounds a slow reader.
            if (http.Features.Get<IHttpMinResponseDataRateFeature>() is { } rate) rate.MinDataRate = null;
            http.Response.ContentType = CaptureRequest.MediaType;
            http.Response.Headers.CacheControl = "no-store";
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, life.ApplicationStopping);
            await session.StreamAsync(http.Response.BodyWriter, stop.Token);
        })
        // The answer is a pcapng byte stream, not JSON: documented as binary of that media type.
        .Produces(StatusCodes.Status200OK, typeof(byte[]), CaptureRequest.MediaType);

        v1.MapGet("/ipfix", (SwitchRuntime rt) => TypedResults.Ok(rt.GetIpfix()));
        v1.MapPut("/ipfix", (SwitchRuntime rt, IpfixRequest body) => TypedResults.Ok(rt.SetIpfix(body)));
        v1.MapDelete("/ipfix", (SwitchRuntime rt) =>
        {
            rt.DisableIpfix();
            return TypedResults.NoContent();
        });

        v1.MapGet("/mirrors", (SwitchRuntime rt) => TypedResults.Ok(rt.ListMirrors()));
        v1.MapGet("/mirrors/{name}", (SwitchRuntime rt, string name) => TypedResults.Ok(rt.GetMirror(name)));
        v1.MapPost("/mirrors", (SwitchRuntime rt, MirrorRequest body) =>
        {
            var m = rt.AddMirror(body);
            return TypedResults.Created($"/v1/mirrors/{m.Name}", m);
        });
        v1.MapDelete("/mirrors/{name}", (SwitchRuntime rt, string name) =>
        {
            rt.RemoveMirror(name);
            return TypedResults.NoContent();
        });
    }
}
