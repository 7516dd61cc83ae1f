using System.CommandLine;
using System.Globalization;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary><c>vsctl stats</c>: port counters, drops by reason, per-stage runtime (like VPP's <c>show runtime</c>) and the flow cache.</summary>
public static class StatsCommands
{
    public static Command Create(Cli cli)
    {
        var stats = new Command("stats", "Counters: per port, drops by reason, datapath stages, flow cache");
        cli.SetAction(stats, async (ctx, ct) =>
        {
            var response = await ctx.Api.GetAsync("v1/stats", ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            Print(ctx.Out, response.Read(ApiJson.Default.StatsView));
            return Program.Ok;
        });
        return stats;
    }

    /// <summary>A per-packet cost from fewer sampled packets than this is noise (one cold batch), so it is not shown.</summary>
    public const int MinTimedPackets = 1000;

    public static void Print(TextWriter w, StatsView s)
    {
        // RX-UNSENT: frames with nowhere to go (no-output), a switch doing its job, kept apart from the drops.
        var ports = new TableWriter("NAME", "RX-PKTS", "RX-BYTES", "TX-PKTS", "TX-BYTES", "RX-DROP", "TX-DROP", "RX-UNSENT");
        foreach (var p in s.Ports)
        {
            var c = p.Counters;
            ports.AddRow(p.Name, c.RxPackets, c.RxBytes, c.TxPackets, c.TxBytes, c.RxDrops, c.TxDrops, c.RxUnsent);
        }
        ports.Write(w);

        // Drops per stage and reason, like VPP's `show errors`; the total is what every stage gave.
        w.WriteLine();
        if (s.Drops.Length == 0) w.WriteLine("no drops");
        else
        {
            var drops = new TableWriter("STAGE", "REASON", "PACKETS");
            foreach (var st in s.Stages)
                foreach (var d in st.Drops.OrderByDescending(d => d.Packets)) drops.AddRow(st.Name, d.Expected ? d.Reason + " (not an error)" : d.Reason, d.Packets);
            drops.AddRow("total", "(all)", s.Drops.Sum(d => d.Packets));
            drops.Write(w);
        }

        w.WriteLine();
        var stages = new TableWriter("STAGE", "CALLS", "PACKETS", "DROPS", "NS/PKT", "PKTS/CALL");
        foreach (var st in s.Stages)
            stages.AddRow(st.Name, st.Calls, st.Packets, st.Drops.Sum(d => d.Packets),
                st.TimedPackets >= MinTimedPackets ? st.NsPerPacket.ToString("0.0", CultureInfo.InvariantCulture) : "-", st.PacketsPerCall);
        stages.Write(w);
        if (s.Stages.Any(st => st.Packets > 0 && st.TimedPackets < MinTimedPackets))
            w.WriteLine($"NS/PKT: '-' until {MinTimedPackets} packets of a stage were timed (one batch in 16 is); a few packets give no cost worth reading.");

        w.WriteLine();
        w.WriteLine($"mac table: {s.MacEntries} of {s.MacCapacity} entries"
            + (s.MacLearnsRefused > 0 ? $", {s.MacLearnsRefused} learns refused (mac-table-full: the table or a port at its limit)" : ""));

        if (s.NorthSouth is { } ns)
        {
            // Masquerade and published ports: what went out behind the host, and what came in through it.
            w.WriteLine();
            w.WriteLine($"masquerade: {ns.Masqueraded} connections, {ns.MasqueradedActive} open"
                + (ns.NatPortsExhausted > 0 ? $", {ns.NatPortsExhausted} refused (nat-ports-exhausted)" : ""));
            if (ns.Publishes.Length > 0)
            {
                var pub = new TableWriter("PUBLISHED", "TO", "CONNECTIONS", "OPEN");
                foreach (var p in ns.Publishes) pub.AddRow(p.Id, p.To, p.Connections, p.Active);
                pub.Write(w);
            }
        }

        if (s.Limits is { Length: > 0 } limits)
        {
            // Like `ovs-appctl upcall/show`'s limits: what each bounded table holds, its bound, and how often it was hit.
            w.WriteLine();
            var table = new TableWriter("LIMIT", "USED", "MAX", "HITS", "AT THE LIMIT", "SETTING");
            foreach (var l in limits)
                table.AddRow(l.Resource, l.Used < 0 ? "-" : l.Used.ToString(CultureInfo.InvariantCulture), l.Limit, l.Hits, l.AtLimit, l.Setting.Length > 0 ? l.Setting : "(fixed)");
            table.Write(w);
        }

        if (s.FlowCache is { } fc)
        {
            w.WriteLine();
            var cache = new TableWriter("FLOW CACHE", "VALUE");
            cache.AddRow("flows", fc.Flows.ToString(CultureInfo.InvariantCulture));
            cache.AddRow("hits", fc.Hits.ToString(CultureInfo.InvariantCulture));
            cache.AddRow("misses", fc.Misses.ToString(CultureInfo.InvariantCulture));
            cache.AddRow("revalidations", fc.Revalidations.ToString(CultureInfo.InvariantCulture));
            cache.AddRow("evictions", fc.Evictions.ToString(CultureInfo.InvariantCulture));
            cache.AddRow("expirations", fc.Expirations.ToString(CultureInfo.InvariantCulture));
            cache.AddRow("hit rate", (fc.HitRate * 100).ToString("0.0", CultureInfo.InvariantCulture) + "%");
            cache.Write(w);
        }
    }
}
