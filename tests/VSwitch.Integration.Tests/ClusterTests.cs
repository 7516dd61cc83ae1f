using System.Diagnostics;
using System.Text.Json.Nodes;
using static VSwitch.Integration.Tests.VsctlHarness;

namespace VSwitch.Integration.Tests;

/// <summary>
/// A lab for cluster tests: an underlay (a bridge in a namespace), hosts on it (each a namespace with its own underlay veth
/// and its own vswitchd in cluster mode), containers attached to the hosts, and an etcd cluster on the root namespace's
/// loopback, whose ports each host namespace's loopback relays (<see cref="NetnsRelay"/>).
/// </summary>
public sealed class ClusterLab : IDisposable
{
    public const string Prefix = "/coreos.com/network";
    public const string DefaultConfig = """{"Network": "10.244.0.0/16", "SubnetLen": 24, "Backend": {"Type": "vxlan", "VNI": 1, "Port": 8472}}""";
    private readonly List<IDisposable> _owned = [];
    public Underlay Underlay { get; }
    public EtcdCluster? Etcd { get; }
    public string UnderlayPrefix { get; }

    public ClusterLab(int etcdMembers, string underlayPrefix, string? config = DefaultConfig)
    {
        UnderlayPrefix = underlayPrefix;
        Underlay = Own(new Underlay(underlayPrefix));
        if (etcdMembers > 0)
        {
            Etcd = Own(new EtcdCluster(etcdMembers));
            if (config is not null) Etcd.Put(Prefix + "/config", config);
        }
    }

    private T Own<T>(T d) where T : IDisposable { _owned.Add(d); return d; }

    public sealed record Host(TestNetns Ns, string PublicIp, string Dir)
    {
        public Vswitchd? D { get; set; }
        public NetnsRelay? Relay { get; set; }
    }

    /// <summary>Cuts the host off from etcd (its relay refuses connections) while the store stays up for the others.</summary>
    public static void CutFromStore(Host h)
    {
        h.Relay?.Dispose();
        h.Relay = null;
    }

    public void RestoreStore(Host h) => h.Relay = Own(new NetnsRelay(h.Ns.Name, Etcd!.ClientPorts));

    public Host AddHost(int index)
    {
        var ns = Underlay.AddHost(index);
        var h = new Host(ns, $"{UnderlayPrefix}.{index}", Directory.CreateTempSubdirectory("vst-ch").FullName);
        if (Etcd is not null) RestoreStore(h); // etcd's loopback ports, in the host's namespace too
        return h;
    }

    /// <summary>Starts (or starts again, on its state database) the host's vswitchd in cluster mode, in the host's namespace.</summary>
    public Vswitchd Start(Host h, int leaseTtl = 60, string? endpoints = null, params string[] extra)
    {
        var args = new List<string> { "--public-ip", h.PublicIp, "--lease-ttl", leaseTtl.ToString() };
        if (Etcd is not null) args.AddRange(["--etcd-endpoints", endpoints ?? Etcd.EndpointList]);
        args.AddRange(extra);
        var d = Vswitchd.StartInNetns(h.Ns.Name, h.Dir, null, [.. args]);
        d.KeepDir = true;
        h.D = d;
        return d;
    }

    /// <summary>This host's leased subnet, once it has one.</summary>
    public static string WaitLease(Vswitchd d, TimeSpan? timeout = null)
    {
        string? subnet = null;
        Wait.Until(() => (subnet = (string?)d.Get("/v1/cluster")["lease"]?["subnet"]) is not null, timeout ?? TimeSpan.FromSeconds(30), "a lease");
        return subnet!;
    }

    public static int ProgrammedHosts(Vswitchd d) => d.Get("/v1/cluster/hosts").AsArray().Count(h => (bool)h!["programmed"]!);

    public TestNetns AddContainer() => Underlay.AddContainer();

    /// <summary>Attaches a container to the host's cluster network; returns its address.</summary>
    public static string Attach(Vswitchd d, TestNetns c)
    {
        var (status, body) = d.Send(HttpMethod.Post, "/v1/attachments", new { network = "cluster", netns = c.Name });
        Assert.True(status == 201, $"attach {c.Name}: {status} {body}");
        return (string)body!["ip"]!;
    }

    public void Dispose()
    {
        for (int i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
    }
}

/// <summary>A fact that needs root and Debian's etcd (etcd-server, etcd-client), and says which is missing.</summary>
public sealed class EtcdFactAttribute : FactAttribute
{
    public EtcdFactAttribute()
    {
        if (!RootFactAttribute.IsRoot) Skip = "needs root (network namespaces, TAP devices)";
        else if (!EtcdCluster.Installed) Skip = "needs Debian's etcd-server and etcd-client (tools/test.sh installs them)";
    }
}

/// <summary>
/// Issue 14: many hosts, one network. Each host is a namespace with its own underlay veth and its own vswitchd in cluster
/// mode; etcd members run on loopback ports with private data directories. Nothing is configured by hand: no VTEP, no route.
/// </summary>
[Collection("netns")]
public class ClusterTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static void Ping(TestNetns from, string to, int count = 2)
    {
        var r = from.TryExec(Timeout, "ping", "-c", count.ToString(), "-i", "0.2", "-W", "2", to);
        Assert.True(r.ExitCode == 0, $"ping {to} from {from.Name}: {r.Output}");
    }

    private static bool Pings(TestNetns from, string to) => from.TryExec(Timeout, "ping", "-c", "1", "-W", "1", to).ExitCode == 0;

