using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json;
using static VSwitch.Integration.Tests.VsctlHarness;

namespace VSwitch.Integration.Tests;

/// <summary>
/// vsctl vtep, fdb add --vtep and the overlay side of fdb show / show, against vswitchd without root: one daemon with
/// no configuration (so no VXLAN endpoint) and one whose config opens the endpoint on 127.0.0.1 (a plain UDP socket)
/// with a VXLAN network. No packets: the overlay's forwarding is tested in <see cref="OverlayTests"/>.
/// Build vsctl and vswitchd first.
/// </summary>
public sealed class VsctlOverlayTests
{
    private const string NoEndpointLine = "no VXLAN endpoint (set overlay.local in the config)";

    // The exit codes of the README: 3 not found, 4 conflict, 5 daemon unreachable, 6 invalid request.
    private const int NotFound = 3, Conflict = 4, Unreachable = 5, Invalid = 6;

    private static Result Fails(int exit, params string[] args)
    {
        var r = Vsctl(args);
        Assert.True(r.ExitCode == exit, $"vsctl {string.Join(' ', args)}: expected exit {exit}: {r}");
        Assert.StartsWith("vsctl: ", r.Stderr);
        return r;
    }

    /// <summary>The tables of <c>vtep ls</c> (after the endpoint line), each as rows of words with its header first.</summary>
    private static string[][][] Tables(Result r) =>
        r.Stdout.Split('\n').Skip(1).Select(l => l.Trim()).Aggregate(new List<List<string[]>>(), (acc, line) =>
        {
            if (line.Length == 0) { if (acc.Count == 0 || acc[^1].Count > 0) acc.Add([]); }
            else if (!line.StartsWith('(')) acc[^1].Add(Words(line));
            return acc;
        }).Where(t => t.Count > 0).Select(t => t.ToArray()).ToArray();

    [Theory]
    [InlineData("vtep", "add", "ov")]                                      // the VTEP is required
    [InlineData("vtep", "del", "ov")]
    [InlineData("vtep", "add", "ov", "10.9.9.2", "10.9.9.3")]             // one at a time
    [InlineData("fdb", "add", "ov", "02:00:00:00:00:07")]                  // --vtep is required (remote MACs only)
    [InlineData("fdb", "add", "ov", "--vtep", "10.9.9.2")]                 // so is the MAC
    public void BadUsage_Exits2_BeforeContactingTheDaemon(params string[] args)
    {
        var r = Vsctl(["--socket", "/tmp/nonexistent.sock", .. args]);
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.DoesNotContain("cannot reach", r.Stderr);
    }

    [Fact]
    public void Help_ListsVtep()
    {
        var r = Vsctl("--help");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("vtep", r.Stdout);
        Assert.Contains("--vtep", Vsctl("fdb", "add", "--help").Stdout);
    }

    [Fact]
    public void Unreachable_IsExit5_WithoutTheEndpointHint()
    {
        var r = Fails(Unreachable, "--socket", "/tmp/nonexistent.sock", "vtep", "add", "ov", "10.9.9.2");
        Assert.Contains("cannot reach", r.Stderr);
        Assert.DoesNotContain("VXLAN endpoint", r.Stderr);
    }

    /// <summary>
    /// vswitchd started with no config has no VXLAN endpoint, and the endpoint only comes from the config file:
    /// so no network can have a vni (the API refuses one, naming overlay.local), and vtep / remote MAC commands say why.
    /// </summary>
    [Fact]
    public void LiveDaemon_WithoutEndpoint_SaysSo()
    {
        using var daemon = Daemon.Start();
        string[] s = ["--socket", daemon.Socket];

        var ls = Ok([.. s, "vtep", "ls"]);
        Assert.Equal([NoEndpointLine], Lines(ls.Stdout));
        using (var doc = JsonDocument.Parse(Ok([.. s, "--json", "vtep", "ls"]).Stdout))
        {
            Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("local").ValueKind);
            Assert.Empty(doc.RootElement.GetProperty("networks").EnumerateArray());
            Assert.Empty(doc.RootElement.GetProperty("vteps").EnumerateArray());
        }

        // What the daemon does with a vni and no endpoint: refuses it, naming overlay.local.
        var vni = Fails(Invalid, [.. s, "network", "add", "ov", "--vni", "42"]);
        Assert.Contains("overlay.local", vni.Stderr);

        // No network "ov" then: the daemon's "no network" and the reason behind it.
        var vtep = Fails(NotFound, [.. s, "vtep", "add", "ov", "10.9.9.2"]);
        Assert.Contains("no network named 'ov'", vtep.Stderr);
        Assert.Contains("no VXLAN endpoint", vtep.Stderr);
        Assert.Contains("overlay.local", vtep.Stderr);
        var nosuch = Fails(NotFound, [.. s, "vtep", "add", "nosuch", "10.9.9.2"]);
        Assert.Contains("nosuch", nosuch.Stderr);

