using VSwitch.Core.Tables;

namespace VSwitch.Core.Tests;

public class MacTableTests
{
    private static ulong M(int n) => TestFrames.Mac(n);

    [Fact]
    public void Learns_and_looks_up_per_network_and_vlan()
    {
        var t = new MacTable();
        Assert.Equal(LearnResult.Learned, t.Learn(1, 0, M(1), 3, 0));
        Assert.Equal(3, t.Lookup(1, 0, M(1), 10));
        Assert.Equal(-1, t.Lookup(2, 0, M(1), 10)); // other network
        Assert.Equal(-1, t.Lookup(1, 5, M(1), 10)); // other VLAN
        Assert.Equal(LearnResult.Refreshed, t.Learn(1, 0, M(1), 3, 10));
        Assert.Equal(1, t.Count);
    }

    [Fact]
    public void Entries_age_out_with_the_aging_time_and_refresh_keeps_them()
    {
        var t = new MacTable();
        t.Learn(1, 0, M(1), 1, nowMs: 0, agingMs: 300_000);
        t.Learn(1, 0, M(2), 2, nowMs: 0, agingMs: 300_000);
        t.Learn(1, 0, M(1), 1, nowMs: 200_000, agingMs: 300_000); // seen again
        Assert.Equal(1, t.Lookup(1, 0, M(1), 299_999));
        Assert.Equal(-1, t.Lookup(1, 0, M(2), 300_000)); // expired: looks unknown at once
        Assert.Equal(1, t.Expire(300_000));
        Assert.Equal(1, t.Count);
        Assert.Equal(1, t.Lookup(1, 0, M(1), 499_999));
        Assert.Equal(-1, t.Lookup(1, 0, M(1), 500_000));
        Assert.Equal(1, t.Expire(500_000));
        Assert.Equal(0, t.Count);
    }

    [Fact]
    public void Station_move_updates_the_port_and_the_generation()
    {
        var t = new MacTable();
        t.Learn(1, 0, M(7), 1, 0);
        long g = t.Generation;
        Assert.Equal(LearnResult.Moved, t.Learn(1, 0, M(7), 2, 5));
        Assert.Equal(2, t.Lookup(1, 0, M(7), 6));
        Assert.True(t.Generation > g);
        Assert.Equal(0, t.CountOnPort(1));
        Assert.Equal(1, t.CountOnPort(2));
    }

    [Fact]
    public void Per_port_limit_protects_other_ports_hosts_from_a_mac_flood()
    {
        var t = new MacTable(capacity: 1000, perPortLimit: 100);
        for (int i = 0; i < 10; i++) Assert.Equal(LearnResult.Learned, t.Learn(1, 0, M(i), 1, 0));
        int full = 0;
        var rnd = new Random(42);
        for (int i = 0; i < 100_000; i++)
        {
            ulong mac = (ulong)rnd.NextInt64() & 0xFEFF_FFFF_FFFFUL;
            if (t.Learn(1, 0, mac, 2, 0) == LearnResult.Full) full++;
        }
        Assert.Equal(100, t.CountOnPort(2));
        Assert.True(full > 99_000);
        for (int i = 0; i < 10; i++) Assert.Equal(1, t.Lookup(1, 0, M(i), 1));
        Assert.Equal(110, t.Count);
    }

    [Fact]
    public void Table_capacity_is_a_hard_bound()
    {
        var t = new MacTable(capacity: 64, perPortLimit: 1000);
        int learned = 0;
        for (int i = 0; i < 1000; i++) if (t.Learn(1, 0, M(i), 1 + i % 3, 0) == LearnResult.Learned) learned++;
        Assert.Equal(64, learned);
        Assert.Equal(64, t.Count);
        Assert.Equal(LearnResult.Full, t.Learn(1, 0, M(5000), 1, 0));
        // Freed room is reused (tombstones are not lost slots).
        t.FlushPort(1);
        Assert.True(t.Count < 64);
        Assert.Equal(LearnResult.Learned, t.Learn(1, 0, M(5000), 1, 0));
    }

