using System.Buffers.Binary;
using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text.Json;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary>
/// <c>vsctl capture</c>: tcpdump inside the switch. vswitchd streams pcapng; vsctl writes it to a file or to stdout
/// (<c>-w -</c>, for <c>| tshark -r -</c>) as it comes, or prints a line per frame, and at the end says how many frames
/// were captured and how many the capture lost because its reader was slower than the traffic.
/// </summary>
public static class CaptureCommands
{
    public static Command Create(Cli cli)
    {
        var port = new Argument<string>("PORT") { Description = "The switch port to capture on (with --drops: only drops of frames that came in on it)", Arity = ArgumentArity.ZeroOrOne };
        var direction = new Option<string>("--direction") { Description = "Frames the port receives (rx), sends (tx) or both", HelpName = "rx|tx|both" };
        direction.AcceptOnlyFromAmong("rx", "tx", "both");
        var filter = new Option<string>("--filter") { Description = "Only frames this match selects, in rule syntax: 'icmp', 'tcp,tp_dst=80', 'nw_src=10.0.0.2'", HelpName = "MATCH" };
        var count = Cli.IntOption("--count", "Stop after N frames");
        var snaplen = Cli.IntOption("--snaplen", "Keep at most N bytes of each frame (64..262144, default 262144)");
        var duration = new Option<double?>("--duration")
        {
            Description = "Stop after S seconds",
            HelpName = "S",
            CustomParser = r =>
            {
                string text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
                if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v)) return v;
                r.AddError($"--duration: '{text}' is not a number of seconds");
                return null;
            },
        };
        var write = new Option<string>("--write", "-w") { Description = "Write pcapng to FILE, or to stdout with '-' (vsctl capture P -w - | tshark -r -)", HelpName = "FILE" };
        var drops = new Option<bool>("--drops") { Description = "Capture the frames the pipeline drops, each with its reason and stage as the packet's comment" };
        var reason = new Option<string>("--reason") { Description = "--drops: only this drop reason (as vsctl stats names it, e.g. bad-ihl)", HelpName = "R" };
        var capture = new Command("capture", "Capture frames on a port, or the pipeline's drops, as pcapng (tcpdump, tshark and Wireshark read it)")
        {
            port, direction, filter, count, snaplen, duration, write, drops, reason,
        };
        capture.Validators.Add(r =>
        {
            bool isDrops = r.GetResult(drops) is not null && r.GetValue(drops);
            if (!isDrops && r.GetResult(port) is not { Tokens.Count: > 0 }) r.AddError("give the port to capture on: vsctl capture PORT (or --drops)");
            if (!isDrops && r.GetResult(reason) is not null) r.AddError("--reason is for --drops");
            if (isDrops && r.GetResult(direction) is not null) r.AddError("--direction is not for --drops: dropped frames are frames received");
        });
        cli.SetAction(capture, async (ctx, ct) =>
        {
            var body = new CaptureRequest(ctx.Get(port), ctx.Get(direction), ctx.Get(filter), ctx.Get(count), ctx.Get(snaplen), ctx.Get(duration),
                ctx.Get(drops) ? true : null, ctx.Get(reason));
            return await Run(ctx, body, ctx.Get(write), ct);
        });
        return capture;
    }

    private static async Task<int> Run(Context ctx, CaptureRequest body, string? path, CancellationToken ct)
    {
        HttpResponseMessage response;
        try { response = await ctx.Api.PostStreamingAsync("v1/capture", body, ApiJson.Default.CaptureRequest, ct); }
        catch (CtlException e) { return RuleText.Fail(ctx, body.Filter ?? "", e); }
        using var _ = response;
        bool toStdout = path == "-";
        Stream? output = null;
        try
        {
            if (path is not null)
            {
                try { output = toStdout ? Console.OpenStandardOutput() : new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new CtlException($"-w {path}: {e.Message}", kind: ErrorKind.Invalid);
                }
            }
            var scanner = new PcapngScanner();
            if (output is null && !ctx.Json) scanner.OnPacket = (name, ts, inbound, frame, length, comment) =>
                ctx.Out.WriteLine(Line(name, ts, inbound, frame.Span, length, comment));
            bool interrupted = false, readerGone = false;
            var buffer = new byte[1 << 16];
            await using var stream = await response.Content.ReadAsStreamAsync(ct);
            try
            {
                int n;
                while ((n = await stream.ReadAsync(buffer, ct)) > 0)
                {
                    scanner.Feed(buffer.AsSpan(0, n));
                    if (output is null) continue;
                    try
                    {
                        await output.WriteAsync(buffer.AsMemory(0, n), ct);
                        await output.FlushAsync(ct);
                    }
                    catch (IOException) when (toStdout)
                    {
                        readerGone = true; // the reader of the pipe (tshark -c N, head) is done: so are we
                        break;
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { interrupted = true; }
            catch (HttpIOException) { interrupted = true; } // vswitchd stopped mid-capture
            catch (IOException) { interrupted = true; }
            Summary(ctx, body, scanner, toStdout, interrupted || readerGone);
            return Program.Ok;
        }
        finally
        {
            if (output is not null && !toStdout) await output.DisposeAsync();
            else if (output is not null) await output.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>The end: tcpdump's "N packets captured" and what was lost, on stderr (stdout may be the capture); --json: an object.</summary>
    private static void Summary(Context ctx, CaptureRequest body, PcapngScanner s, bool stdoutIsCapture, bool early)
    {
        var w = stdoutIsCapture ? ctx.Cli.Error : ctx.Json ? ctx.Out : ctx.Cli.Error;
        if (ctx.Json)
        {
            using var buffer = new MemoryStream();
            using (var j = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            {
                j.WriteStartObject();
                j.WriteString("port", body.Port);
                j.WriteNumber("packets", s.Packets);
                j.WriteBoolean("complete", s.HasStatistics);
                if (s.HasStatistics)
                {
                    j.WriteNumber("captured", s.Captured);
                    j.WriteNumber("lost", s.Lost);
                }
                j.WriteEndObject();
            }
            w.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
            return;
        }
        string where = body.Drops == true ? "drops" + (body.Port is null ? "" : $" of {body.Port}") : body.Port ?? "";
        w.WriteLine($"{s.Packets} packets captured on {where}");
        if (s.HasStatistics)
            w.WriteLine(s.Lost == 0 ? "0 packets lost by the capture"
                : $"{s.Lost} packets lost by the capture: its ring was full, the reader was slower than the traffic (of {s.Captured} matched)");
        else if (early) w.WriteLine("the capture ended early: no statistics from vswitchd");
    }

    /// <summary>One frame as a line: time, port, direction, length and what it is (IPv4/IPv6 addresses and protocol, ARP), and a drop's comment.</summary>
    public static string Line(string port, long ns, bool inbound, ReadOnlySpan<byte> f, int length, string? comment)
    {
        var t = DateTimeOffset.FromUnixTimeMilliseconds(ns / 1_000_000).ToLocalTime();
        string time = t.ToString("HH:mm:ss", CultureInfo.InvariantCulture) + "." + (ns % 1_000_000_000).ToString("D9", CultureInfo.InvariantCulture);
        string what = Describe(f);
        return $"{time} {port} {(inbound ? "rx" : "tx")} {length} bytes {what}{(comment is null ? "" : $" [{comment}]")}";
    }

    private static string Describe(ReadOnlySpan<byte> f)
    {
        if (f.Length < 14) return "runt";
        int at = 12;
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(f[at..]);
        string vlan = "";
        if (type == 0x8100 && f.Length >= 18)
        {
            vlan = $"vlan {BinaryPrimitives.ReadUInt16BigEndian(f[14..]) & 0xFFF} ";
            at = 16;
            type = BinaryPrimitives.ReadUInt16BigEndian(f[at..]);
        }
        var p = f[(at + 2)..];
        string body = type switch
        {
            0x0800 when p.Length >= 20 => $"{new IPAddress(p.Slice(12, 4))} > {new IPAddress(p.Slice(16, 4))} {Protocol(p[9])}",
            0x86DD when p.Length >= 40 => $"{new IPAddress(p.Slice(8, 16))} > {new IPAddress(p.Slice(24, 16))} {Protocol(p[6])}",
            0x0806 when p.Length >= 28 => BinaryPrimitives.ReadUInt16BigEndian(p[6..]) == 1
                ? $"ARP who-has {new IPAddress(p.Slice(24, 4))} tell {new IPAddress(p.Slice(14, 4))}"
                : $"ARP reply {new IPAddress(p.Slice(14, 4))}",
            _ => $"ethertype 0x{type:x4}",
        };
        return vlan + body;
    }

    private static string Protocol(byte p) => p switch
    {
        1 => "icmp", 6 => "tcp", 17 => "udp", 58 => "icmp6",
        _ => "proto " + p.ToString(CultureInfo.InvariantCulture),
    };
}
