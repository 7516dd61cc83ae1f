using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary>
/// <c>vsctl top</c>: live rates, refreshed every interval: each port's packets and bits per second in and out and its
/// drops, the busiest flows, and each datapath thread's load. The rates are differences of the daemon's counters
/// between two reads (GET /v1/stats and /v1/flows), divided by the time between them as vsctl measured it.
/// <c>--once</c> reads twice, prints once and exits; <c>--json</c> prints the same as one JSON object per refresh.
/// </summary>
public static class TopCommand
{
    public static Command Create(Cli cli)
    {
        var once = new Option<bool>("--once") { Description = "Print the rates over one interval once, then exit (for scripts and tests)" };
        var interval = new Option<double?>("--interval")
        {
            Description = "Seconds between refreshes (0.2..60, default 1)",
            HelpName = "S",
            CustomParser = r =>
            {
                string text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
                if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v is >= 0.2 and <= 60) return v;
                r.AddError($"--interval: '{text}' must be a number of seconds, 0.2..60");
                return null;
            },
        };
        var flows = Cli.IntOption("--flows", "How many of the busiest flows to show (default 10)");
        var top = new Command("top", "Live rates: ports (packets and bits per second, drops), busiest flows, datapath threads' load") { once, interval, flows };
        cli.SetAction(top, async (ctx, ct) =>
        {
            var period = TimeSpan.FromSeconds(ctx.Get(interval) ?? 1);
            int flowCount = Math.Clamp(ctx.Get(flows) ?? 10, 0, 1000);
            var previous = await Sample.Read(ctx.Api, ct);
            bool screen = !ctx.Json && !ctx.Get(once) && !Console.IsOutputRedirected;
            try
            {
                while (true)
                {
                    await Task.Delay(period, ct);
                    var now = await Sample.Read(ctx.Api, ct);
                    var rates = Rates.Between(previous, now, flowCount);
                    if (ctx.Json) WriteJson(ctx.Out, rates);
                    else
                    {
                        if (screen) ctx.Out.Write("\x1b[H\x1b[2J"); // home and clear: one screen per refresh, like top
                        Print(ctx, rates);
                    }
                    ctx.Out.Flush();
                    if (ctx.Get(once)) return Program.Ok;
                    previous = now;
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return Program.Ok; }
        });
        return top;
    }

    /// <summary>One read of the daemon's counters, and when vsctl made it.</summary>
    private sealed record Sample(StatsView Stats, FlowView[] Flows, long Timestamp)
    {
        public static async Task<Sample> Read(ApiClient api, CancellationToken ct)
        {
            var stats = (await api.GetAsync("v1/stats", ct)).Read(ApiJson.Default.StatsView);
            var flows = (await api.GetAsync("v1/flows", ct)).Read(ApiJson.Default.FlowViewArray);
            return new Sample(stats, flows, Stopwatch.GetTimestamp());
        }
    }

    public sealed record PortRate(string Name, double RxPps, double RxBps, double TxPps, double TxBps, double DropsPerSecond, long Drops);
    public sealed record FlowRate(string Flow, string Actions, int Thread, double Pps, double Bps);
    public sealed record ThreadRate(string Name, string[] Ports, double RxPps, double CpuPercent);

    private sealed record Rates(double Seconds, PortRate[] Ports, FlowRate[] Flows, ThreadRate[] Threads)
    {
        public static Rates Between(Sample a, Sample b, int flowCount)
        {
            double s = Math.Max(1e-3, (b.Timestamp - a.Timestamp) / (double)Stopwatch.Frequency);
            var before = a.Stats.Ports.ToDictionary(p => p.Name);
            var ports = b.Stats.Ports.Select(p =>
            {
                var c = p.Counters;
                var o = before.TryGetValue(p.Name, out var old) ? old.Counters : c;
                long drops = c.RxDrops + c.TxDrops;
                return new PortRate(p.Name, (c.RxPackets - o.RxPackets) / s, (c.RxBytes - o.RxBytes) * 8 / s,
                    (c.TxPackets - o.TxPackets) / s, (c.TxBytes - o.TxBytes) * 8 / s, (drops - o.RxDrops - o.TxDrops) / s, drops);
            }).ToArray();
            // A flow is the same flow in the same thread's cache; one not there before counts from zero (it is new).
            var oldFlows = new Dictionary<(int, string), FlowView>();
            foreach (var f in a.Flows) oldFlows[(f.Thread, f.Flow)] = f;
            var flows = b.Flows.Select(f =>
            {
                var o = oldFlows.GetValueOrDefault((f.Thread, f.Flow));
                long dp = f.Packets - (o?.Packets ?? 0), db = f.Bytes - (o?.Bytes ?? 0);
                return new FlowRate(f.Flow, f.Actions, f.Thread, Math.Max(0, dp) / s, Math.Max(0, db) * 8 / s);
            }).Where(f => f.Pps > 0).OrderByDescending(f => f.Bps).Take(flowCount).ToArray();
            var oldThreads = (a.Stats.Threads ?? []).ToDictionary(t => t.Index);
            var threads = (b.Stats.Threads ?? []).Select(t =>
            {
                var o = oldThreads.GetValueOrDefault(t.Index) ?? t;
                return new ThreadRate(t.Name, t.Ports, (t.RxPackets - o.RxPackets) / s, 100 * (t.CpuSeconds - o.CpuSeconds) / s);
            }).ToArray();
            return new Rates(s, ports, flows, threads);
        }
    }

