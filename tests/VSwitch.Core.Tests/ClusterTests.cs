using Microsoft.Extensions.Logging.Abstractions;
using VSwitch.Cluster;

namespace VSwitch.Core.Tests;

/// <summary>The cluster control plane without etcd: Flannel's formats, and the agent against a store and a switch in memory.</summary>
public class ClusterTests
{
    [Fact]
    public void Flannel_config_takes_flannels_defaults()
    {
        var c = FlannelConfig.Parse("""{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}""");
        Assert.Equal(24, c.SubnetLen);
        Assert.Equal("10.244.1.0", Ipv4Prefix.FormatAddress(c.SubnetMin)); // the first subnet is left out, as Flannel does
        Assert.Equal("10.244.255.0", Ipv4Prefix.FormatAddress(c.SubnetMax));
        Assert.Equal((1, 8472), (c.Vni, c.Port));
        Assert.Equal(255, c.Subnets().Count());
        var bounded = FlannelConfig.Parse("""{"Network": "10.244.0.0/16", "SubnetLen": 24, "SubnetMin": "10.244.10.0", "SubnetMax": "10.244.12.0", "Backend": {"Type": "vxlan", "VNI": 7, "Port": 4789}}""");
        Assert.Equal(["10.244.10.0/24", "10.244.11.0/24", "10.244.12.0/24"], bounded.Subnets().Select(s => s.ToString()));
        Assert.Equal((7, 4789), (bounded.Vni, bounded.Port));
    }

    [Theory]
    [InlineData("""{"Backend": {"Type": "vxlan"}}""", "Network is missing")]
    [InlineData("""{"Network": "10.244.0.1/16"}""", "Network '10.244.0.1/16'")]
    [InlineData("""{"Network": "10.244.0.0/16", "SubnetLen": 16, "Backend": {"Type": "vxlan"}}""", "SubnetLen 16")]
    [InlineData("""{"Network": "10.244.0.0/16", "SubnetMin": "10.244.1.7", "Backend": {"Type": "vxlan"}}""", "SubnetMin '10.244.1.7' is not on a /24 boundary")]
    [InlineData("""{"Network": "10.244.0.0/16", "SubnetMax": "10.245.0.0", "Backend": {"Type": "vxlan"}}""", "SubnetMax '10.245.0.0' is not an address in 10.244.0.0/16")]
    [InlineData("""{"Network": "10.244.0.0/16", "Backend": {"Type": "host-gw"}}""", "Backend.Type 'host-gw'")]
    [InlineData("""{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan", "VNI": 0}}""", "Backend.VNI 0")]
    [InlineData("""{"Network": 5}""", "Network must be a string")]
    public void A_bad_flannel_config_is_refused_naming_the_value(string json, string expected)
    {
        var e = Assert.Throws<ClusterConfigException>(() => FlannelConfig.Parse(json));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void A_lease_reads_and_writes_flannels_json_and_key()
    {
        const string flannel = """{"PublicIP":"192.168.50.3","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"8a:1c:2b:3d:4e:5f"}}""";
        var l = SubnetLease.TryParse("10.244.3.0-24", flannel, out var why)!;
        Assert.Null(why);
        Assert.Equal("10.244.3.0/24", l.Subnet.ToString());
        Assert.Equal("10.244.3.0-24", l.Subnet.ToKey());
        Assert.Equal(("192.168.50.3", "vxlan", 1, "8a:1c:2b:3d:4e:5f"), (l.PublicIP, l.BackendType, l.Vni, l.VtepMac));
        Assert.Equal(flannel, l.ToJson());
        Assert.Null(SubnetLease.TryParse("10.244.3.0-24", """{"PublicIP": "nope"}""", out why));
        Assert.Contains("PublicIP 'nope'", why);
        Assert.Null(SubnetLease.TryParse("10.244.3.7-24", flannel, out why));
    }

    [Fact]
    public async Task The_agent_takes_back_its_lease_programs_the_others_and_diffs_a_new_listing()
    {
        var store = new MemoryStore("""{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}""");
        store.Leases["10.244.7.0/24"] = Lease("10.244.7.0/24", "192.168.50.1", "02:00:00:00:00:01"); // this host's, from before
        store.Leases["10.244.8.0/24"] = Lease("10.244.8.0/24", "192.168.50.2", "02:00:00:00:00:02");
        store.Leases["10.244.9.0/24"] = Lease("10.244.9.0/24", "192.168.50.3", "02:00:00:00:00:03") with { BackendType = "udp" };
        var dp = new MemoryDataplane();
        await using var agent = new ClusterAgent(new ClusterOptions("192.168.50.1", TimeSpan.FromSeconds(30)), store, dp, NullLogger.Instance);
        agent.Start();
        await Until(() => dp.Programmed.Count == 1);
        Assert.Equal("10.244.7.0/24", agent.Own!.Subnet.ToString()); // taken back, not a new subnet
        Assert.Equal("02:aa:00:00:00:99", store.Leases["10.244.7.0/24"].VtepMac); // rewritten with this host's VTEP MAC
        Assert.Equal(["10.244.8.0/24"], dp.Programmed.Keys);                      // the udp lease is not usable
        Assert.Equal("10.244.7.0/24", dp.Local!.Subnet.ToString());

        // The store changes behind a broken watch: the next listing is diffed (one gone, one new, one changed).
        store.Leases.TryRemove("10.244.8.0/24", out _);
        store.Leases["10.244.10.0/24"] = Lease("10.244.10.0/24", "192.168.50.4", "02:00:00:00:00:04");
        store.Leases["10.244.9.0/24"] = Lease("10.244.9.0/24", "192.168.50.3", "02:00:00:00:00:03");
        store.BreakWatch();
        await Until(() => dp.Programmed.Count == 2 && !dp.Programmed.ContainsKey("10.244.8.0/24"));
        Assert.Equal(["10.244.10.0/24", "10.244.9.0/24"], dp.Programmed.Keys.Order());
        Assert.True(agent.State().Reachable);
    }

    [Fact]
    public async Task An_unreachable_store_changes_nothing_programmed_and_is_shown_with_its_time()
    {
        var store = new MemoryStore("""{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}""");
        store.Leases["10.244.8.0/24"] = Lease("10.244.8.0/24", "192.168.50.2", "02:00:00:00:00:02");
        var dp = new MemoryDataplane();
        await using var agent = new ClusterAgent(new ClusterOptions("192.168.50.1", TimeSpan.FromSeconds(30)), store, dp, NullLogger.Instance);
        agent.Start();
        await Until(() => dp.Programmed.Count == 1);
        store.Down = true;
        store.BreakWatch();
        await Until(() => !agent.State().Reachable);
        var s = agent.State();
        Assert.NotNull(s.UnreachableSince);
        Assert.Contains("down", s.LastError);
        int calls = store.Calls;
        await Task.Delay(3000); // retries wait (doubling to 2 s): a few calls, not a busy loop
        Assert.InRange(store.Calls - calls, 1, 8);
        Assert.Single(dp.Programmed);
        store.Down = false;
        await Until(() => agent.State().Reachable);
    }

    private static SubnetLease Lease(string subnet, string ip, string mac)
    {
        Assert.True(Ipv4Prefix.TryParse(subnet, out var p));
        return new SubnetLease(p, ip, "vxlan", 1, mac, EtcdLease: 7, ModRevision: 1); // as etcd has them: every key has a revision
    }

    private static async Task Until(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met within 10 s");
            await Task.Delay(20);
        }
    }

