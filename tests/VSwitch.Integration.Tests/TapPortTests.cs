using System.Net;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports;
using VSwitch.Core.Ports.Linux;
using VSwitch.Core.Wire;
using VSwitchd.Host;
using Xunit;

namespace VSwitch.Integration.Tests;

[Collection("netns")]
public class TapPortTests
{
    private const ulong SwitchMac = 0x02_00_00_aa_bb_cc;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    [RootFact]
    public void Tap_in_namespace_receives_ARP_request_and_delivers_reply()
    {
        using var ns = new TestNetns();
        var pool = new PacketPool(256);
        string name = Names.Random("vstap");
        using var tap = TapPort.Create(new TapOptions
        {
            Name = name,
            Netns = ns.Name,
            Mac = 0x02_00_00_00_09_02,
            Mtu = 1400,
            Setup = NetConfig.TapSetup(ns.Name, ["10.9.0.2/24", "fd00:9::2/64"], "10.9.0.1"),
        });
        Assert.Equal(name, tap.Name);
        Assert.False(NetConfig.LinkExists(name), "the TAP must have left the root namespace");
        var link = ns.Exec("ip", "link", "show", "dev", name);
        Assert.Contains("mtu 1400", link);
        Assert.Contains("02:00:00:00:09:02", link);
        Assert.Contains(",UP", link);
        Assert.Contains("10.9.0.2/24", ns.Exec("ip", "addr", "show", "dev", name));
        Assert.Contains("fd00:9::2/64", ns.Exec("ip", "addr", "show", "dev", name));
        Assert.Contains("default via 10.9.0.1", ns.Exec("ip", "route", "show"));

        using var ping = ns.Start("ping", "-c1", "-W1", "10.9.0.1");
        try
        {
            var (mac, ip) = PortTestHelpers.WaitForArpRequest(tap, pool, IPAddress.Parse("10.9.0.1"), Timeout);
            Assert.Equal(0x02_00_00_00_09_02UL, mac);
            Assert.Equal(0x0A090002u, ip);
            Assert.Equal(1, PortTestHelpers.SendArpReply(tap, pool, SwitchMac, IPAddress.Parse("10.9.0.1"), mac, ip));
            Wait.Until(() => PortTestHelpers.NeighbourHasMac(ns, "10.9.0.1", SwitchMac), Timeout,
                $"{MacAddress.Format(SwitchMac)} in the neighbour table of {ns.Name}");
        }
        finally { Proc.KillQuietly(ping); }
        Assert.Equal(0, pool.InUse);
    }

    [RootFact]
    public void Dispose_removes_the_TAP_from_its_namespace()
    {
        using var ns = new TestNetns();
        string name = Names.Random("vstap");
        var tap = TapPort.Create(new TapOptions { Name = name, Netns = ns.Path, Setup = NetConfig.TapSetup(ns.Path) });  // by path this time
        try { Assert.True(ns.HasLink(name)); }
        finally { tap.Dispose(); }
        Wait.Until(() => !ns.HasLink(name), Timeout, $"{name} to disappear from {ns.Name}");
    }

    [RootFact]
    public void Unknown_namespace_throws_a_clear_error_and_leaves_no_TAP()
    {
        string name = Names.Random("vstap");
        string bad = Names.Random("vst-nonexistent-");
        var ex = Assert.Throws<PortException>(() => TapPort.Create(new TapOptions { Name = name, Netns = bad, Setup = NetConfig.TapSetup(bad) }));
        Assert.Contains(bad, ex.Message);
        Assert.Contains("does not exist", ex.Message);
        Assert.False(NetConfig.LinkExists(name));
    }

    [RootFact]
    public void Failure_half_way_through_Create_leaves_no_TAP_anywhere()
    {
        using var ns = new TestNetns();
        string name = Names.Random("vstap");
        // The gateway is not on the link's subnet: the route fails after the TAP was moved and addressed.
        var ex = Assert.Throws<PortException>(() => TapPort.Create(new TapOptions
        {
            Name = name, Netns = ns.Name, Setup = NetConfig.TapSetup(ns.Name, ["10.9.0.2/24"], "10.77.0.1"),
        }));
        Assert.Contains(name, ex.Message);
        Assert.Contains("route", ex.Message);
        Wait.Until(() => !ns.HasLink(name), Timeout, $"{name} to disappear from {ns.Name}");
        Assert.False(NetConfig.LinkExists(name));
    }

    [RootFact]
    public void Persistent_TAP_outlives_the_port()
    {
        string name = Names.Random("vstap");
        try
        {
            TapPort.Create(new TapOptions { Name = name, Persistent = true, Up = false }).Dispose();
            Assert.True(NetConfig.LinkExists(name));
        }
        finally
        {
            if (NetConfig.LinkExists(name)) Proc.Run("ip", "tuntap", "del", "dev", name, "mode", "tap");
        }
        Assert.False(NetConfig.LinkExists(name));
    }
}