    [EtcdFact]
    public void Three_hosts_on_a_three_member_etcd_two_containers_each_all_ping_and_tcp_crosses()
    {
        using var lab = new ClusterLab(3, "10.211.0");
        var hosts = Enumerable.Range(1, 3).Select(lab.AddHost).ToArray();
        try
        {
            foreach (var h in hosts) lab.Start(h);
            var subnets = hosts.Select(h => ClusterLab.WaitLease(h.D!)).ToArray();
            Assert.Equal(3, subnets.Distinct().Count());
            foreach (var h in hosts) Wait.Until(() => ClusterLab.ProgrammedHosts(h.D!) == 2, Timeout, "two other hosts programmed");

            var containers = new List<(TestNetns Ns, string Ip)>();
            foreach (var h in hosts)
                for (int i = 0; i < 2; i++)
                {
                    var c = lab.AddContainer();
                    containers.Add((c, ClusterLab.Attach(h.D!, c)));
                }
            // Each container's address is in its host's leased subnet, with the cluster MTU.
            for (int i = 0; i < containers.Count; i++)
            {
                var subnet = System.Net.IPNetwork.Parse(subnets[i / 2]);
                Assert.True(subnet.Contains(System.Net.IPAddress.Parse(containers[i].Ip)), $"{containers[i].Ip} not in {subnets[i / 2]}");
                Assert.Contains("mtu 1450", containers[i].Ns.Exec("ip", "link", "show", "eth0"));
            }
            foreach (var (from, _) in containers)
                foreach (var (to, ip) in containers)
                    if (from != to) Ping(from, ip);

            var (sent, received) = Iperf.Run(containers[0].Ns, containers[4].Ns, containers[4].Ip, seconds: 3);
            Iperf.AssertIntact(sent, received);

            // Nothing by hand: each other host's subnet is routed via its subnet.0 on the transit network, from its lease.
            var d0 = hosts[0].D!;
            var routes = d0.Get("/v1/routes").AsArray();
            foreach (var remote in subnets.Skip(1))
            {
                var path = routes.Single(r => (string)r!["prefix"]! == remote)!["paths"]!.AsArray().Single()!;
                Assert.Equal("via", (string)path["kind"]!);
                Assert.Equal("cluster-vxlan", (string)path["network"]!);
                Assert.Equal(remote.Replace(".0/24", ".0"), (string)path["via"]!);
            }
            var vteps = d0.Get("/v1/overlay")["networks"]!.AsArray().Single(n => (string)n!["network"]! == "cluster-vxlan")!["vteps"]!.AsArray()
                .Select(v => (string)v!).OrderBy(v => v).ToArray();
            Assert.Equal(new[] { "10.211.0.2", "10.211.0.3" }, vteps);

            // vsctl cluster / cluster hosts: readable tables, and --json for programs.
            var status = Ok("--socket", d0.Socket, "cluster");
            Assert.Contains("reachable", status.Stdout);
            Assert.Contains(subnets[0], status.Stdout);
            var table = Ok("--socket", d0.Socket, "cluster", "hosts");
            Assert.Contains("SUBNET", table.Stdout);
            foreach (var s in subnets.Skip(1)) Assert.Contains(s, table.Stdout);
            var json = JsonNode.Parse(Ok("--socket", d0.Socket, "--json", "cluster", "hosts").Stdout)!.AsArray();
            Assert.Equal(2, json.Count);
            var toHost2 = json.Single(h => (string)h!["publicIp"]! == "10.211.0.3")!;
            Assert.True((long)toHost2["txPackets"]! > 0 && (long)toHost2["rxBytes"]! > 0, toHost2.ToJsonString());
            Assert.NotNull((string?)toHost2["leaseExpires"] ?? WaitExpiry(d0));

            // The leases in etcd are Flannel's: key, PublicIP, BackendType, BackendData.VNI and VtepMAC, bound to an etcd lease.
            var leases = lab.Etcd!.GetPrefix(ClusterLab.Prefix + "/subnets/");
            Assert.Equal(3, leases.Count);
            foreach (var (key, value) in leases)
            {
                var v = JsonNode.Parse(value)!;
                Assert.Equal("vxlan", (string)v["BackendType"]!);
                Assert.Equal(1, (int)v["BackendData"]!["VNI"]!);
                Assert.Matches("^[0-9a-f]{2}(:[0-9a-f]{2}){5}$", (string)v["BackendData"]!["VtepMAC"]!);
                Assert.Matches(@"/subnets/10\.244\.\d+\.0-24$", key);
            }
        }
        finally
        {
            foreach (var h in hosts) { h.D?.Dispose(); TryDelete(h.Dir); }
        }
    }

