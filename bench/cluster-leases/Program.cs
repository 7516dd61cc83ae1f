using System.Diagnostics;
using VSwitch.Cluster;

// cluster-leases write|delete --endpoints URLS [--prefix P] --count N --public-base 10.220.1.0 [--ttl SECONDS] [--parallel 32]
// Simulated hosts: subnet i of the cluster network's SubnetMin.., public IP public-base + i, VTEP MAC 02:5e:00:HH:LL:01.
// It writes with the same create-only transaction and etcd lease as vswitchd, so each key is bound to a lease of --ttl.
var opts = new Dictionary<string, string>();
string verb = args.Length > 0 ? args[0] : "";
for (int i = 1; i + 1 < args.Length; i += 2) opts[args[i].TrimStart('-')] = args[i + 1];
if (verb is not ("write" or "delete") || !opts.ContainsKey("endpoints") || !opts.ContainsKey("count"))
{
    Console.Error.WriteLine("usage: cluster-leases write|delete --endpoints URLS --count N [--prefix /coreos.com/network] [--public-base 10.220.1.0] [--ttl 600] [--parallel 32]");
    return 2;
}
int count = int.Parse(opts["count"]), ttl = int.Parse(opts.GetValueOrDefault("ttl", "600")), parallel = int.Parse(opts.GetValueOrDefault("parallel", "32"));
if (count is < 1 or > 100_000) { Console.Error.WriteLine($"cluster-leases: --count {count} must be 1..100000"); return 2; }
if (!Ipv4Prefix.TryParseAddress(opts.GetValueOrDefault("public-base", "10.220.1.0"), out uint publicBase))
{
    Console.Error.WriteLine($"cluster-leases: --public-base '{opts.GetValueOrDefault("public-base")}' is not an IPv4 address");
    return 2;
}
await using var store = new EtcdClusterStore(opts["endpoints"].Split(','), opts.GetValueOrDefault("prefix", "/coreos.com/network"));
var config = await store.GetConfigAsync(CancellationToken.None);
var listing = await store.ListAsync(CancellationToken.None);
var taken = listing.Leases.Select(l => l.Subnet).ToHashSet();
// The simulated hosts take the highest subnets, so that real hosts (which pick at random) rarely meet them; taken ones are skipped.
var subnets = config.Subnets().Reverse().Where(s => verb == "delete" || !taken.Contains(s)).Take(count).ToList();
if (subnets.Count < count) { Console.Error.WriteLine($"cluster-leases: only {subnets.Count} free subnets for {count} hosts"); return 1; }
var sw = Stopwatch.StartNew();
int done = 0;
await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = parallel }, async (i, ct) =>
{
    var subnet = subnets[i];
    if (verb == "delete") await store.DeleteLeaseAsync(subnet, ct);
    else
    {
        var lease = new SubnetLease(subnet, Ipv4Prefix.FormatAddress(publicBase + (uint)i + 1), "vxlan", config.Vni, $"02:5e:00:{(i + 1) >> 8:x2}:{(i + 1) & 0xFF:x2}:01");
        if (await store.TryWriteAsync(lease, TimeSpan.FromSeconds(ttl), 0, ct) is null) throw new InvalidOperationException($"{subnet} is taken");
    }
    Interlocked.Increment(ref done);
});
Console.WriteLine($"{verb}: {done} lease(s) in {sw.Elapsed.TotalSeconds:F2} s");
return 0;
