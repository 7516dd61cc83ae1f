using VSwitch.Api;
using VSwitchd.Runtime.Handover;

namespace VSwitchd.Api;

/// <summary>/v1/restart: a hitless restart (or upgrade) by handing every open descriptor to a new vswitchd process.</summary>
public static class RestartApi
{
    public static void Map(RouteGroupBuilder v1)
    {
        // An empty body is the running binary (curl -X POST .../v1/restart); the type stays non-nullable for the document's schema.
        v1.MapPost("/restart", async (HandoverService handover, IHostApplicationLifetime lifetime, HttpContext http,
            [Microsoft.AspNetCore.Mvc.FromBody(EmptyBodyBehavior = Microsoft.AspNetCore.Mvc.ModelBinding.EmptyBodyBehavior.Allow)] RestartRequest body) =>
        {
            var view = await handover.RestartAsync((body as RestartRequest)?.Binary);
            // This process exits once the answer is out: the successor serves from the next request on.
            http.Response.OnCompleted(() =>
            {
                lifetime.StopApplication();
                return Task.CompletedTask;
            });
            return TypedResults.Ok(view);
        });
    }

    /// <summary>
    /// Refuses API writes while a hand-over runs (503, "retry"): the successor builds from the state database, so a
    /// change the predecessor took meanwhile would be lost. Reads go on; the restart request itself passes.
    /// </summary>
    public static void UseHandoverWriteGate(this WebApplication app)
    {
        var gate = app.Services.GetRequiredService<WriteGate>();
        app.Use(async (ctx, next) =>
        {
            string m = ctx.Request.Method;
            if (HttpMethods.IsGet(m) || HttpMethods.IsHead(m) || HttpMethods.IsOptions(m) || ctx.Request.Path.StartsWithSegments("/v1/restart"))
            {
                await next(ctx);
                return;
            }
            if (!gate.TryEnter())
            {
                ctx.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                await ctx.Response.WriteAsJsonAsync(new ApiErrorBody("vswitchd is handing over to a new process (restart): retry in a moment"));
                return;
            }
            try { await next(ctx); }
            finally { gate.Exit(); }
        });
    }
}