    [EtcdFact]
    public void A_host_that_joins_is_programmed_within_2_s_and_one_that_leaves_or_expires_is_removed()
    {
        using var lab = new ClusterLab(1, "10.212.0");
        var hosts = Enumerable.Range(1, 3).Select(lab.AddHost).ToArray();
        try
        {
            lab.Start(hosts[0]);
            string s1 = ClusterLab.WaitLease(hosts[0].D!);
            var c1 = lab.AddContainer();
            ClusterLab.Attach(hosts[0].D!, c1);

            // Join: host 2 leases a subnet; host 1 programs it within 2 s of the lease appearing.
            lab.Start(hosts[1]);
            string s2 = ClusterLab.WaitLease(hosts[1].D!);
            var seen = Stopwatch.StartNew(); // the lease existed at least this long when host 1 has it
            Wait.Until(() => ClusterLab.ProgrammedHosts(hosts[0].D!) == 1, TimeSpan.FromSeconds(10), "host 1 to program host 2");
            double joinMs = seen.Elapsed.TotalMilliseconds;
            Assert.True(joinMs < 2000, $"host 2 programmed on host 1 {joinMs:F0} ms after its lease was seen");
            var c2 = lab.AddContainer();
            string ip2 = ClusterLab.Attach(hosts[1].D!, c2);
            Ping(c1, ip2);

            // An upper bound too: a lease written with etcdctl (a host that is not started here) is programmed within 2 s of the put.
            var put = Stopwatch.StartNew();
            lab.Etcd!.Put(ClusterLab.Prefix + "/subnets/10.244.250.0-24", FlannelLease("10.212.0.250", "02:bb:00:00:00:fa"));
            Wait.Until(() => ClusterLab.ProgrammedHosts(hosts[0].D!) == 2, TimeSpan.FromSeconds(10), "host 1 to program the written lease");
            double putMs = put.Elapsed.TotalMilliseconds;
            Assert.True(putMs < 2000, $"a lease written by etcdctl was programmed {putMs:F0} ms after the put began");
            lab.Etcd.Delete(ClusterLab.Prefix + "/subnets/10.244.250.0-24");
            Wait.Until(() => ClusterLab.ProgrammedHosts(hosts[0].D!) == 1, TimeSpan.FromSeconds(5), "host 1 to remove the deleted lease");

            // Leave gracefully: SIGTERM gives the lease back; host 1 removes host 2 (route, VTEP) at once.
            Assert.Equal(0, hosts[1].D!.Stop());
            var left = Stopwatch.StartNew();
            Wait.Until(() => ClusterLab.ProgrammedHosts(hosts[0].D!) == 0, TimeSpan.FromSeconds(5), "host 1 to remove host 2 after it left");
            Assert.DoesNotContain(lab.Etcd!.GetPrefix(ClusterLab.Prefix + "/subnets/").Keys, k => k.EndsWith(s2.Replace('/', '-')));
            Assert.DoesNotContain(hosts[0].D!.Get("/v1/routes").AsArray(), r => (string)r!["prefix"]! == s2);
            Console.WriteLine($"join: programmed {joinMs:F0} ms after the lease was seen, {putMs:F0} ms after an etcdctl put began; leave: removed {left.ElapsedMilliseconds} ms after SIGTERM's exit");

            // Expiry: host 3 with a 4 s lease dies (SIGKILL); when its lease expires, host 1 removes it.
            lab.Start(hosts[2], leaseTtl: 4);
            string s3 = ClusterLab.WaitLease(hosts[2].D!);
            Wait.Until(() => ClusterLab.ProgrammedHosts(hosts[0].D!) == 1, TimeSpan.FromSeconds(5), "host 1 to program host 3");
            hosts[2].D!.Kill();
            var killed = Stopwatch.StartNew();
            Wait.Until(() => ClusterLab.ProgrammedHosts(hosts[0].D!) == 0, TimeSpan.FromSeconds(15), "host 1 to remove host 3 when its lease expired");
            Assert.True(killed.Elapsed < TimeSpan.FromSeconds(4 + 5), $"removed {killed.Elapsed.TotalSeconds:F1} s after the kill (TTL 4 s)");
            Assert.DoesNotContain(hosts[0].D!.Get("/v1/routes").AsArray(), r => (string)r!["prefix"]! == s3);
            Console.WriteLine($"expiry: host 3 removed {killed.Elapsed.TotalSeconds:F1} s after SIGKILL (TTL 4 s)");
        }
        finally
        {
            foreach (var h in hosts) { h.D?.Dispose(); TryDelete(h.Dir); }
        }
    }

    [EtcdFact]
    public void A_vswitchd_killed_and_started_again_keeps_its_subnet_and_its_containers_are_reachable_again()
    {
        using var lab = new ClusterLab(1, "10.213.0");
        var hosts = Enumerable.Range(1, 2).Select(lab.AddHost).ToArray();
        try
        {
            foreach (var h in hosts) lab.Start(h);
            string before = ClusterLab.WaitLease(hosts[1].D!);
            ClusterLab.WaitLease(hosts[0].D!);
            var c1 = lab.AddContainer();
            var c2 = lab.AddContainer();
            ClusterLab.Attach(hosts[0].D!, c1);
            string ip2 = ClusterLab.Attach(hosts[1].D!, c2);
            Wait.Until(() => Pings(c1, ip2), Timeout, "c1 to reach c2");

            hosts[1].D!.Kill();
            hosts[1].D!.Dispose();
            lab.Start(hosts[1]);
            Assert.Equal(before, ClusterLab.WaitLease(hosts[1].D!));
            Wait.Until(() => ClusterLab.ProgrammedHosts(hosts[1].D!) == 1, Timeout, "host 2 to program host 1 again");
            Ping(c1, ip2);
            Ping(c2, (string)hosts[0].D!.Get("/v1/attachments").AsArray()[0]!["ip"]!);
            // One lease per host: the restart took its own back, it did not add a second.
            var leases = lab.Etcd!.GetPrefix(ClusterLab.Prefix + "/subnets/");
            Assert.Equal(2, leases.Count);
            Assert.Single(leases.Values, v => v.Contains("\"PublicIP\":\"10.213.0.2\""));
        }
        finally
        {
            foreach (var h in hosts) { h.D?.Dispose(); TryDelete(h.Dir); }
        }
    }

