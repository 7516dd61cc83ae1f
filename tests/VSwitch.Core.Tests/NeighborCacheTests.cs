using VSwitch.Core.Tables;

namespace VSwitch.Core.Tests;

/// <summary>
/// The places where the ARP table and the IPv6 neighbour cache differ, now that they share one
/// implementation (<see cref="NeighborCache{TAddress}"/>): each family must keep its own behaviour.
/// </summary>
public class NeighborCacheTests
{
    private const ulong Mac = 0x02_00_00_00_00_0B;

    [Fact]
    public void Arp_requests_are_broadcast_three_times_then_the_entry_fails_and_is_forgotten()
    {
        var t = new NeighborTable();
        var e = t.Resolve(1, 0x0A02_0002, 0, out bool created)!;
        Assert.True(created);
        var sent = new List<bool>();
        for (long now = 0; now <= 10 * NeighborTable.RetransmitMs; now += NeighborTable.RetransmitMs / 2)
        {
            t.Tick(now, (_, unicast) => sent.Add(unicast));
            if (e.State == NeighborState.Failed) break;
        }
        Assert.Equal(NeighborState.Failed, e.State);
        Assert.Equal([false, false], sent); // the first request went out with the packet (created)
        long failedAt = e.UpdatedMs;
        t.Tick(failedAt + NeighborTable.FailedMs, (_, _) => { });
        Assert.Null(t.Lookup(1, 0x0A02_0002));
    }

    [Fact]
    public void Arp_entry_going_stale_leaves_cached_flows_alone_but_an_ipv6_one_revalidates_them()
    {
        var arp = new NeighborTable();
        arp.Confirm(1, 0x0A02_0002, Mac, 0, create: true);
        var nd = new NeighborTable6();
        nd.Resolve(1, 2, 0, out _);
        Assert.True(nd.OnAdvertisement(1, 2, Mac, solicited: true, overrideFlag: true, 0));
        long arpVersion = arp.Version, ndVersion = nd.Version;

        arp.Tick(NeighborTable.ReachableMs, (_, _) => { });
        nd.Tick(NeighborTable6.ReachableMs, (_, _) => { });

        Assert.Equal(NeighborState.Stale, arp.Lookup(1, 0x0A02_0002)!.State);
        Assert.Equal(NeighborState.Stale, nd.Lookup(1, 2)!.State);
        Assert.Equal(arpVersion, arp.Version); // ARP has no DELAY: nothing for the slow path to notice
        Assert.Equal(ndVersion + 1, nd.Version); // the slow path must see the entry in use (DELAY)
    }

    [Fact]
    public void Arp_learns_only_when_asked_to_create_and_never_overrides_a_static_entry()
    {
        var t = new NeighborTable();
        t.Confirm(1, 0x0A02_0002, Mac, 0, create: false); // gratuitous ARP from a stranger
        Assert.Equal(0, t.Count);
        t.AddStatic(1, 0x0A02_0003, Mac);
        long v = t.Version;
        t.Confirm(1, 0x0A02_0003, Mac + 1, 5, create: true);
        Assert.Equal(Mac, t.Lookup(1, 0x0A02_0003)!.Mac);
        Assert.Equal(v, t.Version);
        Assert.Equal(0, t.Flush()); // static entries stay
    }

    [Fact]
    public void Both_tables_refuse_entries_beyond_their_bound_and_count_them()
    {
        var arp = new NeighborTable();
        var nd = new NeighborTable6();
        for (uint a = 0; a < NeighborTable.MaxEntries; a++)
        {
            arp.Resolve(1, a, 0, out _);
            nd.Resolve(1, a, 0, out _);
        }
        Assert.Null(arp.Resolve(1, uint.MaxValue, 0, out _));
        Assert.Null(nd.Resolve(1, UInt128.MaxValue, 0, out _));
        nd.OnSolicitation(1, UInt128.MaxValue - 1, Mac, 0);
        Assert.Equal(1, arp.Refused);
        Assert.Equal(2, nd.Refused);
        Assert.Equal(NeighborTable.MaxEntries, nd.Count);
    }
}
