using System.Text.Json;
using static VSwitch.Integration.Tests.VsctlHarness;

namespace VSwitch.Integration.Tests;

/// <summary>
/// vsctl route / neigh and the routed side of network add / inspect / ls / show, against a vswitchd with no
/// configuration (no ports, so no ARP traffic: the router's forwarding is tested in <see cref="RouterTests"/>).
/// Needs no root. Build vsctl and vswitchd first.
/// </summary>
public sealed class VsctlRouteTests
{
    /// <summary>The table's rows (header left out) as words.</summary>
    private static string[][] Rows(Result r) => Lines(r.Stdout).Skip(1).Select(Words).ToArray();

    [Fact]
    public void Help_ListsRouteAndNeigh()
    {
        var r = Vsctl("--help");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("route", r.Stdout);
        Assert.Contains("neigh", r.Stdout);
    }

    [Theory]
    [InlineData("route", "add", "10.9.0.0/16")]                                          // neither --via nor --dev
    // (--via and --dev together is an on-link route, as ip route's onlink: no longer a usage error)
    [InlineData("route", "add", "--via", "10.1.0.1")]                                    // the prefix is required
    [InlineData("route", "del", "10.9.0.0/16", "--via", "10.1.0.1", "--dev", "red")]
    [InlineData("route", "del")]
    [InlineData("neigh", "add", "--network", "red", "10.1.0.5")]                         // so is the MAC
    [InlineData("network", "add", "red", "--gateway", "10.1.0.1")]                       // a gateway needs its subnet
    [InlineData("network", "add", "red", "--subnet", "10.1.0.0/24", "--mtu", "big")]
    public void BadUsage_Exits2_BeforeContactingTheDaemon(params string[] args)
    {
        var r = Vsctl(["--socket", "/tmp/nonexistent.sock", .. args]);
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.DoesNotContain("cannot reach", r.Stderr);
    }

