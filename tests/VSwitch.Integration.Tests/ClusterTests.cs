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
    }

    public Host AddHost(int index)
    {
        var ns = Underlay.AddHost(index);
        if (Etcd is not null) Own(new NetnsRelay(ns.Name, Etcd.ClientPorts)); // etcd's loopback ports, in the host's namespace too
        return new Host(ns, $"{UnderlayPrefix}.{index}", Directory.CreateTempSubdirectory("vst-ch").FullName);
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
