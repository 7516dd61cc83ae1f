using System.Text.Json.Nodes;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports;
using VSwitch.Core.Ports.Linux;
using VSwitchd.Host;
using Xunit.Abstractions;

namespace VSwitch.Integration.Tests;

/// <summary>
/// TAP offloads through a real vswitchd: with IFF_VNET_HDR + TUNSETOFFLOAD (the default) the
/// namespaces hand the switch partial checksums and 64 KB TCP super-frames, which cross the switch
/// whole (or, with no large buffers, are segmented by the port); with "offloads": false the kernel
/// segments. TCP must arrive intact
/// (iperf3 plus 16 MiB hashed end to end) either way; the throughput of both is printed.
/// </summary>
[Collection("netns")]
public class TapOffloadTests(ITestOutputHelper output)
{
    private const int Seconds = 8;

    private static string Config(bool? offloads, params (string Name, TestNetns Ns, string[] Ips)[] ports) => Config(offloads, null, ports);

    private static string Config(bool? offloads, int? largePoolSize, params (string Name, TestNetns Ns, string[] Ips)[] ports) =>
        Config(offloads, largePoolSize, null, ports);

    private static string Config(bool? offloads, int? largePoolSize, bool? ioUring, params (string Name, TestNetns Ns, string[] Ips)[] ports)
    {
        var arr = new JsonArray(ports.Select(p =>
        {
            var o = new JsonObject
            {
                ["name"] = p.Name, ["type"] = "tap", ["network"] = "blue", ["netns"] = p.Ns.Name,
                ["addresses"] = new JsonArray(p.Ips.Select(i => (JsonNode)JsonValue.Create(i)!).ToArray()),
            };
            if (offloads is bool b) o["offloads"] = b;
            if (ioUring is bool u) o["ioUring"] = u;
            return (JsonNode)o;
        }).ToArray());
        var cfg = new JsonObject { ["networks"] = new JsonArray(new JsonObject { ["name"] = "blue" }), ["ports"] = arr };
        if (largePoolSize is int l) cfg["datapath"] = new JsonObject { ["largePoolSize"] = l };
        return cfg.ToJsonString();
    }

    private static long Detail(Vswitchd d, string port, string key) => (long)d.Port(port)["details"]![key]!;

    private static string Features(TestNetns ns, string dev) => ns.Exec("ethtool", "-k", dev);

    [RootFact]
    public void Tcp_through_taps_with_offloads_passes_super_frames_whole_and_arrives_intact()
    {
        using var a = new TestNetns();
        using var b = new TestNetns();
        string s = Names.Random("");
        string ta = "vqa" + s, tb = "vqb" + s;
        using var d = Vswitchd.Start(Config(null, (ta, a, ["10.97.0.1/24", "fd00:97::1/64"]), (tb, b, ["10.97.0.2/24", "fd00:97::2/64"])));

        // The namespace's side of the TAP now claims checksum offload and TSO.
        Assert.Contains("tcp-segmentation-offload: on", Features(a, ta));
        Assert.Contains("tx-checksumming: on", Features(a, ta));
        Assert.Equal("on", (string?)d.Port(ta)["features"]!["offloads"]);

        var (sent, received) = Iperf.Run(a, b, "10.97.0.2", Seconds);
        Iperf.AssertIntact(sent, received);
        output.WriteLine($"offloads on, IPv4: {sent * 8.0 / Seconds / 1e9:F2} Gbit/s ({sent} bytes in {Seconds} s)");

        var details = d.Port(ta)["details"]!;
        output.WriteLine($"{ta} details: {details.ToJsonString()}");
        output.WriteLine($"{tb} details: {d.Port(tb)["details"]!.ToJsonString()}");
        long whole = (long)details["rx-gso-whole"]!;
        // Super-frames crossed the switch whole: read whole from a's TAP, written whole to b's.
        Assert.True(whole > 0, $"no TCP super-frame came through the TAP whole: {details.ToJsonString()}");
        Assert.True(Detail(d, tb, "tx-gso-frames") >= whole / 2, $"b wrote {Detail(d, tb, "tx-gso-frames")} super-frames, a read {whole}");
        // Reads and writes went through io_uring batches, and no ring had to be given up.
        Assert.Equal("rx+tx", (string?)d.Port(ta)["features"]!["io-uring"]);
        Assert.Equal("on", (string?)d.Port(ta)["features"]!["offloads"]);
        Assert.True((long)details["ring-reads"]! > 0 && Detail(d, tb, "ring-writes") > 0, details.ToJsonString());
        Assert.Equal(0, (long)details["ring-failures"]!);
        Assert.Equal(0, (long)details["rx-unsupported-offload"]!);
        Assert.Equal(0, (long)details["rx-truncated"]!);
        Assert.Equal(0, (long)details["rx-oversize"]!);

        // TSO6: the same over IPv6 (iperf3's own counts; the exact transfer above was IPv4).
        var r = RunIperf6(a, b, "fd00:97::2", 4);
        Assert.True(r.Received >= r.Sent * 0.95 && r.Received <= r.Sent && r.Sent > 0, $"IPv6: sent {r.Sent}, received {r.Received}");
        output.WriteLine($"offloads on, IPv6: {r.Sent * 8.0 / 4 / 1e9:F2} Gbit/s, {r.Retransmits} retransmits");
        long whole6 = Detail(d, ta, "rx-gso-whole");
        Assert.True(whole6 > whole, $"no IPv6 super-frame: {whole} before, {whole6} after");
        Assert.Equal(0, Detail(d, ta, "rx-unsupported-offload"));
        Assert.False(d.HasExited);
    }