    private static void Print(Context ctx, Rates r)
    {
        var w = ctx.Out;
        w.WriteLine($"vswitchd at {ctx.Api.SocketPath}: rates over {r.Seconds:0.0}s, {DateTime.Now:HH:mm:ss}");
        w.WriteLine();
        var ports = new TableWriter("PORT", "RX-PPS", "RX-BPS", "TX-PPS", "TX-BPS", "DROPS/S", "DROPS");
        foreach (var p in r.Ports) ports.AddRow(p.Name, Number(p.RxPps), Bits(p.RxBps), Number(p.TxPps), Bits(p.TxBps), Number(p.DropsPerSecond), p.Drops);
        ctx.Write(ports);
        w.WriteLine();
        if (r.Flows.Length == 0) w.WriteLine("no flow carried packets");
        else
        {
            var flows = new TableWriter("FLOW", "ACTIONS", "THREAD", "PPS", "BPS").Cut("FLOW", "ACTIONS");
            foreach (var f in r.Flows) flows.AddRow(f.Flow, f.Actions, f.Thread, Number(f.Pps), Bits(f.Bps));
            ctx.Write(flows);
        }
        w.WriteLine();
        var threads = new TableWriter("THREAD", "PORTS", "RX-PPS", "CPU");
        foreach (var t in r.Threads) threads.AddRow(t.Name, string.Join(',', t.Ports), Number(t.RxPps), $"{t.CpuPercent:0}%");
        ctx.Write(threads);
    }

    /// <summary>1234567 as "1.23M": rates are read at a glance.</summary>
    private static string Number(double v) => v switch
    {
        >= 1e9 => (v / 1e9).ToString("0.00", CultureInfo.InvariantCulture) + "G",
        >= 1e6 => (v / 1e6).ToString("0.00", CultureInfo.InvariantCulture) + "M",
        >= 1e4 => (v / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + "k",
        _ => v.ToString("0", CultureInfo.InvariantCulture),
    };

    private static string Bits(double v) => Number(v) + "b";

    private static void WriteJson(TextWriter w, Rates r)
    {
        using var buffer = new MemoryStream();
        using (var j = new Utf8JsonWriter(buffer))
        {
            j.WriteStartObject();
            j.WriteNumber("seconds", Math.Round(r.Seconds, 3));
            j.WriteStartArray("ports");
            foreach (var p in r.Ports)
            {
                j.WriteStartObject();
                j.WriteString("name", p.Name);
                j.WriteNumber("rxPps", Math.Round(p.RxPps, 1));
                j.WriteNumber("rxBps", Math.Round(p.RxBps));
                j.WriteNumber("txPps", Math.Round(p.TxPps, 1));
                j.WriteNumber("txBps", Math.Round(p.TxBps));
                j.WriteNumber("dropsPerSecond", Math.Round(p.DropsPerSecond, 1));
                j.WriteNumber("drops", p.Drops);
                j.WriteEndObject();
            }
            j.WriteEndArray();
            j.WriteStartArray("flows");
            foreach (var f in r.Flows)
            {
                j.WriteStartObject();
                j.WriteString("flow", f.Flow);
                j.WriteString("actions", f.Actions);
                j.WriteNumber("thread", f.Thread);
                j.WriteNumber("pps", Math.Round(f.Pps, 1));
                j.WriteNumber("bps", Math.Round(f.Bps));
                j.WriteEndObject();
            }
            j.WriteEndArray();
            j.WriteStartArray("threads");
            foreach (var t in r.Threads)
            {
                j.WriteStartObject();
                j.WriteString("name", t.Name);
                j.WriteStartArray("ports");
                foreach (var p in t.Ports) j.WriteStringValue(p);
                j.WriteEndArray();
                j.WriteNumber("rxPps", Math.Round(t.RxPps, 1));
                j.WriteNumber("cpuPercent", Math.Round(t.CpuPercent, 1));
                j.WriteEndObject();
            }
            j.WriteEndArray();
            j.WriteEndObject();
        }
        w.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
    }
}