    [Fact]
    public void The_operators_flush_keeps_static_entries_and_Remove_takes_one_from_any_vlan()
    {
        var t = new MacTable();
        t.Learn(1, 0, M(1), 1, 0);
        t.Learn(1, 5, M(2), 2, 0);
        t.Learn(2, 0, M(3), 2, 0);
        t.AddStatic(1, 0, M(9), 2, remote: 0x0A090902);
        Assert.Equal(1, t.FlushLearned(port: 2, network: 1)); // M(2) only: M(9) is static, M(3) in network 2
        Assert.Equal(1, t.FlushLearned(network: 1));           // M(1)
        Assert.Equal(1, t.FlushLearned());                     // M(3)
        Assert.Equal(1, t.Count);
        Assert.Equal(2, t.Lookup(1, 0, M(9), 1));
        Assert.True(t.Remove(1, M(9)));
        Assert.False(t.Remove(1, M(9)));
        Assert.Equal(0, t.Count);
        t.Learn(1, 7, M(4), 1, 0);
        Assert.False(t.Remove(2, M(4)));                       // another network
        Assert.True(t.Remove(1, M(4)));                        // whatever its VLAN
    }

    [Fact]
    public void Flush_by_port_network_and_all()
    {
        var t = new MacTable();
        t.Learn(1, 0, M(1), 1, 0);
        t.Learn(1, 0, M(2), 2, 0);
        t.Learn(2, 0, M(3), 3, 0);
        t.Learn(2, 0, M(4), 3, 0);
        Assert.Equal(1, t.FlushPort(2));
        Assert.Equal(-1, t.Lookup(1, 0, M(2), 1));
        Assert.Equal(2, t.FlushNetwork(2));
        Assert.Equal(1, t.Count);
        Assert.Equal(1, t.FlushAll());
        Assert.Equal(0, t.Count);
        // Learning again after flushes works through tombstones.
        Assert.Equal(LearnResult.Learned, t.Learn(2, 0, M(4), 3, 0));
        Assert.Equal(3, t.Lookup(2, 0, M(4), 1));
    }

    [Fact]
    public void Static_entries_never_age_and_learning_does_not_move_them()
    {
        var t = new MacTable();
        t.AddStatic(1, 0, M(9), 4);
        Assert.Equal(LearnResult.Static, t.Learn(1, 0, M(9), 5, 0));
        Assert.Equal(4, t.Lookup(1, 0, M(9), long.MaxValue - 1));
        Assert.Equal(0, t.Expire(long.MaxValue - 1));
    }

    [Fact]
    public void Entries_listing_shows_age()
    {
        var t = new MacTable();
        t.Learn(1, 3, M(1), 2, 1000, 300_000);
        var e = Assert.Single(t.Entries(6000));
        Assert.Equal((ushort)1, e.Network);
        Assert.Equal((ushort)3, e.Vlan);
        Assert.Equal(2, e.Port);
        Assert.Equal(5000, e.AgeMs);
    }

    [Fact]
    public async Task Concurrent_learning_and_lookup_is_safe()
    {
        var t = new MacTable(capacity: 10_000, perPortLimit: 10_000);
        var tasks = Enumerable.Range(0, 4).Select(w => Task.Run(() =>
        {
            for (int i = 0; i < 20_000; i++)
            {
                t.Learn(1, 0, M(i % 2000), 1 + (w % 2), i);
                t.Lookup(1, 0, M((i * 7) % 2000), i);
                if (i % 5000 == 0) t.FlushPort(1);
            }
        })).ToArray();
        await Task.WhenAll(tasks);
        Assert.InRange(t.Count, 0, 10_000);
        Assert.Equal(t.Count, t.CountOnPort(1) + t.CountOnPort(2));
    }
}