    [RootFact]
    public void Tcp_through_taps_with_offloads_no_large_buffers_and_no_io_uring_is_segmented_by_the_port_and_arrives_intact()
    {
        using var a = new TestNetns();
        using var b = new TestNetns();
        string s = Names.Random("");
        string ta = "vqa" + s, tb = "vqb" + s;
        // Also the plain path: one readv/writev per frame, no io_uring.
        using var d = Vswitchd.Start(Config(null, 0, false, (ta, a, ["10.95.0.1/24"]), (tb, b, ["10.95.0.2/24"])));

        var (sent, received) = Iperf.Run(a, b, "10.95.0.2", Seconds);
        Iperf.AssertIntact(sent, received);
        output.WriteLine($"offloads on, largePoolSize 0, IPv4: {sent * 8.0 / Seconds / 1e9:F2} Gbit/s ({sent} bytes in {Seconds} s)");

        var details = d.Port(ta)["details"]!;
        output.WriteLine($"{ta} details: {details.ToJsonString()}");
        long gso = (long)details["rx-gso-frames"]!;
        Assert.Equal(0, (long)details["rx-gso-whole"]!);
        Assert.True(gso > 0, $"no TCP super-frame came through the TAP: {details.ToJsonString()}");
        Assert.True((long)details["rx-gso-segments"]! > gso, details.ToJsonString());
        Assert.Equal(0, Detail(d, tb, "tx-gso-frames"));
        Assert.Equal("off", (string?)d.Port(ta)["features"]!["io-uring"]);
        Assert.Equal(0, (long)details["ring-writes"]!);
        Assert.Equal(0, (long)details["rx-unsupported-offload"]!);
    }

    [RootFact]
    public void Tcp_through_taps_with_offloads_off_arrives_intact_and_the_kernel_segments()
    {
        using var a = new TestNetns();
        using var b = new TestNetns();
        string s = Names.Random("");
        string ta = "vqa" + s, tb = "vqb" + s;
        using var d = Vswitchd.Start(Config(false, (ta, a, ["10.98.0.1/24"]), (tb, b, ["10.98.0.2/24"])));

        Assert.Contains("tcp-segmentation-offload: off", Features(a, ta));
        Assert.Equal("off", (string?)d.Port(ta)["features"]!["offloads"]);

        var (sent, received) = Iperf.Run(a, b, "10.98.0.2", Seconds);
        Iperf.AssertIntact(sent, received);
        output.WriteLine($"offloads off, IPv4: {sent * 8.0 / Seconds / 1e9:F2} Gbit/s ({sent} bytes in {Seconds} s)");

        var details = d.Port(ta)["details"]!;
        output.WriteLine($"{ta} details: {details.ToJsonString()}");
        Assert.Equal(0, (long)details["rx-gso-frames"]!);
        Assert.Equal(0, (long)details["rx-checksums-completed"]!);
        Assert.True((long)details["rx-frames"]! > 0);
    }

