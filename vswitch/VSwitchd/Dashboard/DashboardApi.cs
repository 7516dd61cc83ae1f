using System.Globalization;
using System.Text;
using VSwitchd.Runtime;

namespace VSwitchd.Dashboard;

/// <summary>
/// The web dashboard: its page, script and style from vswitchd's own assembly (embedded resources) under /ui/, and
/// /v1/rates/stream, each port's rates once a second as Server-Sent Events. Everything else it shows it reads from the
/// API like any client (/v1/show, /v1/overlay, /v1/flows, /v1/stats, POST /v1/trace), with the caller's role.
/// </summary>
public static class DashboardApi
{
    private static readonly Dictionary<string, string> Types = new()
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".svg"] = "image/svg+xml",
    };

    public static void Map(WebApplication app)
    {
        app.MapGet("/", () => Results.Redirect("/ui/")).ExcludeFromDescription();
        app.MapGet("/ui/{file?}", (string? file) =>
        {
            string name = string.IsNullOrEmpty(file) ? "index.html" : file;
            var stream = typeof(DashboardApi).Assembly.GetManifestResourceStream("dashboard/" + name);
            if (stream is null || !Types.TryGetValue(Path.GetExtension(name), out var type)) return Results.NotFound();
            return Results.Stream(stream, type);
        }).ExcludeFromDescription();

        // Server-Sent Events: one "rates" event a second, each port's packets and bits per second in and out and drops.
        app.MapGet("/v1/rates/stream", async (HttpContext http, SwitchRuntime rt, IHostApplicationLifetime life) =>
        {
            http.Response.ContentType = "text/event-stream";
            http.Response.Headers.CacheControl = "no-store";
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, life.ApplicationStopping);
            var before = Snapshot(rt);
            long t0 = Environment.TickCount64;
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
            try
            {
                await http.Response.WriteAsync(": vswitchd rates\n\n", stop.Token);
                while (await timer.WaitForNextTickAsync(stop.Token))
                {
                    var now = Snapshot(rt);
                    long t1 = Environment.TickCount64;
                    double s = Math.Max(0.001, (t1 - t0) / 1000.0);
                    var sb = new StringBuilder("event: rates\ndata: {\"seconds\":").Append(s.ToString("0.###", CultureInfo.InvariantCulture)).Append(",\"ports\":[");
                    bool first = true;
                    foreach (var (name, c) in now)
                    {
                        var o = before.GetValueOrDefault(name, c);
                        if (!first) sb.Append(',');
                        first = false;
                        sb.Append("{\"name\":").Append(System.Text.Json.JsonSerializer.Serialize(name, DashboardJson.Default.String))
                          .Append(",\"rxPps\":").Append(Rate(c.RxPackets - o.RxPackets, s))
                          .Append(",\"rxBps\":").Append(Rate((c.RxBytes - o.RxBytes) * 8, s))
                          .Append(",\"txPps\":").Append(Rate(c.TxPackets - o.TxPackets, s))
                          .Append(",\"txBps\":").Append(Rate((c.TxBytes - o.TxBytes) * 8, s))
                          .Append(",\"drops\":").Append((c.RxDrops + c.TxDrops).ToString(CultureInfo.InvariantCulture)).Append('}');
                    }
                    sb.Append("]}\n\n");
                    await http.Response.WriteAsync(sb.ToString(), stop.Token);
                    await http.Response.Body.FlushAsync(stop.Token);
                    before = now;
                    t0 = t1;
                }
            }
            catch (OperationCanceledException) { } // the page went away, or vswitchd stops
        }).ExcludeFromDescription();
    }

    private static string Rate(long delta, double seconds) => Math.Round(Math.Max(0, delta) / seconds, 1).ToString(CultureInfo.InvariantCulture);

    private static Dictionary<string, VSwitch.Api.CountersView> Snapshot(SwitchRuntime rt) =>
        rt.ListPorts().ToDictionary(p => p.Name, p => p.Counters);
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class DashboardJson : System.Text.Json.Serialization.JsonSerializerContext;