    private sealed class MemoryDataplane : IClusterDataplane
    {
        public readonly System.Collections.Concurrent.ConcurrentDictionary<string, SubnetLease> Programmed = new();
        public SubnetLease? Local;
        public string VtepMac => "02:aa:00:00:00:99";
        public void SetLocal(SubnetLease own, FlannelConfig config) => Local = own;
        public void Program(SubnetLease remote) => Programmed[remote.Subnet.ToString()] = remote;
        public void Remove(SubnetLease remote) => Programmed.TryRemove(remote.Subnet.ToString(), out _);
    }

    private sealed class MemoryStore(string config) : IClusterStore
    {
        public readonly System.Collections.Concurrent.ConcurrentDictionary<string, SubnetLease> Leases = new();
        public volatile bool Down;
        private volatile int _calls;
        private TaskCompletionSource _watchBroken = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private long _rev = 1;
        public int Calls => _calls;
        public string Describe => "memory";
        public bool Dynamic => true;

        private void Check()
        {
            Interlocked.Increment(ref _calls);
            if (Down) throw new StoreUnavailableException("store down");
        }

        private long _brokenAt;

        /// <summary>Ends the watch that runs, or the next one if it has not started yet (it continues from before the break).</summary>
        public void BreakWatch()
        {
            Interlocked.Exchange(ref _brokenAt, Interlocked.Increment(ref _rev));
            Interlocked.Exchange(ref _watchBroken, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }

        public Task<FlannelConfig> GetConfigAsync(CancellationToken ct) { Check(); return Task.FromResult(FlannelConfig.Parse(config)); }
        public Task<LeaseListing> ListAsync(CancellationToken ct) { Check(); return Task.FromResult(new LeaseListing(Leases.Values.ToList(), Interlocked.Increment(ref _rev))); }

        public Task<SubnetLease?> TryWriteAsync(SubnetLease lease, TimeSpan ttl, long takeBackRevision, CancellationToken ct)
        {
            Check();
            string key = lease.Subnet.ToString();
            if (takeBackRevision == 0 && Leases.ContainsKey(key)) return Task.FromResult<SubnetLease?>(null);
            var written = lease with { EtcdLease = 42, ModRevision = Interlocked.Increment(ref _rev) };
            Leases[key] = written;
            return Task.FromResult<SubnetLease?>(written);
        }

        public Task<TimeSpan?> KeepAliveAsync(long etcdLease, CancellationToken ct) { Check(); return Task.FromResult<TimeSpan?>(TimeSpan.FromSeconds(30)); }
        public Task<TimeSpan?> TimeToLiveAsync(long etcdLease, CancellationToken ct) { Check(); return Task.FromResult<TimeSpan?>(TimeSpan.FromSeconds(30)); }
        public Task RevokeAsync(long etcdLease, CancellationToken ct) => Task.CompletedTask;

        public async IAsyncEnumerable<IReadOnlyList<LeaseEvent>> WatchAsync(long fromRevision, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
        {
            Check();
            var broken = _watchBroken.Task;
            if (Interlocked.Read(ref _brokenAt) < fromRevision) await broken.WaitAsync(ct);
            throw new StoreUnavailableException(Down ? "store down" : "watch broken");
#pragma warning disable CS0162 // an iterator needs a yield
            yield break;
#pragma warning restore CS0162
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
