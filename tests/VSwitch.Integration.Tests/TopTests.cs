using System.Text.Json.Nodes;

namespace VSwitch.Integration.Tests;

/// <summary>Issue 17, live rates: `vsctl top --once` while iperf3 runs shows the port's rate, the TCP flow and the thread's load.</summary>
[Collection("netns")]
public class TopTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [RootFact]
    public void Top_shows_the_rates_of_a_port_carrying_iperf3_its_flow_and_the_threads_load()
    {
        using var a = new TestNetns("vtop-");
        using var b = new TestNetns("vtop-");
        string s = Names.Random("");
        string pa = "tpa" + s, pb = "tpb" + s;
        var config = new JsonObject
        {
            ["networks"] = new JsonArray(new JsonObject { ["name"] = "blue" }),
            ["ports"] = new JsonArray(
                new JsonObject { ["name"] = pa, ["type"] = "tap", ["network"] = "blue", ["netns"] = a.Name, ["addresses"] = new JsonArray("10.94.0.1/24") },
                new JsonObject { ["name"] = pb, ["type"] = "tap", ["network"] = "blue", ["netns"] = b.Name, ["addresses"] = new JsonArray("10.94.0.2/24") }),
        }.ToJsonString();
        using var d = Vswitchd.Start(config);
        // Idle first: nothing moves, so the rate the test sees later is iperf3's.
        var idle = JsonNode.Parse(VsctlHarness.Ok("--socket", d.Socket, "top", "--once", "--json").Stdout)!;
        Assert.True((double)idle["ports"]!.AsArray().First(p => (string)p!["name"]! == pa)!["rxBps"]! < 1e6, idle.ToJsonString());

        var srv = b.Start("iperf3", "-s", "-1", "-B", "10.94.0.2");
        System.Diagnostics.Process? client = null;
        try
        {
            Wait.Until(() => b.TryExec(TimeSpan.FromSeconds(5), "ss", "-ltn").StdOut.Contains(":5201"), TimeSpan.FromSeconds(10), "iperf3 to listen");
            client = a.Start("iperf3", "-c", "10.94.0.2", "-t", "5");
            Wait.Until(() => (long)d.Port(pa)["counters"]!["rxBytes"]! > 50_000_000, TimeSpan.FromSeconds(10), "iperf3 to be under way");
            var top = JsonNode.Parse(VsctlHarness.Ok("--socket", d.Socket, "top", "--once", "--json").Stdout)!;
            output.WriteLine(top.ToJsonString());
            var port = top["ports"]!.AsArray().First(p => (string)p!["name"]! == pa)!;
            Assert.True((double)port["rxBps"]! > 100e6, $"{pa} received {(double)port["rxBps"]! / 1e6:0} Mbit/s while iperf3 ran");
            var flow = top["flows"]!.AsArray().First()!;
            Assert.Contains("tp_dst=5201", (string)flow["flow"]!);
            var thread = top["threads"]!.AsArray().Single()!;
            Assert.True((double)thread["cpuPercent"]! > 1, $"datapath thread load {(double)thread["cpuPercent"]!}%");
            Assert.True((double)thread["rxPps"]! > 0);

            var text = VsctlHarness.Ok("--socket", d.Socket, "top", "--once").Stdout;
            Assert.Contains("RX-BPS", text);
            Assert.Contains(pa, text);
            Assert.Contains("vswitch-dp0", text);
        }
        finally
        {
            if (client is not null) Proc.KillQuietly(client);
            Proc.KillQuietly(srv);
        }
    }
}