    [RootFact]
    public void Without_etcd_a_static_cluster_file_gives_the_same_result()
    {
        using var lab = new ClusterLab(0, "10.214.0");
        var hosts = Enumerable.Range(1, 2).Select(lab.AddHost).ToArray();
        string file = Path.Combine(hosts[0].Dir, "cluster.json");
        File.WriteAllText(file, """
            { "network": "10.244.0.0/16", "vni": 1, "port": 8472,
              "hosts": [ { "subnet": "10.244.1.0/24", "publicIp": "10.214.0.1", "vtepMac": "02:aa:00:00:00:01" },
                         { "subnet": "10.244.2.0/24", "publicIp": "10.214.0.2", "vtepMac": "02:aa:00:00:00:02" } ] }
            """);
        try
        {
            foreach (var h in hosts) lab.Start(h, extra: ["--cluster-file", file]);
            Assert.Equal("10.244.1.0/24", ClusterLab.WaitLease(hosts[0].D!));
            Assert.Equal("10.244.2.0/24", ClusterLab.WaitLease(hosts[1].D!));
            var c1 = lab.AddContainer();
            var c2 = lab.AddContainer();
            string ip1 = ClusterLab.Attach(hosts[0].D!, c1);
            string ip2 = ClusterLab.Attach(hosts[1].D!, c2);
            Ping(c1, ip2);
            Ping(c2, ip1);
            var status = Ok("--socket", hosts[0].D!.Socket, "cluster");
            Assert.Contains("file " + file, status.Stdout);
            Assert.Contains("02:aa:00:00:00:01", status.Stdout);

            // The CNI plugin on the cluster network: an address of the host's subnet, the cluster network's route and MTU.
            var cc = lab.AddContainer();
            string conf = new JsonObject { ["cniVersion"] = "1.1.0", ["name"] = "clusternet", ["type"] = "vswitch-cni", ["network"] = "cluster",
                ["socket"] = hosts[0].D!.Socket }.ToJsonString();
            string ctr = "ctr" + Names.Random("");
            var add = CniPlugin.Run("ADD", conf, containerId: ctr, netns: cc.Path);
            Assert.True(add.ExitCode == 0, add.ToString());
            var result = add.Json!;
            string address = (string)result["ips"]![0]!["address"]!;
            Assert.StartsWith("10.244.1.", address);
            Assert.Equal(1450, (int)result["interfaces"]![0]!["mtu"]!);
            var routes = result["routes"]!.AsArray().Select(r => ((string)r!["dst"]!, (string)r["gw"]!)).ToArray();
            Assert.Equal(new[] { ("10.244.0.0/16", "10.244.1.1"), ("0.0.0.0/0", "10.244.1.1") }, routes);
            Ping(cc, ip2);
            var del = CniPlugin.Run("DEL", conf, containerId: ctr, netns: cc.Path);
            Assert.True(del.ExitCode == 0, del.ToString());
        }
        finally
        {
            foreach (var h in hosts) { h.D?.Dispose(); TryDelete(h.Dir); }
        }
    }

    /// <summary>CPU time (user + system) a process has used so far.</summary>
    private static TimeSpan CpuTime(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return TimeSpan.FromSeconds((long.Parse(f[11]) + long.Parse(f[12])) / 100.0); // utime, stime in clock ticks (USER_HZ 100)
    }

    /// <summary>A ping run in the background: count, interval 0.2 s; the loss is read when it ends.</summary>
    private static Process StartPing(TestNetns from, string to, int count) =>
        from.Start("ping", "-c", count.ToString(), "-i", "0.2", "-W", "1", to);

