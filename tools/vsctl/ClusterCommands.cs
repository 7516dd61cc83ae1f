using System.CommandLine;
using System.Globalization;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary><c>vsctl cluster [status]</c>, <c>vsctl cluster hosts</c>: cluster mode (GET /v1/cluster, /v1/cluster/hosts).</summary>
public static class ClusterCommands
{
    public static Command Create(Cli cli)
    {
        var cluster = new Command("cluster", "Cluster mode: the store of leases (etcd or a file), this host's lease, the other hosts; alone, it shows the status");
        var status = new Command("status", "The store (reachable, or since when not), this host's lease, the cluster network");
        ConfigureStatus(cli, status);
        ConfigureStatus(cli, cluster);
        var hosts = new Command("hosts", "Every other host: subnet, public IP, VTEP MAC, lease expiry, frames and bytes to and from it");
        hosts.Aliases.Add("ls");
        cli.SetAction(hosts, async (ctx, ct) =>
        {
            var response = await ctx.Api.GetAsync("v1/cluster/hosts", ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var list = response.Read(ApiJson.Default.ClusterHostViewArray);
            if (list.Length == 0) { ctx.Out.WriteLine("no other host in the cluster"); return Program.Ok; }
            var table = new TableWriter("SUBNET", "PUBLIC IP", "VTEP MAC", "STATE", "LEASE EXPIRES", "TX PKTS", "TX BYTES", "RX PKTS", "RX BYTES");
            foreach (var h in list)
                table.AddRow(h.Subnet, h.PublicIp, h.VtepMac, h.Programmed ? "programmed" : "failed: " + h.Error, Expiry(h.LeaseExpires),
                    h.TxPackets, h.TxBytes, h.RxPackets, h.RxBytes);
            ctx.Write(table);
            int failed = list.Count(h => !h.Programmed);
            ctx.Out.WriteLine($"{list.Length} host(s), {list.Length - failed} programmed{(failed > 0 ? $", {failed} failed" : "")}");
            return Program.Ok;
        });
        cluster.Subcommands.Add(status);
        cluster.Subcommands.Add(hosts);
        return cluster;
    }

    private static void ConfigureStatus(Cli cli, Command command) =>
        cli.SetAction(command, async (ctx, ct) =>
        {
            var response = await ctx.Api.GetAsync("v1/cluster", ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var c = response.Read(ApiJson.Default.ClusterView);
            var w = ctx.Out;
            string store = c.Reachable ? "reachable"
                : c.UnreachableSince is { } since ? $"UNREACHABLE since {Time(since)} ({Age(DateTime.UtcNow - since.ToUniversalTime())})" : "not reached yet";
            w.WriteLine($"store:       {c.Store}: {store}");
            if (c.LastError is not null) w.WriteLine($"last error:  {c.LastError}");
            w.WriteLine($"network:     {c.Network ?? "(not read yet)"}{(c.Network is null ? "" : $", /{c.SubnetLen} per host, vxlan VNI {c.Vni} on UDP {c.Port}, MTU {c.Mtu}")}");
            w.WriteLine($"this host:   {c.PublicIp}");
            if (c.Lease is { } l)
            {
                // A static file's hosts hold their subnets for good: no TTL, nothing renewed.
                bool leased = !c.Store.StartsWith("file ", StringComparison.Ordinal);
                w.WriteLine($"lease:       {l.Subnet} (VTEP MAC {l.VtepMac})" + (!leased ? ", from the file" : $", TTL {Age(TimeSpan.FromSeconds(c.LeaseTtlSeconds))}"
                    + (l.Expires is { } e ? $", expires {Time(e)}" : "") + (l.Renewed is { } r ? $", renewed {Time(r)}" : "")));
                w.WriteLine($"networks:    containers attach to '{c.ContainerNetwork}' ({l.Subnet}); hosts meet on '{c.TransitNetwork}'");
            }
            else w.WriteLine("lease:       none yet");
            w.WriteLine($"hosts:       {c.Hosts} other host(s), {c.Programmed} programmed (vsctl cluster hosts); store revision {c.Revision}");
            return Program.Ok;
        });

    private static string Time(DateTime t) => t.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string Expiry(DateTime? t) => t is { } e ? $"{Time(e)} (in {Age(e.ToUniversalTime() - DateTime.UtcNow)})" : "-";

    private static string Age(TimeSpan t) =>
        t < TimeSpan.Zero ? "now" : t.TotalSeconds < 120 ? $"{t.TotalSeconds:F0}s" : t.TotalMinutes < 120 ? $"{t.TotalMinutes:F0}m" : $"{t.TotalHours:F0}h";
}