    [Fact]
    public void LiveDaemon_RoutedNetworks_RoutesAndNeighbors()
    {
        using var daemon = Daemon.Start();
        string[] s = ["--socket", daemon.Socket];

        var red = Ok([.. s, "network", "add", "red", "--subnet", "10.7.1.0/24", "--gateway", "10.7.1.1"]);
        Assert.Contains("subnet 10.7.1.0/24, gateway 10.7.1.1", red.Stdout);
        Ok([.. s, "network", "add", "blue", "--subnet", "10.7.2.0/24"]); // the gateway defaults to the first host
        Ok([.. s, "network", "add", "plain"]);                           // not routed

        // Each routed network brings its connected route; a plain one none.
        var ls = Ok([.. s, "route", "ls"]);
        Assert.Equal(["PREFIX", "KIND", "NETWORK", "VIA"], Words(Lines(ls.Stdout)[0]));
        var rows = Rows(ls);
        Assert.Equal(2, rows.Length);
        Assert.Contains(["10.7.1.0/24", "connected", "red", "-"], rows);
        Assert.Contains(["10.7.2.0/24", "connected", "blue", "-"], rows);

        // A static route through a gateway on red's subnet.
        var add = Ok([.. s, "route", "add", "10.7.9.0/24", "--via", "10.7.1.254"]);
        Assert.Contains("route 10.7.9.0/24 via 10.7.1.254 dev red added", add.Stdout);
        rows = Rows(Ok([.. s, "route", "ls"]));
        Assert.Equal(3, rows.Length);
        Assert.Contains(["10.7.9.0/24", "via", "red", "10.7.1.254"], rows);

        // A second path makes it ECMP: one row per path.
        Ok([.. s, "route", "add", "10.7.9.0/24", "--via", "10.7.2.254"]);
        rows = Rows(Ok([.. s, "route", "ls"]));
        Assert.Equal(4, rows.Length);
        Assert.Contains(["10.7.9.0/24", "via", "blue", "10.7.2.254"], rows);
        Ok([.. s, "route", "del", "10.7.9.0/24", "--via", "10.7.2.254"]);
        Assert.Equal(3, Rows(Ok([.. s, "route", "ls"])).Length);

        // A gateway on no routed network's subnet: the daemon's error, naming it.
        var offLink = Vsctl([.. s, "route", "add", "10.7.8.0/24", "--via", "192.0.2.1"]);
        Assert.True(offLink.ExitCode == 6, offLink.ToString());
        Assert.Contains("192.0.2.1", offLink.Stderr);
        Assert.StartsWith("vsctl: ", offLink.Stderr);

        // --dev: out of a network with a gateway; a network without one has no router interface.
        Ok([.. s, "route", "add", "10.7.7.0/24", "--dev", "blue"]);
        Assert.Contains(["10.7.7.0/24", "dev", "blue", "-"], Rows(Ok([.. s, "route", "ls"])));
        var noRouter = Vsctl([.. s, "route", "add", "10.7.6.0/24", "--dev", "plain"]);
        Assert.True(noRouter.ExitCode == 6, noRouter.ToString());
        Assert.Contains("plain", noRouter.Stderr);
        Ok([.. s, "route", "del", "10.7.7.0/24", "--dev", "blue"]);

        // The same route twice is a conflict.
        var twice = Vsctl([.. s, "route", "add", "10.7.9.0/24", "--via", "10.7.1.254"]);
        Assert.True(twice.ExitCode == 4, twice.ToString());
        Assert.Contains("already exists", twice.Stderr);

        var json = Ok([.. s, "--json", "route", "ls"]);
        using (var doc = JsonDocument.Parse(json.Stdout))
        {
            var routes = doc.RootElement.EnumerateArray().ToArray();
            Assert.Equal(3, routes.Length);
            var r = routes.Single(x => x.GetProperty("prefix").GetString() == "10.7.9.0/24");
            var path = Assert.Single(r.GetProperty("paths").EnumerateArray());
            Assert.Equal("via", path.GetProperty("kind").GetString());
            Assert.Equal("10.7.1.254", path.GetProperty("via").GetString());
            Assert.Equal("red", path.GetProperty("network").GetString());
        }

        Ok([.. s, "route", "del", "10.7.9.0/24"]);
        rows = Rows(Ok([.. s, "route", "ls"]));
        Assert.Equal(2, rows.Length);
        Assert.DoesNotContain(rows, row => row[0] == "10.7.9.0/24");

        var gone = Vsctl([.. s, "route", "del", "10.7.9.0/24"]);
        Assert.True(gone.ExitCode == 3, gone.ToString());
        Assert.Contains("no route 10.7.9.0/24", gone.Stderr);

        // A connected route goes with its network's gateway, not by route del.
        var connected = Vsctl([.. s, "route", "del", "10.7.1.0/24"]);
        Assert.True(connected.ExitCode == 4, connected.ToString());
        Assert.Contains("connected", connected.Stderr);
        Assert.Equal(2, Rows(Ok([.. s, "route", "ls"])).Length);

        // Neighbors: a static entry is permanent and survives a flush.
        Assert.Equal(["NETWORK", "IP", "MAC", "STATE", "AGE"], Words(Lines(Ok([.. s, "neigh", "ls"]).Stdout)[0]));
        var neigh = Ok([.. s, "neigh", "add", "--network", "red", "10.7.1.50", "02:00:00:00:00:50"]);
        Assert.Contains("10.7.1.50", neigh.Stdout);
        var entries = Rows(Ok([.. s, "neigh", "ls"]));
        Assert.Equal([["red", "10.7.1.50", "02:00:00:00:00:50", "permanent", "-"]], entries);
        Assert.Equal(entries, Rows(Ok([.. s, "neigh", "ls", "--network", "red"])));
        Assert.Empty(Rows(Ok([.. s, "neigh", "ls", "--network", "blue"])));

        var badMac = Vsctl([.. s, "neigh", "add", "--network", "red", "10.7.1.51", "ff:ff:ff:ff:ff:ff"]);
        Assert.True(badMac.ExitCode == 6, badMac.ToString());
        Assert.Contains("mac", badMac.Stderr);
        var noNet = Vsctl([.. s, "neigh", "ls", "--network", "nope"]);
        Assert.True(noNet.ExitCode == 3, noNet.ToString());
        Assert.Contains("no network named 'nope'", noNet.Stderr);

        Assert.Equal("removed 0 entries", Ok([.. s, "neigh", "flush"]).Stdout.Trim());
        Assert.Equal("removed 0 entries", Ok([.. s, "neigh", "flush", "--network", "red"]).Stdout.Trim());
        Assert.Equal(entries, Rows(Ok([.. s, "neigh", "ls"])));

        using (var doc = JsonDocument.Parse(Ok([.. s, "--json", "neigh", "ls"]).Stdout))
        {
            var e = Assert.Single(doc.RootElement.EnumerateArray());
            Assert.Equal("permanent", e.GetProperty("state").GetString());
            Assert.Equal("02:00:00:00:00:50", e.GetProperty("mac").GetString());
        }
        using (var doc = JsonDocument.Parse(Ok([.. s, "--json", "neigh", "flush"]).Stdout))
            Assert.Equal(0, doc.RootElement.GetProperty("removed").GetInt32());

        // network inspect / ls / show carry the routed side.
        var inspect = Ok([.. s, "network", "inspect", "blue"]);
        Assert.Contains("subnet:     10.7.2.0/24", inspect.Stdout);
        Assert.Contains("gateway:    10.7.2.1", inspect.Stdout);
        Assert.Contains("mtu:        1500", inspect.Stdout);
        Assert.Matches(@"router mac: ([0-9a-f]{2}:){5}[0-9a-f]{2}", inspect.Stdout);
        var plainInspect = Ok([.. s, "network", "inspect", "plain"]);
        Assert.Contains("gateway:    -", plainInspect.Stdout);

        using (var doc = JsonDocument.Parse(Ok([.. s, "--json", "network", "inspect", "blue"]).Stdout))
            Assert.Equal("10.7.2.1", doc.RootElement.GetProperty("gateway").GetString());

        // Routed networks are isolated from each other until connected; the last column says with which.
        Assert.Equal("networks red and blue connected", Ok([.. s, "network", "connect", "red", "blue"]).Stdout.Trim());
        var nets = Ok([.. s, "network", "ls"]);
        Assert.Equal(["NAME", "VLAN", "VNI", "SUBNET", "GATEWAY", "AGING", "PORTS", "CONNECTED"], Words(Lines(nets.Stdout)[0]));
        var netRows = Rows(nets);
        Assert.Contains(["red", "0", "-", "10.7.1.0/24", "10.7.1.1", "300", "0", "blue"], netRows);
        Assert.Contains(["blue", "0", "-", "10.7.2.0/24", "10.7.2.1", "300", "0", "red"], netRows);
        Assert.Contains(["plain", "0", "-", "-", "-", "300", "0", "-"], netRows);
        var plainConnect = Vsctl([.. s, "network", "connect", "red", "plain"]);
        Assert.True(plainConnect.ExitCode == 6 && plainConnect.Stderr.Contains("'plain' has no subnet"), plainConnect.ToString());

        var show = Ok([.. s, "show"]);
        Assert.Contains("Network red (gateway 10.7.1.1/24)", show.Stdout);
        Assert.Contains("Network blue (gateway 10.7.2.1/24)", show.Stdout);
        Assert.Contains("connected to: red", show.Stdout);
        Assert.Contains("Network plain" + Environment.NewLine, show.Stdout);
    }