    private static (int Sent, int Received) PingResult(Process p, TimeSpan timeout)
    {
        string output = p.StandardOutput.ReadToEndAsync().WaitAsync(timeout).Result;
        p.WaitForExit();
        var m = System.Text.RegularExpressions.Regex.Match(output, @"(\d+) packets transmitted, (\d+) received");
        Assert.True(m.Success, "ping said: " + output);
        return (int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value));
    }

    [EtcdFact]
    public void An_etcd_outage_of_30_s_loses_no_ping_costs_no_cpu_and_a_host_removed_meanwhile_goes_within_5_s()
    {
        using var lab = new ClusterLab(3, "10.215.0");
        var hosts = Enumerable.Range(1, 3).Select(lab.AddHost).ToArray();
        try
        {
            foreach (var h in hosts) lab.Start(h);
            foreach (var h in hosts) Wait.Until(() => h.D!.Get("/v1/cluster")["lease"] is not null && ClusterLab.ProgrammedHosts(h.D!) == 2, Timeout, "leases and hosts");
            var c1 = lab.AddContainer();
            var c2 = lab.AddContainer();
            ClusterLab.Attach(hosts[0].D!, c1);
            string ip2 = ClusterLab.Attach(hosts[1].D!, c2);
            Wait.Until(() => Pings(c1, ip2), Timeout, "c1 to reach c2");

            // Every member stopped for 30 s while c1 pings c2 (5 a second); first 10 s with the store up, for the CPU it costs then.
            using var ping = StartPing(c1, ip2, 250);
            var cpuStart = CpuTime(hosts[0].D!.Pid);
            var normal = Stopwatch.StartNew();
            Thread.Sleep(TimeSpan.FromSeconds(10)); // a measuring period, not a wait for a condition
            var cpuBefore = CpuTime(hosts[0].D!.Pid);
            double normalRate = (cpuBefore - cpuStart).TotalSeconds / normal.Elapsed.TotalSeconds;
            var outage = Stopwatch.StartNew();
            lab.Etcd!.StopAll();
            Wait.Until(() => (bool)hosts[0].D!.Get("/v1/cluster")["reachable"]! == false, TimeSpan.FromSeconds(15), "host 1 to see the store unreachable");
            var status = Ok("--socket", hosts[0].D!.Socket, "cluster");
            Assert.Contains("UNREACHABLE since", status.Stdout);
            Assert.NotNull((string?)hosts[0].D!.Get("/v1/cluster")["unreachableSince"]);
            Assert.Equal(2, ClusterLab.ProgrammedHosts(hosts[0].D!)); // the known hosts stay
            Thread.Sleep(TimeSpan.FromSeconds(30) - outage.Elapsed); // the outage's length is what is tested, not a wait for a condition
            var cpu = CpuTime(hosts[0].D!.Pid) - cpuBefore;
            double outageSeconds = outage.Elapsed.TotalSeconds;
            lab.Etcd.StartAll();
            lab.Etcd.WaitHealthy(TimeSpan.FromSeconds(30));
            var (sent, received) = PingResult(ping, TimeSpan.FromSeconds(60));
            Assert.True(sent >= 200 && received == sent, $"ping through the outage: {sent} sent, {received} received");
            // The same pings with the store up cost some (forwarding, timers, the runtime); the outage's retries (one per 2 s)
            // add a little (+0.5 to +1.5 % of a core seen on a loaded machine); 3 % more means something spins (a busy
            // retry loop takes a whole core).
            double outageRate = cpu.TotalSeconds / outageSeconds;
            Assert.True(outageRate < normalRate + 0.03, $"vswitchd used {outageRate:P1} of a core in the outage, {normalRate:P1} with the store up");
            Wait.Until(() => (bool)hosts[0].D!.Get("/v1/cluster")["reachable"]!, TimeSpan.FromSeconds(10), "host 1 to see the store again");

            // A host removed from the store while host 1 cannot reach it (host 3 dies; an operator deletes its lease):
            // host 1 removes it within 5 s of reaching the store again (it lists and diffs on reconnect).
            ClusterLab.CutFromStore(hosts[0]);
            Wait.Until(() => (bool)hosts[0].D!.Get("/v1/cluster")["reachable"]! == false, TimeSpan.FromSeconds(15), "host 1 to lose the store");
            string s3 = (string)hosts[2].D!.Get("/v1/cluster")["lease"]!["subnet"]!;
            hosts[2].D!.Kill();
            lab.Etcd.Delete(ClusterLab.Prefix + "/subnets/" + s3.Replace('/', '-'));
            Assert.Equal(2, ClusterLab.ProgrammedHosts(hosts[0].D!));
            lab.RestoreStore(hosts[0]);
            var back = Stopwatch.StartNew();
            Wait.Until(() => ClusterLab.ProgrammedHosts(hosts[0].D!) == 1, TimeSpan.FromSeconds(5), "host 1 to remove host 3 once it reaches the store");
            Console.WriteLine($"outage: {sent} pings sent, {received} received over {outageSeconds:F0} s without etcd; vswitchd CPU {outageRate:P1} of a core in the outage ({normalRate:P1} with etcd up); "
                + $"host removed meanwhile gone {back.ElapsedMilliseconds} ms after the store was reachable again");
            Ping(c1, ip2);
        }
        finally
        {
            foreach (var h in hosts) { h.D?.Dispose(); TryDelete(h.Dir); }
        }
    }

    [EtcdFact]
    public void One_etcd_member_of_three_killed_is_not_noticed()
    {
        using var lab = new ClusterLab(3, "10.216.0");
        var hosts = Enumerable.Range(1, 2).Select(lab.AddHost).ToArray();
        try
        {
            foreach (var h in hosts) lab.Start(h);
            foreach (var h in hosts) Wait.Until(() => h.D!.Get("/v1/cluster")["lease"] is not null && ClusterLab.ProgrammedHosts(h.D!) == 1, Timeout, "leases and hosts");
            var c1 = lab.AddContainer();
            var c2 = lab.AddContainer();
            ClusterLab.Attach(hosts[0].D!, c1);
            string ip2 = ClusterLab.Attach(hosts[1].D!, c2);
            Wait.Until(() => Pings(c1, ip2), Timeout, "c1 to reach c2");
            using var ping = StartPing(c1, ip2, 40);
            lab.Etcd!.KillMember(0);
            // The two left elect a leader if the dead one led (a second or more on a loaded machine): the test's own
            // writes wait for that; vswitchd's hosts must not notice anything meanwhile.
            var election = Stopwatch.StartNew();
            lab.Etcd.WaitHealthy(TimeSpan.FromSeconds(30));
            Console.WriteLine($"one member killed: the other two took writes again after {election.ElapsedMilliseconds} ms");
            // The others still take changes: a lease written now is programmed within 2 s on both hosts.
            var put = Stopwatch.StartNew();
            lab.Etcd.Put(ClusterLab.Prefix + "/subnets/10.244.251.0-24", FlannelLease("10.216.0.251", "02:bb:00:00:00:fb"));
            foreach (var h in hosts) Wait.Until(() => ClusterLab.ProgrammedHosts(h.D!) == 2, TimeSpan.FromSeconds(10), "the new lease programmed");
            long putMs = put.ElapsedMilliseconds;
            Assert.True(putMs < 2000, $"programmed {putMs} ms after the put began (one member down)");
            var (sent, received) = PingResult(ping, TimeSpan.FromSeconds(30));
            Assert.Equal(sent, received);
            foreach (var h in hosts) Wait.Until(() => (bool)h.D!.Get("/v1/cluster")["reachable"]!, TimeSpan.FromSeconds(10), "the store reachable");
            Console.WriteLine($"one member killed: {sent}/{received} pings, a new lease programmed on both hosts {putMs} ms after the put began");
        }
        finally
        {
            foreach (var h in hosts) { h.D?.Dispose(); TryDelete(h.Dir); }
        }
    }

    [EtcdFact]
    public void Two_hosts_started_at_the_same_moment_never_take_the_same_subnet_20_times()
    {
        // Two subnets only, so that a random pick collides half the time: the create-only write must settle every race.
        using var lab = new ClusterLab(1, "10.217.0",
            """{"Network": "10.244.0.0/16", "SubnetLen": 24, "SubnetMin": "10.244.1.0", "SubnetMax": "10.244.2.0", "Backend": {"Type": "vxlan", "VNI": 1}}""");
        var nss = Enumerable.Range(1, 2).Select(lab.AddHost).ToArray();
        int collisions = 0;
        for (int round = 1; round <= 20; round++)
        {
            var hosts = nss.Select(h => new ClusterLab.Host(h.Ns, h.PublicIp, Directory.CreateTempSubdirectory("vst-cr").FullName) { Relay = h.Relay }).ToArray();
            try
            {
                var starts = hosts.Select(h => Task.Run(() => lab.Start(h))).ToArray();
                Task.WaitAll(starts);
                var subnets = hosts.Select(h => ClusterLab.WaitLease(h.D!)).ToArray();
                Assert.True(subnets[0] != subnets[1], $"round {round}: both hosts took {subnets[0]}");
                var leases = lab.Etcd!.GetPrefix(ClusterLab.Prefix + "/subnets/");
                Assert.Equal(2, leases.Count);
                collisions += hosts.Count(h => h.D!.Log.Contains("was taken by another host meanwhile"));
            }
            finally
            {
                foreach (var h in hosts) { h.D?.Dispose(); TryDelete(h.Dir); } // SIGTERM gives the leases back
            }
            Wait.Until(() => lab.Etcd!.GetPrefix(ClusterLab.Prefix + "/subnets/").Count == 0, Timeout, "the leases given back");
        }
        Console.WriteLine($"race: 20 rounds, {collisions} lost race(s) settled by the create-only write");
    }

    /// <summary>
    /// A host that is not vswitchd: the kernel set up exactly as flanneld's vxlan backend and the flannel CNI set it up.
    /// flannel.1 (VNI 1, port 8472, no learning) with subnet.0/32; cni0 with subnet.1/24 and a container on a veth; and for
    /// each other host's lease: a permanent neighbour subnet.0 → VtepMAC, an fdb entry VtepMAC → PublicIP, and a route to
    /// its subnet via subnet.0 on-link (pkg/backend/vxlan/vxlan_network.go, handleSubnetEvents).
    /// </summary>
    private sealed class FlannelHost(TestNetns ns, string publicIp, string subnetBase)
    {
        public string Subnet => subnetBase + ".0/24";
        public string ContainerIp => subnetBase + ".2";
        public string VtepMac { get; private set; } = "";

        public void SetUp(TestNetns container)
        {
            ns.Exec("ip", "link", "add", "flannel.1", "type", "vxlan", "id", "1", "local", publicIp, "dev", "u0", "dstport", "8472", "nolearning");
            ns.Exec("ip", "addr", "add", subnetBase + ".0/32", "dev", "flannel.1");
            ns.Exec("ip", "link", "set", "flannel.1", "up");
            VtepMac = (string)JsonNode.Parse(ns.Exec("ip", "-j", "link", "show", "dev", "flannel.1"))!.AsArray()[0]!["address"]!;
            ns.Exec("sysctl", "-q", "-w", "net.ipv4.ip_forward=1");
            ns.Exec("ip", "link", "add", "cni0", "type", "bridge");
            ns.Exec("ip", "link", "set", "cni0", "mtu", "1450");
            ns.Exec("ip", "addr", "add", subnetBase + ".1/24", "dev", "cni0");
            ns.Exec("ip", "link", "set", "cni0", "up");
            string veth = "vf" + Names.Random("");
            Proc.Check("ip", "link", "add", veth, "netns", ns.Name, "mtu", "1450", "type", "veth", "peer", "name", "eth0", "netns", container.Name, "mtu", "1450");
            ns.Exec("ip", "link", "set", veth, "master", "cni0");
            ns.Exec("ip", "link", "set", veth, "up");
            container.Exec("ip", "addr", "add", ContainerIp + "/24", "dev", "eth0");
            container.Exec("ip", "link", "set", "eth0", "up");
            container.Exec("ip", "route", "add", "default", "via", subnetBase + ".1");
        }

        /// <summary>What flanneld does for a lease it sees: neighbour, fdb and on-link route.</summary>
        public void AddRemote(string subnet, string remotePublicIp, string remoteVtepMac)
        {
            string gw = subnet.Replace(".0/24", ".0");
            ns.Exec("ip", "neigh", "replace", gw, "lladdr", remoteVtepMac, "dev", "flannel.1", "nud", "permanent");
            ns.Exec("bridge", "fdb", "append", remoteVtepMac, "dev", "flannel.1", "dst", remotePublicIp, "self", "permanent");
            ns.Exec("ip", "route", "replace", subnet, "via", gw, "dev", "flannel.1", "onlink");
        }
    }

    [EtcdFact]
    public void A_host_running_flannels_vxlan_backend_and_vswitchd_hosts_share_one_network()
    {
        using var lab = new ClusterLab(1, "10.219.0");
        var hosts = Enumerable.Range(1, 2).Select(lab.AddHost).ToArray();
        var fns = lab.Underlay.AddHost(3);
        var fc = lab.AddContainer();
        var flannel = new FlannelHost(fns, "10.219.0.3", "10.244.200");
        try
        {
            flannel.SetUp(fc);
            // Its lease, as flanneld writes it: Flannel's JSON, bound to an etcd lease.
            string leaseId = System.Text.RegularExpressions.Regex.Match(lab.Etcd!.Check("lease", "grant", "600"), "lease ([0-9a-f]+) granted").Groups[1].Value;
            lab.Etcd.Check("put", "--lease=" + leaseId, ClusterLab.Prefix + "/subnets/10.244.200.0-24", FlannelLease("10.219.0.3", flannel.VtepMac));

            foreach (var h in hosts) lab.Start(h);
            foreach (var h in hosts) Wait.Until(() => h.D!.Get("/v1/cluster")["lease"] is not null && ClusterLab.ProgrammedHosts(h.D!) == 2, Timeout, "leases, and the other two hosts programmed");
            // flanneld's side: program each vswitchd host from its lease in etcd, as flanneld would on its watch.
            foreach (var (key, value) in lab.Etcd.GetPrefix(ClusterLab.Prefix + "/subnets/"))
            {
                if (key.EndsWith("10.244.200.0-24")) continue;
                var v = JsonNode.Parse(value)!;
                flannel.AddRemote(key[(key.LastIndexOf('/') + 1)..].Replace('-', '/'), (string)v["PublicIP"]!, (string)v["BackendData"]!["VtepMAC"]!);
            }
            var c1 = lab.AddContainer();
            var c2 = lab.AddContainer();
            string ip1 = ClusterLab.Attach(hosts[0].D!, c1);
            string ip2 = ClusterLab.Attach(hosts[1].D!, c2);

            string pcap = Path.Combine(hosts[0].Dir, "flannel-underlay.pcap");
            var dump = fns.Start("tcpdump", "-Z", "root", "--immediate-mode", "-i", "u0", "-U", "-w", pcap, "udp", "port", "8472");
            try
            {
                Wait.Until(() => File.Exists(pcap), TimeSpan.FromSeconds(10), "tcpdump to start");
                Ping(c1, flannel.ContainerIp);
                Ping(c2, flannel.ContainerIp);
                Ping(fc, ip1);
                Ping(fc, ip2);
                Ping(c1, ip2); // and the vswitchd hosts between themselves, as before
                Wait.Until(() => new FileInfo(pcap).Length > 2000, TimeSpan.FromSeconds(10), "tcpdump to write the captured packets");
            }
            finally
            {
                Proc.Run("kill", "-INT", dump.Id.ToString());
                dump.WaitForExit(5000);
                Proc.KillQuietly(dump);
            }
            var tshark = Proc.Run(TimeSpan.FromSeconds(60), "tshark", "-r", pcap, "-V", "-d", "udp.port==8472,vxlan", "-Y", "vxlan && icmp");
            string text = tshark.StdOut;
            Assert.True(text.Length > 0, $"tshark printed nothing (pcap {new FileInfo(pcap).Length} bytes): {tshark.StdErr}");
            Assert.Contains("VXLAN Network Identifier (VNI): 1", text);
            Assert.Contains("Src: " + flannel.ContainerIp, text);
            Assert.Contains("Src: " + ip1, text);
            Assert.Contains("Src: " + ip2, text);
            // The kernel routed what vswitchd sent to flannel.1's MAC, and vswitchd took what the kernel sent to its VTEP MAC.
            Assert.Contains("Dst: " + flannel.VtepMac, text);
            var hostsView = hosts[0].D!.Get("/v1/cluster/hosts").AsArray().Single(h => (string)h!["publicIp"]! == "10.219.0.3")!;
            Assert.True((long)hostsView["rxPackets"]! > 0 && (long)hostsView["txPackets"]! > 0, hostsView.ToJsonString());
        }
        finally
        {
            foreach (var h in hosts) { h.D?.Dispose(); TryDelete(h.Dir); }
        }
    }

    [EtcdFact]
    public void A_hitless_restart_keeps_the_lease_and_the_other_hosts_never_see_the_host_leave()
    {
        using var lab = new ClusterLab(1, "10.222.0");
        var hosts = Enumerable.Range(1, 2).Select(lab.AddHost).ToArray();
        int? successor = null;
        try
        {
            foreach (var h in hosts) lab.Start(h);
            string s1 = ClusterLab.WaitLease(hosts[0].D!);
            foreach (var h in hosts) Wait.Until(() => ClusterLab.ProgrammedHosts(h.D!) == 1, Timeout, "the other host programmed");
            var c1 = lab.AddContainer();
            var c2 = lab.AddContainer();
            ClusterLab.Attach(hosts[0].D!, c1);
            string ip2 = ClusterLab.Attach(hosts[1].D!, c2);
            Wait.Until(() => Pings(c1, ip2), Timeout, "c1 to reach c2");
            using var ping = StartPing(c1, ip2, 100);
            var r = Ok("--socket", hosts[0].D!.Socket, "--json", "restart");
            successor = (int)JsonNode.Parse(r.Stdout)!["newPid"]!;
            Wait.Until(() => hosts[0].D!.HasExited, TimeSpan.FromSeconds(20), "the old vswitchd to exit");
            Assert.Equal(0, hosts[0].D!.ExitCode);
            // The successor answers on the same socket with the same lease, and has host 2 programmed again.
            Assert.Equal(s1, ClusterLab.WaitLease(hosts[0].D!));
            Wait.Until(() => ClusterLab.ProgrammedHosts(hosts[0].D!) == 1, Timeout, "the successor to program host 2");
            var (sent, received) = PingResult(ping, TimeSpan.FromSeconds(60));
            Assert.True(received == sent, $"ping across the hand-over: {sent} sent, {received} received");
            // The lease was not given back: one key for host 1, and host 2 never removed it.
            var leases = lab.Etcd!.GetPrefix(ClusterLab.Prefix + "/subnets/");
            Assert.Single(leases.Values, v => v.Contains("\"PublicIP\":\"10.222.0.1\""));
            Assert.DoesNotContain($"host {s1} left", hosts[1].D!.Log);
            Assert.DoesNotContain("given back", hosts[0].D!.Log);
            Ping(c2, (string)hosts[0].D!.Get("/v1/attachments").AsArray()[0]!["ip"]!);
        }
        finally
        {
            if (successor is int pid) RestartTests.StopByPid(pid);
            foreach (var h in hosts) { h.D?.Dispose(); TryDelete(h.Dir); }
        }
    }

    [PodmanFact]
    public void Podman_containers_on_two_cluster_hosts_ping_each_other_through_the_cni_plugin()
    {
        using var lab = new ClusterLab(0, "10.221.0");
        var hosts = Enumerable.Range(1, 2).Select(lab.AddHost).ToArray();
        string file = Path.Combine(hosts[0].Dir, "cluster.json");
        File.WriteAllText(file, """
            { "network": "10.244.0.0/16",
              "hosts": [ { "subnet": "10.244.1.0/24", "publicIp": "10.221.0.1", "vtepMac": "02:aa:00:00:01:01" },
                         { "subnet": "10.244.2.0/24", "publicIp": "10.221.0.2", "vtepMac": "02:aa:00:00:01:02" } ] }
            """);
        string sfx = Names.Random("");
        string dir = Directory.CreateTempSubdirectory("vspc-").FullName;
        bool hadVarLib = Directory.Exists("/var/lib/containers");
        var env = new Dictionary<string, string>
        {
            ["CONTAINERS_CONF"] = Path.Combine(dir, "containers.conf"),
            ["CONTAINERS_STORAGE_CONF"] = Path.Combine(dir, "storage.conf"),
        };
        ProcessResult Podman(params string[] args)
        {
            var psi = new ProcessStartInfo("podman") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var (k, v) in env) psi.Environment[k] = v;
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            var so = p.StandardOutput.ReadToEndAsync();
            var se = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromSeconds(45))) { Proc.KillQuietly(p); throw new TimeoutException("podman " + string.Join(' ', args)); }
            p.WaitForExit();
            return new ProcessResult(p.ExitCode, so.Result, se.Result);
        }
        string[] nets = ["vscn1" + sfx, "vscn2" + sfx];
        string[] names = ["vscc1" + sfx, "vscc2" + sfx];
        try
        {
            foreach (var h in hosts) lab.Start(h, extra: ["--cluster-file", file]);
            foreach (var h in hosts) Wait.Until(() => ClusterLab.ProgrammedHosts(h.D!) == 1, Timeout, "the other host programmed");
            string root = Path.Combine(dir, "rootfs");
            Directory.CreateDirectory(Path.Combine(root, "bin"));
            foreach (var sub in new[] { "etc", "proc", "sys", "dev", "tmp", "run" }) Directory.CreateDirectory(Path.Combine(root, sub));
            File.Copy("/bin/busybox", Path.Combine(root, "bin/busybox"));
            foreach (var applet in new[] { "sh", "ip", "ping", "sleep" }) File.CreateSymbolicLink(Path.Combine(root, "bin", applet), "busybox");
            Directory.CreateDirectory(Path.Combine(dir, "cni.d"));
            File.WriteAllText(env["CONTAINERS_CONF"], $"""
                [containers]
                netns = "private"
                default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
                [engine]
                cgroup_manager = "cgroupfs"
                events_logger = "file"
                runtime = "runc"
                tmp_dir = "{dir}/tmp"
                [network]
                network_backend = "cni"
                cni_plugin_dirs = ["{CniPlugin.Dir}", "/usr/lib/cni"]
                network_config_dir = "{dir}/cni.d"
                default_network = "{nets[0]}"
                """);
            File.WriteAllText(env["CONTAINERS_STORAGE_CONF"], $"""
                [storage]
                driver = "vfs"
                runroot = "{dir}/run"
                graphroot = "{dir}/storage"
                """);
            // One podman network per host: the same plugin, each host's vswitchd socket, its cluster network.
            for (int i = 0; i < 2; i++)
                File.WriteAllText(Path.Combine(dir, "cni.d", nets[i] + ".conflist"), new JsonObject
                {
                    ["cniVersion"] = "1.0.0", ["name"] = nets[i],
                    ["plugins"] = new JsonArray(new JsonObject { ["type"] = "vswitch-cni", ["network"] = "cluster", ["socket"] = hosts[i].D!.Socket }),
                }.ToJsonString());
            for (int i = 0; i < 2; i++)
            {
                var run = Podman("run", "-d", "--name", names[i], "--network", nets[i], "--rootfs", root, "sleep", "60");
                Assert.True(run.ExitCode == 0, $"podman run {names[i]}: {run.Output}");
            }
            string ip1 = (string)hosts[0].D!.Get("/v1/attachments").AsArray().Single()!["ip"]!;
            string ip2 = (string)hosts[1].D!.Get("/v1/attachments").AsArray().Single()!["ip"]!;
            Assert.StartsWith("10.244.1.", ip1);
            Assert.StartsWith("10.244.2.", ip2);
            var ping = Podman("exec", names[0], "ping", "-c", "2", "-W", "2", ip2);
            Assert.True(ping.ExitCode == 0, $"ping {ip2} from {names[0]}: {ping.Output}");
            ping = Podman("exec", names[1], "ping", "-c", "2", "-W", "2", ip1);
            Assert.True(ping.ExitCode == 0, $"ping {ip1} from {names[1]}: {ping.Output}");
            Assert.Contains("mtu 1450", Podman("exec", names[0], "ip", "link", "show", "eth0").StdOut);
        }
        finally
        {
            foreach (var n in names) try { Podman("rm", "-f", "-t", "0", n); } catch (TimeoutException) { }
            foreach (var h in hosts) { h.D?.Dispose(); TryDelete(h.Dir); }
            Proc.Run("umount", "-R", Path.Combine(dir, "storage"));
            Proc.Run("umount", "-R", Path.Combine(dir, "run"));
            try { Directory.Delete(dir, true); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            if (!hadVarLib && Directory.Exists("/var/lib/containers")) Directory.Delete("/var/lib/containers", true);
        }
    }

    /// <summary>A lease's value exactly as Flannel's LeaseAttrs marshal it.</summary>
    internal static string FlannelLease(string publicIp, string vtepMac) =>
        "{\"PublicIP\":\"" + publicIp + "\",\"BackendType\":\"vxlan\",\"BackendData\":{\"VNI\":1,\"VtepMAC\":\"" + vtepMac + "\"}}";

    private static string? WaitExpiry(Vswitchd d)
    {
        string? e = null;
        Wait.Until(() => (e = (string?)d.Get("/v1/cluster/hosts").AsArray()[0]!["leaseExpires"]) is not null, Timeout, "a lease expiry");
        return e;
    }

    internal static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, true); } catch (IOException) { }
    }
}
