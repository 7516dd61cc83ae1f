using System.Diagnostics;
using System.Text.Json.Nodes;

namespace VSwitch.Integration.Tests;

/// <summary>
/// Issue 17, IPFIX: vswitchd exports the flows of an iperf3 run to Debian's nfcapd (nfdump 1.7); nfdump shows the
/// transfer with its bytes within 1 % of what iperf3 sent, and tshark's cflow dissector reads the templates and data
/// sets vswitchd sent without an error.
/// </summary>
[Collection("netns")]
public class IpfixTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [RootFact]
    public void An_iperf3_run_reaches_nfcapd_with_its_bytes_and_tshark_decodes_every_message()
    {
        Assert.True(File.Exists("/usr/bin/nfcapd"), "nfdump (nfcapd) is installed by tools/test.sh");
        using var a = new TestNetns("vipf-");
        using var b = new TestNetns("vipf-");
        string s = Names.Random("");
        var config = new JsonObject
        {
            ["networks"] = new JsonArray(new JsonObject { ["name"] = "blue" }),
            ["ports"] = new JsonArray(
                new JsonObject { ["name"] = "ipa" + s, ["type"] = "tap", ["network"] = "blue", ["netns"] = a.Name, ["addresses"] = new JsonArray("10.95.0.1/24") },
                new JsonObject { ["name"] = "ipb" + s, ["type"] = "tap", ["network"] = "blue", ["netns"] = b.Name, ["addresses"] = new JsonArray("10.95.0.2/24") }),
        }.ToJsonString();
        using var d = Vswitchd.Start(config);
        int port = 20000 + Random.Shared.Next(30000);
        string flows = Path.Combine(d.Dir, "nfcapd"), pcap = Path.Combine(d.Dir, "ipfix.pcap");
        Directory.CreateDirectory(flows);
        var nfcapd = Proc.Start("nfcapd", "-p", port.ToString(), "-b", "127.0.0.1", "-w", flows, "-t", "3600");
        var dump = Proc.Start("tcpdump", "-i", "lo", "--immediate-mode", "-U", "-w", pcap, "udp", "port", port.ToString());
        Process? srv = null;
        try
        {
            var listening = Task.Run(async () =>
            {
                for (string? line; (line = await dump.StandardError.ReadLineAsync()) is not null;)
                    if (line.Contains("listening on")) return true;
                return false;
            });
            Assert.True(listening.Wait(TimeSpan.FromSeconds(10)) && listening.Result, "tcpdump did not start");
            var (st, body) = d.Send(HttpMethod.Put, "/v1/ipfix", new { collector = $"127.0.0.1:{port}", activeTimeoutSeconds = 60, idleTimeoutSeconds = 1, domainId = 7 });
            Assert.True(st == 200, $"{st} {body}");

            srv = b.Start("iperf3", "-s", "-1", "-B", "10.95.0.2");
            Wait.Until(() => b.TryExec(TimeSpan.FromSeconds(5), "ss", "-ltn").StdOut.Contains(":5201"), TimeSpan.FromSeconds(10), "iperf3 to listen");
            var r = a.TryExec(TimeSpan.FromSeconds(40), "iperf3", "-c", "10.95.0.2", "-t", "3", "-J");
            Assert.True(r.ExitCode == 0, "iperf3: " + r.Output);
            var j = JsonNode.Parse(r.StdOut)!;
            long sent = (long)(double)j["end"]!["sum_sent"]!["bytes"]!;
            int localPort = (int)j["start"]!["connected"]![0]!["local_port"]!;

            // The transfer's flows are idle (1 s) and the exporter has passed over them since (once a second).
            Wait.Until(() => d.Get("/v1/flows?match=tcp,tp_dst=5201").AsArray().All(f => (double)f!["idleSeconds"]! >= 2.5)
                && (long)d.Get("/v1/ipfix")["records"]! > 0, TimeSpan.FromSeconds(20), "the iperf3 flows to go idle and be exported");
            // One more pass: the exporter's tick after the 2.5 s mark has sent them.
            long records = (long)d.Get("/v1/ipfix")["records"]!;
            Wait.Until(() => (long)d.Get("/v1/ipfix")["messages"]! > 0 && d.Get("/v1/ipfix")["sendErrors"]!.GetValue<long>() == 0, TimeSpan.FromSeconds(5), "the messages to go");
            Proc.Run("kill", "-TERM", nfcapd.Id.ToString()); // nfcapd writes its file out on SIGTERM
            Assert.True(nfcapd.WaitForExit(10_000), "nfcapd did not stop");
            Proc.Run("kill", "-INT", dump.Id.ToString());
            Assert.True(dump.WaitForExit(10_000), "tcpdump did not stop");

            var nf = Proc.Run(TimeSpan.FromSeconds(30), "nfdump", "-R", flows, "-q", "-N", "-A", "srcip,dstip,srcport,dstport,proto",
                "-o", "fmt:%sa %da %sp %dp %pkt %byt", $"proto tcp and src port {localPort} and dst port 5201");
            Assert.True(nf.ExitCode == 0, nf.Output);
            var line = nf.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Single();
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(["10.95.0.1", "10.95.0.2"], f[..2]);
            long bytes = long.Parse(f[5]);
            output.WriteLine($"iperf3 sent {sent} bytes; nfdump: {line}; ratio {(double)bytes / sent:0.00000}; exporter records {records}");
            // IPFIX counts IP octets (headers included): a little more than the payload iperf3 counts, never less.
            Assert.InRange((double)bytes / sent, 1.0, 1.01);

            // tshark's cflow dissector: templates 256/257 and data sets, no malformed or warning expert info.
            string decode = $"udp.port=={port},cflow";
            var bad = Proc.Run(TimeSpan.FromSeconds(30), "tshark", "-r", pcap, "-d", decode, "-Y", "_ws.malformed || _ws.expert.severity >= \"warning\"");
            Assert.True(bad.ExitCode == 0 && bad.StdOut.Trim().Length == 0, "tshark found errors: " + bad.Output);
            var templates = Proc.Run(TimeSpan.FromSeconds(30), "tshark", "-r", pcap, "-d", decode, "-Y", "cflow.template_id == 256 && cflow.template_id == 257");
            Assert.True(templates.StdOut.Trim().Length > 0, "no template set: " + templates.Output);
            var data = Proc.Run(TimeSpan.FromSeconds(30), "tshark", "-r", pcap, "-d", decode, "-T", "fields", "-e", "cflow.od_id", "-e", "cflow.srcport", "-Y", "cflow.flowset_id == 256");
            Assert.Contains(data.StdOut.Split('\n'), l => l.StartsWith("7\t") && l.Contains(localPort.ToString()));

            Assert.Equal(204, d.Send(HttpMethod.Delete, "/v1/ipfix").Status);
            Assert.False((bool)d.Get("/v1/ipfix")["enabled"]!);
        }
        finally
        {
            if (srv is not null) Proc.KillQuietly(srv);
            Proc.KillQuietly(nfcapd);
            Proc.KillQuietly(dump);
        }
    }

    [RootFact]
    public void Bad_settings_are_refused_naming_the_bad_value()
    {
        using var d = Vswitchd.Start("""{"networks": [{"name": "blue"}]}""");
        foreach (var (body, says) in new (object, string)[]
        {
            (new { collector = "127.0.0.1" }, "collector '127.0.0.1' must be HOST:PORT"),
            (new { collector = "127.0.0.1:0" }, "collector '127.0.0.1:0'"),
            (new { collector = "127.0.0.1:4739", sampling = 0 }, "sampling 0"),
            (new { collector = "127.0.0.1:4739", activeTimeoutSeconds = -1 }, "activeTimeoutSeconds -1"),
            (new { collector = "no-such-host.invalid:4739" }, "cannot resolve 'no-such-host.invalid'"),
        })
        {
            var (st, err) = d.Send(HttpMethod.Put, "/v1/ipfix", body);
            Assert.Equal(400, st);
            Assert.Contains(says, (string)err!["error"]!);
        }
        Assert.Equal(404, d.Send(HttpMethod.Delete, "/v1/ipfix").Status);
    }
}