    [Fact]
    public void LiveDaemon_NetworkAdd_MtuAndBadSubnet()
    {
        using var daemon = Daemon.Start();
        string[] s = ["--socket", daemon.Socket];

        Ok([.. s, "network", "add", "jumbo", "--subnet", "10.8.0.0/16", "--gateway", "10.8.255.254", "--mtu", "9000"]);
        var inspect = Ok([.. s, "network", "inspect", "jumbo"]);
        Assert.Contains("mtu:        9000", inspect.Stdout);
        Assert.Contains("gateway:    10.8.255.254", inspect.Stdout);
        Assert.Contains(["10.8.0.0/16", "connected", "jumbo", "-"], Rows(Ok([.. s, "route", "ls"])));

        // The daemon checks the values and names the field.
        var outside = Vsctl([.. s, "network", "add", "bad", "--subnet", "10.9.0.0/24", "--gateway", "10.10.0.1"]);
        Assert.True(outside.ExitCode == 6, outside.ToString());
        Assert.Contains("gateway", outside.Stderr);
        var badMtu = Vsctl([.. s, "network", "add", "bad", "--mtu", "20"]);
        Assert.True(badMtu.ExitCode == 6, badMtu.ToString());
        Assert.Contains("mtu", badMtu.Stderr);

        // With no routed network the table keeps its L2 columns, and there are no routes.
        Ok([.. s, "network", "rm", "jumbo"]);
        Assert.Empty(Rows(Ok([.. s, "route", "ls"])));
        Assert.Equal("[]", Ok([.. s, "--json", "route", "ls"]).Stdout.Trim());
    }
}
