using System.Diagnostics;
using System.Text.Json.Nodes;

namespace VSwitch.Integration.Tests;

/// <summary>
/// Issue 17, capture: `vsctl capture` on a TAP port read by tshark (from a file and through a pipe), its filter on a
/// port that also carries iperf3, `--drops` with scapy's malformed frames (the reason in each packet's comment), and a
/// reader that does not read: forwarding goes on and the loss is reported at the end.
/// </summary>
[Collection("netns")]
public class CaptureTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static string TapConfig(string s, TestNetns a, TestNetns b) => new JsonObject
    {
        ["networks"] = new JsonArray(new JsonObject { ["name"] = "blue" }),
        ["ports"] = new JsonArray(
            new JsonObject { ["name"] = "cpa" + s, ["type"] = "tap", ["network"] = "blue", ["netns"] = a.Name, ["addresses"] = new JsonArray("10.97.0.1/24") },
            new JsonObject { ["name"] = "cpb" + s, ["type"] = "tap", ["network"] = "blue", ["netns"] = b.Name, ["addresses"] = new JsonArray("10.97.0.2/24") }),
    }.ToJsonString();

    /// <summary>A shell line run with the daemon's socket in VSWITCH_SOCKET and vsctl as $VSCTL.</summary>
    private static ProcessResult Shell(Vswitchd d, string line, int seconds = 60) =>
        Proc.Run(TimeSpan.FromSeconds(seconds), new Dictionary<string, string> { ["VSWITCH_SOCKET"] = d.Socket, ["VSCTL"] = Repo.Vsctl }, "sh", "-c", line);

    private static Process StartShell(Vswitchd d, string line)
    {
        var psi = new ProcessStartInfo("sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(line);
        psi.Environment["VSWITCH_SOCKET"] = d.Socket;
        psi.Environment["VSCTL"] = Repo.Vsctl;
        return Process.Start(psi)!;
    }

    /// <summary>tshark's fields of each frame of a file, one line a frame.</summary>
    private static string[] Fields(string file, params string[] fields)
    {
        var args = new List<string> { "-r", file, "-T", "fields" };
        foreach (var f in fields) args.AddRange(["-e", f]);
        var r = Proc.Run(TimeSpan.FromSeconds(30), "tshark", [.. args]);
        Assert.True(r.ExitCode == 0, "tshark: " + r.Output);
        return r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>Pings in the background, long enough for a capture started alongside to see its frames.</summary>
    private static Process PingFor(TestNetns from, string to, int count) => from.Start("ping", "-c", count.ToString(), "-i", "0.2", to);

    [RootFact]
    public void A_ping_captured_on_a_tap_port_is_decoded_by_tshark_from_a_file_and_through_a_pipe()
    {
        using var a = new TestNetns("vcap-");
        using var b = new TestNetns("vcap-");
        string s = Names.Random("");
        using var d = Vswitchd.Start(TapConfig(s, a, b));
        string file = Path.Combine(d.Dir, "ping.pcapng");
        using var ping = PingFor(a, "10.97.0.2", 40);
        try
        {
            // --count 4: the capture stops by itself after 4 frames, while the ping goes on.
            var r = Shell(d, $"$VSCTL capture cpa{s} --filter icmp --count 4 -w {file}");
            Assert.True(r.ExitCode == 0, r.Output);
            Assert.Contains("4 packets captured", r.StdErr);
            var frames = Fields(file, "frame.interface_name", "ip.src", "ip.dst", "icmp.type");
            Assert.Equal(4, frames.Length);
            Assert.All(frames, f => Assert.StartsWith("cpa" + s, f));
            Assert.Contains(frames, f => f.EndsWith("\t10.97.0.1\t10.97.0.2\t8")); // echo request, A to B
            Assert.Contains(frames, f => f.EndsWith("\t10.97.0.2\t10.97.0.1\t0")); // echo reply, B to A

            // The same live through a pipe: tshark reads pcapng from stdin as vsctl passes it on.
            var piped = Shell(d, $"$VSCTL capture cpa{s} --filter icmp --count 4 -w - | tshark -r - -T fields -e ip.src -e ip.dst -e icmp.type");
            Assert.True(piped.ExitCode == 0, piped.Output);
            var lines = piped.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(4, lines.Length);
            Assert.Contains("10.97.0.1\t10.97.0.2\t8", lines);
            Assert.Contains("10.97.0.2\t10.97.0.1\t0", lines);
        }
        finally { Proc.KillQuietly(ping); }
    }

    [RootFact]
    public void A_filter_on_a_port_carrying_iperf3_and_ping_keeps_only_icmp()
    {
        using var a = new TestNetns("vcap-");
        using var b = new TestNetns("vcap-");
        string s = Names.Random("");
        using var d = Vswitchd.Start(TapConfig(s, a, b));
        string file = Path.Combine(d.Dir, "icmp.pcapng"), all = Path.Combine(d.Dir, "all.pcapng");
        var srv = b.Start("iperf3", "-s", "-1", "-B", "10.97.0.2");
        Process? client = null;
        using var ping = PingFor(a, "10.97.0.2", 40);
        try
        {
            Wait.Until(() => b.TryExec(TimeSpan.FromSeconds(5), "ss", "-ltn").StdOut.Contains(":5201"), TimeSpan.FromSeconds(10), "iperf3 to listen");
            client = a.Start("iperf3", "-c", "10.97.0.2", "-t", "6");
            // Without the filter the port's frames are mostly iperf3's TCP: the filter has something to remove.
            var r0 = Shell(d, $"$VSCTL capture cpa{s} --count 200 --snaplen 128 -w {all}");
            Assert.True(r0.ExitCode == 0, r0.Output);
            Assert.Contains(Fields(all, "tcp.dstport"), f => f == "5201");
            var r = Shell(d, $"$VSCTL capture cpa{s} --filter icmp --count 6 -w {file}");
            Assert.True(r.ExitCode == 0, r.Output);
            var protocols = Fields(file, "ip.proto");
            Assert.Equal(6, protocols.Length);
            Assert.All(protocols, p => Assert.Equal("1", p));
        }
        finally
        {
            if (client is not null) Proc.KillQuietly(client);
            Proc.KillQuietly(srv);
            Proc.KillQuietly(ping);
        }
    }

    [RootFact]
    public void Drops_are_captured_with_their_reason_and_stage_as_the_packet_comment()
    {
        Assert.True(File.Exists("/usr/bin/python3"), "python3-scapy is installed by tools/test.sh");
        using var a = new TestNetns("vcap-");
        using var b = new TestNetns("vcap-");
        string s = Names.Random("");
        using var d = Vswitchd.Start(TapConfig(s, a, b));
        string file = Path.Combine(d.Dir, "drops.pcapng");
        // Malformed IPv4 (IHL 2, less than the header) and a TCP header cut short, again and again until the capture has 4.
        string script = "import logging, time\nlogging.getLogger('scapy').setLevel(logging.ERROR)\nfrom scapy.all import *\n"
            + "for i in range(100):\n"
            + $"    sendp(Ether(dst='ff:ff:ff:ff:ff:ff')/IP(src='10.97.0.1', dst='10.97.0.2', ihl=2)/Raw(b'x'*40), iface='cpa{s}', verbose=False)\n"
            + $"    sendp(Ether(dst='ff:ff:ff:ff:ff:ff')/IP(src='10.97.0.1', dst='10.97.0.2', proto=6, len=24)/Raw(b'yyyy'), iface='cpa{s}', verbose=False)\n"
            + "    time.sleep(0.1)\n";
        using var scapy = a.Start("/usr/bin/python3", "-c", script);
        try
        {
            var r = Shell(d, $"$VSCTL capture --drops --count 4 -w {file}");
            Assert.True(r.ExitCode == 0, r.Output);
            var frames = Fields(file, "frame.interface_name", "frame.comment");
            Assert.Equal(4, frames.Length);
            Assert.Contains(frames, f => f == $"cpa{s}\tdrop: bad-ihl (stage classify)");
            Assert.Contains(frames, f => f == $"cpa{s}\tdrop: truncated-tcp (stage classify)");
            // --reason keeps one reason.
            var only = Shell(d, $"$VSCTL capture --drops --reason bad-ihl --count 3 -w - | tshark -r - -T fields -e frame.comment");
            Assert.True(only.ExitCode == 0, only.Output);
            Assert.Equal(["drop: bad-ihl (stage classify)", "drop: bad-ihl (stage classify)", "drop: bad-ihl (stage classify)"],
                only.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }
        finally { Proc.KillQuietly(scapy); }
    }

    [RootFact]
    public void A_reader_that_does_not_read_leaves_forwarding_alone_and_the_loss_is_reported()
    {
        using var a = new TestNetns("vcap-");
        using var b = new TestNetns("vcap-");
        string s = Names.Random("");
        using var d = Vswitchd.Start(TapConfig(s, a, b));
        string file = Path.Combine(d.Dir, "slow.pcapng");
        double alone = Iperf3Bits(a, b, 3);
        // The reader of vsctl's stdout sleeps through the whole transfer: the pipe, the socket and then the ring fill.
        using var stalled = StartShell(d, $"$VSCTL capture cpa{s} --duration 5 -w - | (sleep 9; cat > {file})");
        try
        {
            Wait.Until(() => d.Get("/v1/stats")["captures"]!.AsArray().Count > 0, TimeSpan.FromSeconds(10), "the capture to be armed");
            double stalledRate = Iperf3Bits(a, b, 3);
            Assert.True(stalled.WaitForExit(30_000), "vsctl capture did not end");
            string err = stalled.StandardError.ReadToEnd();
            Assert.True(stalled.ExitCode == 0, err);
            // Forwarding did not wait for the reader. On 2 shared cores the figures are noisy, but a datapath that waited would fall to ~0.
            output.WriteLine($"iperf3 alone {alone / 1e9:0.00} Gbit/s, with a stalled capture {stalledRate / 1e9:0.00} Gbit/s; vsctl: {err.Trim()}");
            Assert.True(stalledRate > alone * 0.5, $"iperf3 {alone / 1e9:0.00} Gbit/s alone, {stalledRate / 1e9:0.00} Gbit/s with a stalled capture");
            Assert.Matches(@"[1-9]\d* packets lost by the capture", err);
            // The file ends with the statistics: tshark reads it whole.
            Assert.True(Fields(file, "frame.number").Length > 0);
        }
        finally { Proc.KillQuietly(stalled); }
    }

    private static double Iperf3Bits(TestNetns client, TestNetns server, int seconds)
    {
        var srv = server.Start("iperf3", "-s", "-1", "-B", "10.97.0.2");
        try
        {
            Wait.Until(() => server.TryExec(TimeSpan.FromSeconds(5), "ss", "-ltn").StdOut.Contains(":5201"), TimeSpan.FromSeconds(10), "iperf3 to listen");
            var r = client.TryExec(TimeSpan.FromSeconds(seconds + 30), "iperf3", "-c", "10.97.0.2", "-t", seconds.ToString(), "-J");
            Assert.True(r.ExitCode == 0, "iperf3: " + r.Output);
            return (double)JsonNode.Parse(r.StdOut)!["end"]!["sum_received"]!["bits_per_second"]!;
        }
        finally { Proc.KillQuietly(srv); }
    }
}