        var mac = Fails(NotFound, [.. s, "fdb", "add", "ov", "02:00:00:00:00:07", "--vtep", "10.9.9.2"]);
        Assert.Contains("no VXLAN endpoint", mac.Stderr);
        Assert.Contains("overlay.local", mac.Stderr);

        // A network without a vni has no VTEPs and no remote MACs.
        Ok([.. s, "network", "add", "plain"]);
        var plain = Fails(Invalid, [.. s, "vtep", "add", "plain", "10.9.9.2"]);
        Assert.Contains("no vni", plain.Stderr);
        var plainMac = Fails(Invalid, [.. s, "fdb", "add", "plain", "02:00:00:00:00:07", "--vtep", "10.9.9.2"]);
        Assert.Contains("no vni", plainMac.Stderr);
        Fails(NotFound, [.. s, "vtep", "del", "plain", "10.9.9.2"]);

        // Still just the line; show has no endpoint and no vteps; fdb show keeps its L2 columns.
        Assert.Equal([NoEndpointLine], Lines(Ok([.. s, "vtep", "ls"]).Stdout));
        var show = Ok([.. s, "show"]);
        Assert.DoesNotContain("VXLAN", show.Stdout);
        Assert.DoesNotContain("vteps", show.Stdout);
        Assert.Equal(["NETWORK", "VLAN", "MAC", "PORT", "AGE"], Words(Lines(Ok([.. s, "fdb", "show"]).Stdout)[0]));
    }

    [Fact]
    public void LiveDaemon_WithEndpoint_VtepsAndRemoteMacs()
    {
        using var daemon = EndpointDaemon.Start(out int port);
        string[] s = ["--socket", daemon.Socket];
        string endpoint = $"127.0.0.1:{port}";

        var ls = Ok([.. s, "vtep", "ls"]);
        Assert.Equal($"local VTEP: {endpoint} (port vxlan0)", Lines(ls.Stdout)[0]);
        var tables = Tables(ls);
        Assert.Equal(2, tables.Length);
        Assert.Equal([["NETWORK", "VNI", "MTU", "VTEPS"], ["ov", "42", "1450", "-"]], tables[0]);
        Assert.Equal([["VTEP", "RX-PKTS", "RX-BYTES", "TX-PKTS", "TX-BYTES"]], tables[1]);

        var add = Ok([.. s, "vtep", "add", "ov", "10.9.9.2"]);
        Assert.Contains("vtep 10.9.9.2 added to network ov (vni 42, 1 vtep)", add.Stdout);
        Ok([.. s, "vtep", "add", "ov", "10.9.9.3"]);
        tables = Tables(Ok([.. s, "vtep", "ls"]));
        Assert.Equal(["ov", "42", "1450", "10.9.9.2,10.9.9.3"], tables[0][1]);
        // A listed VTEP the endpoint has not exchanged packets with yet shows zeros.
        Assert.Equal([["10.9.9.2", "0", "0", "0", "0"], ["10.9.9.3", "0", "0", "0", "0"]], tables[1][1..]);

        var twice = Fails(Conflict, [.. s, "vtep", "add", "ov", "10.9.9.2"]);
        Assert.Contains("already", twice.Stderr);
        var nosuch = Fails(NotFound, [.. s, "vtep", "add", "nosuch", "10.9.9.2"]);
        Assert.Contains("no network named 'nosuch'", nosuch.Stderr);
        Assert.DoesNotContain("no VXLAN endpoint", nosuch.Stderr); // there is one: no hint
        var bad = Fails(Invalid, [.. s, "vtep", "add", "ov", "300.1.1.1"]);
        Assert.Contains("300.1.1.1", bad.Stderr);
        var self = Fails(Invalid, [.. s, "vtep", "add", "ov", "127.0.0.1"]);
        Assert.Contains("own VTEP", self.Stderr);
        var plain = Fails(Invalid, [.. s, "vtep", "add", "plain", "10.9.9.2"]);
        Assert.Contains("no vni", plain.Stderr);

        // Static remote MACs: fdb show grows a VTEP column.
        var mac = Ok([.. s, "fdb", "add", "ov", "02:00:00:00:00:07", "--vtep", "10.9.9.2"]);
        Assert.Contains("static MAC 02:00:00:00:00:07 on network ov behind vtep 10.9.9.2 (port vxlan0)", mac.Stdout);
        var fdb = Lines(Ok([.. s, "fdb", "show"]).Stdout);
        Assert.Equal(["NETWORK", "VLAN", "MAC", "PORT", "VTEP", "AGE"], Words(fdb[0]));
        Assert.Equal([["ov", "0", "02:00:00:00:00:07", "vxlan0", "10.9.9.2", "static"]], fdb.Skip(1).Select(Words).ToArray());
        using (var doc = JsonDocument.Parse(Ok([.. s, "--json", "fdb", "show"]).Stdout))
            Assert.Equal("10.9.9.2", Assert.Single(doc.RootElement.EnumerateArray()).GetProperty("vtep").GetString());
        Assert.Contains("02:00:00:00:00:07", Ok([.. s, "--json", "fdb", "add", "ov", "02:00:00:00:00:07", "--vtep", "10.9.9.2"]).Stdout);

        Assert.Contains("no vni", Fails(Invalid, [.. s, "fdb", "add", "plain", "02:00:00:00:00:08", "--vtep", "10.9.9.2"]).Stderr);
        Assert.Contains("mac", Fails(Invalid, [.. s, "fdb", "add", "ov", "ff:ff:ff:ff:ff:ff", "--vtep", "10.9.9.2"]).Stderr);
        Assert.Contains("300.1.1.1", Fails(Invalid, [.. s, "fdb", "add", "ov", "02:00:00:00:00:08", "--vtep", "300.1.1.1"]).Stderr);

        var show = Ok([.. s, "show"]);
        Assert.Contains($"VXLAN endpoint {endpoint}", show.Stdout);
        Assert.Contains("vni 42, vteps 10.9.9.2, 10.9.9.3", show.Stdout);
        Assert.Single(Lines(show.Stdout), l => l.StartsWith("vni ", StringComparison.Ordinal)); // only under the VXLAN network

        using (var doc = JsonDocument.Parse(Ok([.. s, "--json", "vtep", "ls"]).Stdout))
        {
            Assert.Equal("127.0.0.1", doc.RootElement.GetProperty("local").GetString());
            Assert.Equal(port, doc.RootElement.GetProperty("port").GetInt32());
            var ov = Assert.Single(doc.RootElement.GetProperty("networks").EnumerateArray());
            Assert.Equal(42, ov.GetProperty("vni").GetInt32());
            Assert.Equal(new[] { "10.9.9.2", "10.9.9.3" }, ov.GetProperty("vteps").EnumerateArray().Select(v => v.GetString()!).ToArray());
        }
        using (var doc = JsonDocument.Parse(Ok([.. s, "--json", "vtep", "add", "ov", "10.9.9.4"]).Stdout))
            Assert.Contains("10.9.9.4", doc.RootElement.GetProperty("vteps").EnumerateArray().Select(v => v.GetString()));

        Assert.Equal("vtep 10.9.9.2 deleted from network ov", Ok([.. s, "vtep", "del", "ov", "10.9.9.2"]).Stdout.Trim()); // one line
        Ok([.. s, "vtep", "rm", "ov", "10.9.9.4"]);
        Assert.Equal(["ov", "42", "1450", "10.9.9.3"], Tables(Ok([.. s, "vtep", "ls"]))[0][1]);
        var gone = Fails(NotFound, [.. s, "vtep", "del", "ov", "10.9.9.2"]);
        Assert.Contains("not in network 'ov'", gone.Stderr);
        Assert.Contains("no network named 'nosuch'", Fails(NotFound, [.. s, "vtep", "del", "nosuch", "10.9.9.3"]).Stderr);
    }

    /// <summary>A daemon with a VXLAN endpoint accepts VXLAN networks through the API (their MTU is 1450).</summary>
    [Fact]
    public void LiveDaemon_WithEndpoint_NetworkAddVni()
    {
        using var daemon = EndpointDaemon.Start(out _);
        string[] s = ["--socket", daemon.Socket];
        Ok([.. s, "network", "add", "ov2", "--vni", "43"]);
        Ok([.. s, "vtep", "add", "ov2", "10.9.9.2"]);
        Assert.Contains(["ov2", "43", "1450", "10.9.9.2"], Tables(Ok([.. s, "vtep", "ls"]))[0]);
    }

    /// <summary>vswitchd with a config that opens its VXLAN endpoint on 127.0.0.1 (a free UDP port), a VXLAN network "ov" (vni 42) and "plain".</summary>
    private static class EndpointDaemon
    {
        public static VsctlHarness.Daemon Start(out int port)
        {
            using (var probe = new UdpClient(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0)))
                port = ((System.Net.IPEndPoint)probe.Client.LocalEndPoint!).Port;
            return VsctlHarness.Daemon.Start($$"""
                {
                  "overlay": { "local": "127.0.0.1", "port": {{port}} },
                  "networks": [ { "name": "ov", "vni": 42 }, { "name": "plain" } ]
                }
                """);
        }
    }
}