    /// <summary>
    /// Two offloading TapPorts joined by a test forwarding loop (no vswitchd): super-frames of ~44
    /// segments do not fit in a 32-packet batch, so every one is resumed across Receive calls, and
    /// a small pool makes the port wait for buffers too. Data must arrive exact, and the loop must
    /// not allocate in steady state.
    /// </summary>
    [RootFact]
    public void TapPorts_with_offloads_resume_super_frames_across_batches_without_allocating()
    {
        using var nsA = new TestNetns();
        using var nsB = new TestNetns();
        using var a = TapPort.Create(new TapOptions { Name = Names.Random("vqa"), Netns = nsA.Name, Setup = NetConfig.TapSetup(nsA.Name, ["10.96.0.1/24"]) });
        using var b = TapPort.Create(new TapOptions { Name = Names.Random("vqb"), Netns = nsB.Name, Setup = NetConfig.TapSetup(nsB.Name, ["10.96.0.2/24"]) });
        Assert.True(a.Offloads && b.Offloads);
        var stop = new StopFlag();
        Exception? loopError = null;
        var loop = new Thread(() => { try { Forward(a, b, stop); } catch (Exception e) { loopError = e; } }) { IsBackground = true };
        loop.Start();
        try
        {
            var (sent, received) = Iperf.Run(nsA, nsB, "10.96.0.2", 3);
            Iperf.AssertIntact(sent, received);
            output.WriteLine($"TapPort loop, offloads on: {sent * 8.0 / 3 / 1e9:F2} Gbit/s");
        }
        finally
        {
            stop.Value = true;
            loop.Join(TimeSpan.FromSeconds(5));
        }
        Assert.Null(loopError);
        output.WriteLine($"A: gso {a.RxGsoFrames} -> {a.RxGsoSegments} segments, csum {a.RxChecksumsCompleted}, pool-empty {a.RxPoolEmpty}, unsupported {a.RxUnsupportedOffload}; loop allocated {stop.AllocatedBytes} bytes");
        Assert.True(a.RxGsoFrames > 0 && a.RxGsoSegments > a.RxGsoFrames);
        Assert.Equal(0, a.RxUnsupportedOffload + a.RxTruncated + a.RxOversize);
        Assert.Equal(0, stop.AllocatedBytes);
    }

    private sealed class StopFlag { public volatile bool Value; public long AllocatedBytes = -1; }

    // Compiled optimised at once: an on-stack-replacement compile of this loop, done on this thread
    // partway through, allocates and would be counted against the forwarding path (see tests/VSwitch.Core.Tests/SteadyStateAllocations.cs).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static void Forward(TapPort a, TapPort b, StopFlag stop)
    {
        var pool = new PacketPool(96);
        var batch = new PacketBatch(32);
        using var ep = new EpollSet(4);
        ep.Add(a.PollFd, 0);
        ep.Add(b.PollFd, 1);
        long allocated = -1, frames = 0;
        while (!stop.Value)
        {
            // A frame left waiting in a port's scratch buffer keeps its PollFd readable (the port's eventfd).
            ep.Wait(1000);
            for (int round = 0; round < 4; round++)
            {
                int moved = 0, n;
                if ((n = a.Receive(batch, pool)) > 0) { moved += n; b.Transmit(batch); }
                if ((n = b.Receive(batch, pool)) > 0) { moved += n; a.Transmit(batch); }
                frames += moved;
                if (allocated < 0 && frames > 10_000) allocated = GC.GetAllocatedBytesForCurrentThread();
                if (moved == 0) break;
            }
        }
        stop.AllocatedBytes = allocated < 0 ? -1 : GC.GetAllocatedBytesForCurrentThread() - allocated;
        batch.ReleaseAll();
    }

    private static (long Sent, long Received, long Retransmits) RunIperf6(TestNetns client, TestNetns server, string serverIp, int seconds)
    {
        var srv = server.Start("iperf3", "-s", "-1", "-B", serverIp);
        try
        {
            Wait.Until(() => server.TryExec(TimeSpan.FromSeconds(5), "ss", "-ltn").StdOut.Contains(":5201"), TimeSpan.FromSeconds(10), "iperf3 server to listen");
            var r = client.TryExec(TimeSpan.FromSeconds(seconds + 30), "iperf3", "-6", "-c", serverIp, "-t", seconds.ToString(), "-J");
            Assert.True(r.ExitCode == 0, "iperf3 -6 client failed: " + r.Output);
            var j = JsonNode.Parse(r.StdOut)!["end"]!;
            return ((long)(double)j["sum_sent"]!["bytes"]!, (long)(double)j["sum_received"]!["bytes"]!,
                (long?)j["sum_sent"]!["retransmits"] ?? 0);
        }
        finally { Proc.KillQuietly(srv); srv.Dispose(); }
    }
}
