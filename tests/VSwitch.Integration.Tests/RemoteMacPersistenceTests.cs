using System.Net.Sockets;
using System.Text.Json.Nodes;
using static VSwitch.Integration.Tests.VsctlHarness;

namespace VSwitch.Integration.Tests;

/// <summary>
/// A static remote MAC is acknowledged state: it is in the state database before the API answers, so it
/// survives a crash (SIGKILL); a flush keeps it (learned entries only); <c>vsctl fdb del</c> forgets it for good.
/// Needs no root: the VXLAN endpoint is a plain UDP socket on 127.0.0.1 and no TAP is made.
/// </summary>
public sealed class RemoteMacPersistenceTests
{
    private const string Mac = "02:00:00:00:00:07";

    [Fact]
    public void A_static_remote_mac_survives_a_crash_stays_through_a_flush_and_leaves_with_fdb_del()
    {
        int port;
        using (var probe = new UdpClient(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0)))
            port = ((System.Net.IPEndPoint)probe.Client.LocalEndPoint!).Port;
        string config = $$"""{ "overlay": { "local": "127.0.0.1", "port": {{port}} }, "networks": [ { "name": "ov", "vni": 42 } ] }""";

        string dir;
        using (var d = Vswitchd.Start(config))
        {
            d.KeepDir = true;
            dir = d.Dir;
            var (status, body) = d.Send(HttpMethod.Post, "/v1/fdb", new { network = "ov", mac = Mac, vtep = "10.9.9.2" });
            Assert.True(status == 201, $"POST /v1/fdb: {status} {body}");
            d.Kill(); // the crash case: right after the acknowledgement, no clean shutdown
        }
        try
        {
            using (var d = Vswitchd.StartIn(dir, config))
            {
                d.KeepDir = true;
                var entry = Assert.Single(Fdb(d));
                Assert.Equal(Mac, (string)entry!["mac"]!);
                Assert.Equal("10.9.9.2", (string?)entry["vtep"]);
                Assert.Equal("vxlan0", (string)entry["port"]!);
                Assert.True((bool)entry["static"]!);

                // A flush forgets learned entries only.
                var (status, body) = d.Send(HttpMethod.Delete, "/v1/fdb?network=ov");
                Assert.Equal(200, status);
                Assert.Equal(0, (int)body!["removed"]!);
                Assert.Single(Fdb(d));

                var bad = Vsctl("--socket", d.Socket, "fdb", "del", "ov", "zz:00");
                Assert.Equal(6, bad.ExitCode); // invalid
                Assert.Contains("'zz:00'", bad.Stderr);
                var del = Vsctl("--socket", d.Socket, "fdb", "del", "ov", Mac);
                Assert.True(del.ExitCode == 0, del.ToString());
                Assert.Empty(Fdb(d));
                var again = Vsctl("--socket", d.Socket, "fdb", "del", "ov", Mac);
                Assert.Equal(3, again.ExitCode); // not found
                Assert.Contains("no entry for " + Mac, again.Stderr);
                d.Kill();
            }
            using (var d = Vswitchd.StartIn(dir, config))
            {
                d.KeepDir = true;
                Assert.Empty(Fdb(d)); // deleted means deleted, also after a restart
            }
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    private static JsonArray Fdb(Vswitchd d) => d.Get("/v1/fdb?network=ov").AsArray();
}
