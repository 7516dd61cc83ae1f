using System.Net.Sockets;
using System.Text.Json;
using static VSwitch.Integration.Tests.VsctlHarness;

namespace VSwitch.Integration.Tests;

/// <summary>
/// vsctl as a user runs it: the built tool (tools/vsctl/bin/CONFIG/net10.0) in a child process, and for the
/// live tests a vswitchd with no configuration on a private socket, which creates nothing and needs no root.
/// The test project does not reference vsctl or vswitchd; build VSwitch.sln first. Plumbing: <see cref="VsctlHarness"/>.
/// </summary>
public sealed class VsctlTests
{
    [Fact]
    public void MissingSocket_Exits5_AndSaysTheDaemonCannotBeReached()
    {
        string socket = $"/tmp/nonexistent-{Guid.NewGuid():N}.sock";
        var r = Vsctl("--socket", socket, "port", "ls");
        Assert.Equal(5, r.ExitCode); // daemon unreachable
        Assert.Contains("cannot reach vswitchd", r.Stderr);
        Assert.Contains(socket, r.Stderr);
        Assert.Contains("is it running?", r.Stderr);
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void SocketNobodyListensOn_Exits5_ConnectionRefused()
    {
        string socket = $"/tmp/vst-stale-{Guid.NewGuid():N}.sock";
        try
        {
            // Like a socket file a dead daemon left behind: it exists, nobody listens on it. (Kept open
            // while vsctl runs: .NET unlinks the file when the socket that bound it is disposed.)
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.Bind(new UnixDomainSocketEndPoint(socket));
            var r = Vsctl("--socket", socket, "show");
            Assert.Equal(5, r.ExitCode); // daemon unreachable
            Assert.Contains($"cannot reach vswitchd at {socket}: connection refused", r.Stderr);
        }
        finally { File.Delete(socket); }
    }

    [Fact]
    public void UnknownSubcommand_Exits2()
    {
        var r = Vsctl("--socket", "/tmp/nonexistent.sock", "frobnicate");
        Assert.Equal(2, r.ExitCode);
        Assert.StartsWith("vsctl: ", r.Stderr);
    }

    [Theory]
    [InlineData("network", "add", "blue", "--vlan", "ten")]        // not a number
    [InlineData("port", "add", "p1", "--network", "blue", "--type", "veth")] // not a port type
    [InlineData("port", "add", "p1", "--type", "tap")]             // --network is required
    [InlineData("port", "add", "p1", "--network", "blue", "--type", "tap", "--trunks", "10,x")]
    [InlineData("port", "add", "p1", "--network", "blue", "--type", "tap", "--native-vlan", "5")] // native VLAN without --trunks
    [InlineData("fdb", "flush", "--network", "blue", "--port", "p1")]
    public void BadUsage_Exits2_BeforeContactingTheDaemon(params string[] args)
    {
        var r = Vsctl(["--socket", "/tmp/nonexistent.sock", .. args]);
        Assert.Equal(2, r.ExitCode);
        Assert.DoesNotContain("cannot reach", r.Stderr);
    }

    [Fact]
    public void Help_Exits0_AndListsTheCommandGroups()
    {
        var r = Vsctl("--help");
        Assert.Equal(0, r.ExitCode);
        foreach (string group in new[] { "show", "network", "port", "fdb", "stats" })
            Assert.Contains(group, r.Stdout);
    }

    [Fact]
    public void LiveDaemon_NetworkAddListInspectRemove()
    {
        using var daemon = Daemon.Start();
        string[] s = ["--socket", daemon.Socket];

        var add = Vsctl([.. s, "network", "add", "blue", "--vlan", "10"]);
        Assert.True(add.ExitCode == 0, add.ToString());

        var ls = Vsctl([.. s, "network", "ls"]);
        Assert.True(ls.ExitCode == 0, ls.ToString());
        var lines = ls.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["NAME", "VLAN", "VNI", "AGING", "PORTS"], lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(["blue", "10", "-", "300", "0"], lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries));

        var json = Vsctl([.. s, "--json", "network", "ls"]);
        Assert.True(json.ExitCode == 0, json.ToString());
        using (var doc = JsonDocument.Parse(json.Stdout))
        {
            var net = Assert.Single(doc.RootElement.EnumerateArray());
            Assert.Equal("blue", net.GetProperty("name").GetString());
            Assert.Equal(10, net.GetProperty("vlan").GetInt32());
        }

        var again = Vsctl([.. s, "network", "add", "blue"]);
        Assert.Equal(4, again.ExitCode); // conflict
        Assert.Contains("vsctl: network 'blue' already exists", again.Stderr);

        var badVlan = Vsctl([.. s, "network", "add", "red", "--vlan", "5000"]);
        Assert.Equal(6, badVlan.ExitCode); // invalid: the daemon checks ranges and names the field
        Assert.Contains("vlan", badVlan.Stderr);

        var inspect = Vsctl([.. s, "network", "inspect", "blue"]);
        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        Assert.Contains("vlan:       10", inspect.Stdout);

        var show = Vsctl([.. s, "show"]);
        Assert.True(show.ExitCode == 0, show.ToString());
        Assert.Contains("Network blue", show.Stdout);

        var stats = Vsctl([.. s, "--json", "stats"]);
        Assert.True(stats.ExitCode == 0, stats.ToString());
        using (var doc = JsonDocument.Parse(stats.Stdout))
            Assert.Equal(JsonValueKind.Array, doc.RootElement.GetProperty("stages").ValueKind);

        var flush = Vsctl([.. s, "fdb", "flush", "--network", "blue"]);
        Assert.True(flush.ExitCode == 0, flush.ToString());
        Assert.Equal("removed 0 entries", flush.Stdout.Trim());

        var missing = Vsctl([.. s, "network", "inspect", "nope"]);
        Assert.Equal(3, missing.ExitCode); // not found
        Assert.Contains("vsctl: no network named 'nope'", missing.Stderr);

        var rm = Vsctl([.. s, "network", "rm", "blue"]);
        Assert.True(rm.ExitCode == 0, rm.ToString());
        var empty = Vsctl([.. s, "--json", "network", "ls"]);
        Assert.Equal("[]", empty.Stdout.Trim());
    }
}
