using Microsoft.Extensions.Logging;

namespace VSwitch.Cluster;

/// <summary>How this host takes part: its public (underlay) address, the TTL of its lease, the subnet it had before.</summary>
/// <param name="PreviousSubnet">The subnet this host leased last time (kept by the daemon): asked for first, as Flannel's subnet.env.</param>
public sealed record ClusterOptions(string PublicIp, TimeSpan LeaseTtl, Ipv4Prefix? PreviousSubnet = null)
{
    public static readonly TimeSpan DefaultLeaseTtl = TimeSpan.FromHours(24);

    /// <summary>Renewed at a third of the TTL: two more tries before it runs out (8 h of 24 h; Flannel renews an hour before).</summary>
    public TimeSpan RenewEvery => TimeSpan.FromMilliseconds(Math.Max(500, LeaseTtl.TotalMilliseconds / 3));
}

/// <summary>A remote host as the agent knows it: its lease, and whether the switch is programmed for it.</summary>
public sealed record ClusterHost(SubnetLease Lease, bool Programmed, string? Error, DateTime Since);

/// <summary>What `vsctl cluster` shows.</summary>
public sealed record ClusterState(string Store, bool Reachable, DateTime? UnreachableSince, string? LastError, string PublicIp,
    FlannelConfig? Config, SubnetLease? Own, DateTime? LastRenewed, long Revision, int Hosts, int Programmed, TimeSpan LeaseTtl);

/// <summary>
/// The cluster control plane of one host, Flannel's local manager and vxlan backend in one: it leases a subnet of the
/// cluster network (taking back the lease that has its public address, else a free subnet, written create-only),
/// renews it, and keeps the switch programmed for every other host's lease: list, then watch from the next revision;
/// after a reconnect or a compaction, list again and diff. A store that cannot be reached changes nothing that is
/// programmed: the known hosts stay, and every retry waits (doubling, capped) so an outage costs no CPU.
/// </summary>
public sealed class ClusterAgent : IAsyncDisposable
{
    private static readonly TimeSpan RetryMin = TimeSpan.FromMilliseconds(250);
    // Capped at 2 s: a host removed from the store during an outage is removed here within seconds of the store's return.
    private static readonly TimeSpan RetryMax = TimeSpan.FromSeconds(2);

    private readonly ClusterOptions _options;
    private readonly IClusterStore _store;
    private readonly IClusterDataplane _dp;
    private readonly ILogger _log;
    private readonly object _gate = new();
    private readonly SemaphoreSlim _acquire = new(1, 1);
    private readonly Dictionary<Ipv4Prefix, ClusterHost> _hosts = [];
    private readonly HashSet<(Ipv4Prefix, long)> _loggedUnusable = [];
    private readonly Dictionary<Ipv4Prefix, DateTime> _expiryAsked = [];
    private readonly CancellationTokenSource _stop = new();
    private Task? _run, _renew, _expiries, _remember;
    private volatile int _changes, _remembered;
    private FlannelConfig? _config;
    private SubnetLease? _own;
    private bool _reachable;
    private DateTime? _unreachableSince;
    private string? _lastError;
    private DateTime? _lastRenewed;
    private long _revision;
    private volatile bool _ownLost;
    private int _failedTries;

    public ClusterAgent(ClusterOptions options, IClusterStore store, IClusterDataplane dataplane, ILogger log)
    {
        if (!Ipv4Prefix.TryParseAddress(options.PublicIp, out _)) throw new ClusterConfigException($"public IP '{options.PublicIp}' is not an IPv4 address");
        if (options.LeaseTtl < TimeSpan.FromSeconds(2)) throw new ClusterConfigException($"lease TTL {options.LeaseTtl.TotalSeconds} s is too short (2 s at least)");
        _options = options;
        _store = store;
        _dp = dataplane;
        _log = log;
    }

    public IClusterStore Store => _store;

    /// <summary>This host's lease once it has one.</summary>
    public SubnetLease? Own { get { lock (_gate) return _own; } }
    public FlannelConfig? Config { get { lock (_gate) return _config; } }

    /// <summary>Fires when this host's lease is first known (the daemon waits on it nowhere: attachments simply need the network).</summary>
    public event Action<SubnetLease>? LeaseAcquired;

    public void Start()
    {
        // What was programmed last time, at once (before the first listing, which then diffs against it).
        var remembered = _dp.RememberedHosts();
        if (remembered.Count > 0)
        {
            _dp.Batch(() => { foreach (var l in remembered) Upsert(l); });
            _log.LogInformation("cluster: {Count} host(s) programmed again from the last run, until the store confirms them", remembered.Count);
        }
        _remember = Task.Run(() => RememberLoopAsync(_stop.Token));
        _run = Task.Run(() => RunAsync(_stop.Token));
        if (_store.Dynamic)
        {
            _renew = Task.Run(() => RenewLoopAsync(_stop.Token));
            _expiries = Task.Run(() => ExpiryLoopAsync(_stop.Token));
        }
    }

    public ClusterState State()
    {
        lock (_gate)
            return new ClusterState(_store.Describe, _reachable, _unreachableSince, _lastError, _options.PublicIp, _config, _own, _lastRenewed,
                _revision, _hosts.Count, _hosts.Values.Count(h => h.Programmed), _options.LeaseTtl);
    }

    public IReadOnlyList<ClusterHost> Hosts()
    {
        lock (_gate) return [.. _hosts.Values.OrderBy(h => h.Lease.Subnet.Address)];
    }

    private async Task RunAsync(CancellationToken ct)
    {
        var retry = RetryMin;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await EnsureLeaseAsync(ct);
                var listing = await _store.ListAsync(ct);
                Reconcile(listing.Leases);
                Reachable(listing.Revision);
                retry = RetryMin;
                await foreach (var events in _store.WatchAsync(listing.Revision + 1, ct))
                {
                    // One etcd message's changes as one change of the switch (a thousand leases that expire together).
                    _dp.Batch(() => { foreach (var ev in events) Apply(ev); });
                    Reachable(events[^1].Revision);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { break; }
            catch (WatchCompactedException e)
            {
                _log.LogWarning("cluster: {Error}: listing the leases again", e.Message);
                continue; // list and diff at once
            }
            catch (StoreUnavailableException e) { Unreachable(e.Message); }
            catch (ClusterConfigException e) { Failed(e.Message); }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Nothing the store sends may take the daemon down: log it, wait, start over from a listing.
                _log.LogError(e, "cluster: unexpected failure; listing again in {Retry}", retry);
                Failed(e.Message);
            }
            try { await Task.Delay(retry, ct); }
            catch (OperationCanceledException) { break; }
            retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, RetryMax.Ticks));
            // A fresh connection now and then (not at every try: making one costs more CPU than the try itself), in case
            // the channel is stuck on a member that will not come back.
            if (!_reachable && ++_failedTries % 15 == 0) _store.ResetConnection();
        }
    }

    /// <summary>The configuration, this host's lease and the switch set up for it; done once, and again when the lease was lost.</summary>
    private async Task EnsureLeaseAsync(CancellationToken ct)
    {
        if (Own is not null && !_ownLost) return;
        await _acquire.WaitAsync(ct);
        try
        {
            if (Own is not null && !_ownLost) return;
            var config = await _store.GetConfigAsync(ct);
            var previous = Own?.Subnet ?? _options.PreviousSubnet;
            var own = await AcquireAsync(config, previous, ct);
            lock (_gate)
            {
                _config = config;
                _own = own;
                _ownLost = false;
                _lastRenewed = DateTime.UtcNow;
            }
            _dp.SetLocal(own, config);
            _log.LogInformation("cluster: this host ({PublicIp}) holds {Subnet} of {Network}, VTEP MAC {Mac}, lease TTL {Ttl}",
                own.PublicIP, own.Subnet, config.Network, own.VtepMac, _options.LeaseTtl);
            LeaseAcquired?.Invoke(own);
        }
        finally { _acquire.Release(); }
    }

    /// <summary>
    /// Flannel's tryAcquireLease: the lease whose PublicIP is this host's is taken back (written again at the revision it was
    /// read, bound to a new etcd lease), so a restart never renumbers a host; otherwise the previous subnet if free, else a
    /// random free one (random, as Flannel picks, so that hosts starting together rarely want the same). The write only
    /// creates: a host that loses the race lists again and picks another.
    /// </summary>
    private async Task<SubnetLease> AcquireAsync(FlannelConfig config, Ipv4Prefix? previous, CancellationToken ct)
    {
        for (int attempt = 1; ; attempt++)
        {
            var listing = await _store.ListAsync(ct);
            var mine = listing.Leases.Where(l => l.PublicIP == _options.PublicIp && config.Holds(l.Subnet))
                .OrderByDescending(l => l.Subnet == previous).ToList();
            SubnetLease? written;
            if (mine.Count > 0)
            {
                var l = mine[0];
                written = await _store.TryWriteAsync(Mine(l.Subnet, config), _options.LeaseTtl, l.ModRevision, ct);
                if (written is not null && attempt == 1) _log.LogInformation("cluster: took back this host's lease {Subnet}", l.Subnet);
            }
            else
            {
                if (!_store.Dynamic) throw new ClusterConfigException($"{_store.Describe} lists no host with public IP {_options.PublicIp}");
                var taken = listing.Leases.Select(l => l.Subnet).ToHashSet();
                Ipv4Prefix pick;
                if (previous is { } p && config.Holds(p) && !taken.Contains(p)) pick = p;
                else
                {
                    var free = config.Subnets().Where(s => !taken.Contains(s)).Take(100).ToList();
                    if (free.Count == 0) throw new ClusterConfigException($"no free subnet of /{config.SubnetLen} left between SubnetMin {Ipv4Prefix.FormatAddress(config.SubnetMin)} and SubnetMax {Ipv4Prefix.FormatAddress(config.SubnetMax)}");
                    pick = free[Random.Shared.Next(free.Count)];
                }
                written = await _store.TryWriteAsync(Mine(pick, config), _options.LeaseTtl, 0, ct);
                if (written is null) _log.LogInformation("cluster: {Subnet} was taken by another host meanwhile; picking again", pick);
            }
            if (written is not null) return written;
            if (attempt >= 50) throw new StoreUnavailableException("could not write a lease after 50 tries (the store keeps changing under us)");
            await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(10, 100)), ct);
        }
    }

    private SubnetLease Mine(Ipv4Prefix subnet, FlannelConfig config) => new(subnet, _options.PublicIp, "vxlan", config.Vni, _dp.VtepMac);

    /// <summary>Lists are diffed against what is programmed: removed hosts go, new or changed ones are programmed.</summary>
    private void Reconcile(IReadOnlyList<SubnetLease> leases)
    {
        var took = System.Diagnostics.Stopwatch.StartNew();
        var want = new Dictionary<Ipv4Prefix, SubnetLease>();
        foreach (var l in leases) if (Usable(l)) want[l.Subnet] = l;
        List<ClusterHost> gone;
        lock (_gate) gone = _hosts.Values.Where(h => !want.ContainsKey(h.Lease.Subnet)).ToList();
        int added = 0;
        _dp.Batch(() =>
        {
            foreach (var h in gone) Unprogram(h.Lease.Subnet);
            foreach (var l in want.Values) if (Upsert(l)) added++;
        });
        if (gone.Count > 0 || added > 0)
            _log.LogInformation("cluster: listed {Count} lease(s): {Added} host(s) programmed, {Removed} removed, in {Ms} ms", leases.Count, added, gone.Count,
                took.ElapsedMilliseconds);
    }

    private void Apply(LeaseEvent ev)
    {
        var own = Own;
        if (own is not null && ev.Subnet == own.Subnet)
        {
            if (ev.Removed && !_stop.IsCancellationRequested)
            {
                // Our own key went (expired in an outage longer than the TTL, or deleted by an operator): lease again,
                // the same subnet first. What is programmed stays meanwhile.
                _log.LogWarning("cluster: this host's lease {Subnet} was removed from the store; leasing again", ev.Subnet);
                _ownLost = true;
                _ = Task.Run(() => EnsureLeaseAsync(_stop.Token).ContinueWith(t =>
                {
                    if (t.Exception is { } e) { _log.LogWarning("cluster: leasing again failed: {Error}", e.GetBaseException().Message); }
                }, TaskScheduler.Default));
            }
            return;
        }
        if (ev.Lease is null)
        {
            if (Unprogram(ev.Subnet)) _log.LogInformation("cluster: host {Subnet} left (lease removed at revision {Rev})", ev.Subnet, ev.Revision);
        }
        else if (Usable(ev.Lease) && Upsert(ev.Lease))
            _log.LogInformation("cluster: host {Subnet} at {PublicIp} programmed (VTEP MAC {Mac})", ev.Lease.Subnet, ev.Lease.PublicIP, ev.Lease.VtepMac);
    }

    private bool Usable(SubnetLease l)
    {
        var own = Own;
        var config = Config;
        if (own is not null && (l.Subnet == own.Subnet || l.PublicIP == own.PublicIP)) return false; // this host
        string? why = null;
        if (l.BackendType != "vxlan") why = $"backend '{l.BackendType}' (only vxlan is spoken)";
        else if (l.VtepMac is null || !TryMac(l.VtepMac)) why = $"VtepMAC '{l.VtepMac}' is not a unicast MAC";
        else if (config is not null && l.Vni != config.Vni) why = $"VNI {l.Vni}, not the cluster's {config.Vni}";
        else if (config is not null && !config.Network.Contains(l.Subnet)) why = $"not in the cluster network {config.Network}";
        if (why is null) return true;
        lock (_gate)
            if (_loggedUnusable.Add((l.Subnet, l.ModRevision)))
                _log.LogWarning("cluster: lease {Subnet} of {PublicIp} ignored: {Why}", l.Subnet, l.PublicIP, why);
        return false;
    }

    private static bool TryMac(string mac)
    {
        var parts = mac.Split(':');
        if (parts.Length != 6) return false;
        foreach (var p in parts) if (p.Length != 2 || !byte.TryParse(p, System.Globalization.NumberStyles.HexNumber, null, out _)) return false;
        return (Convert.ToByte(parts[0], 16) & 1) == 0;
    }

    /// <summary>Programs a host that is new or changed (returns true); refreshes the bookkeeping of one already programmed.</summary>
    private bool Upsert(SubnetLease l)
    {
        ClusterHost? had;
        lock (_gate) _hosts.TryGetValue(l.Subnet, out had);
        if (had is { Programmed: true } && had.Lease.SameRemote(l))
        {
            lock (_gate) _hosts[l.Subnet] = had with { Lease = l with { Expires = l.EtcdLease == had.Lease.EtcdLease ? had.Lease.Expires : null } };
            return false;
        }
        if (had is { Programmed: true }) Unprogram(l.Subnet);
        try
        {
            _dp.Program(l);
            lock (_gate) _hosts[l.Subnet] = new ClusterHost(l, true, null, DateTime.UtcNow);
            Interlocked.Increment(ref _changes);
            return true;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _log.LogWarning("cluster: host {Subnet} at {PublicIp} could not be programmed: {Error}", l.Subnet, l.PublicIP, e.Message);
            lock (_gate) _hosts[l.Subnet] = new ClusterHost(l, false, e.Message, DateTime.UtcNow);
            return false;
        }
    }

    private bool Unprogram(Ipv4Prefix subnet)
    {
        ClusterHost? h;
        lock (_gate)
        {
            if (!_hosts.Remove(subnet, out h)) return false;
        }
        if (!h.Programmed) return true;
        Interlocked.Increment(ref _changes);
        try { _dp.Remove(h.Lease); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _log.LogWarning("cluster: removing host {Subnet}: {Error}", subnet, e.Message);
        }
        return true;
    }

    /// <summary>Keeps this host's etcd lease alive; a lease found gone (an outage longer than its TTL) is leased again.</summary>
    private async Task RenewLoopAsync(CancellationToken ct)
    {
        var retry = TimeSpan.FromSeconds(1);
        var wait = _options.RenewEvery;
        while (!ct.IsCancellationRequested)
        {
            try { await Task.Delay(wait, ct); }
            catch (OperationCanceledException) { break; }
            var own = Own;
            if (own is null || own.EtcdLease == 0) { wait = TimeSpan.FromSeconds(1); continue; }
            try
            {
                var left = await _store.KeepAliveAsync(own.EtcdLease, ct);
                if (left is null)
                {
                    _log.LogWarning("cluster: this host's etcd lease for {Subnet} expired; leasing again", own.Subnet);
                    _ownLost = true;
                    await EnsureLeaseAsync(ct);
                }
                else lock (_gate)
                {
                    _lastRenewed = DateTime.UtcNow;
                    if (_own is not null) _own = _own with { Expires = DateTime.UtcNow + left.Value };
                }
                Reachable(0);
                retry = TimeSpan.FromSeconds(1);
                wait = _options.RenewEvery;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { break; }
            catch (Exception e) when (e is StoreUnavailableException or ClusterConfigException)
            {
                Unreachable(e.Message);
                // Retry sooner than the next renewal, doubling to a third of the TTL: never a busy loop, never late.
                wait = retry;
                retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, Math.Max(_options.RenewEvery.Ticks, TimeSpan.FromSeconds(1).Ticks)));
            }
        }
    }

    /// <summary>Keeps the programmed hosts with the switch, at most once a second and only after a change.</summary>
    private async Task RememberLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try { await Task.Delay(TimeSpan.FromSeconds(1), ct); }
            catch (OperationCanceledException) { break; }
            RememberNow();
        }
    }

    private void RememberNow()
    {
        int changes = _changes;
        if (changes == _remembered) return;
        List<SubnetLease> hosts;
        lock (_gate) hosts = _hosts.Values.Where(h => h.Programmed).Select(h => h.Lease).ToList();
        try
        {
            _dp.RememberHosts(hosts);
            _remembered = changes;
        }
        catch (Exception e) when (e is not OutOfMemoryException) { _log.LogWarning("cluster: could not keep the programmed hosts: {Error}", e.Message); }
    }

    /// <summary>The hosts' lease expiries for `vsctl cluster hosts`, asked of etcd off the programming path, a few at a time.</summary>
    private async Task ExpiryLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try { await Task.Delay(TimeSpan.FromSeconds(2), ct); }
            catch (OperationCanceledException) { break; }
            if (!_reachable) continue;
            List<SubnetLease> stale;
            lock (_gate)
                stale = _hosts.Values.Select(h => h.Lease)
                    .Where(l => l.EtcdLease != 0 && (l.Expires is null || !_expiryAsked.TryGetValue(l.Subnet, out var at) || DateTime.UtcNow - at > TimeSpan.FromSeconds(30)))
                    .Take(200).ToList();
            foreach (var l in stale)
            {
                try
                {
                    var left = await _store.TimeToLiveAsync(l.EtcdLease, ct);
                    lock (_gate)
                    {
                        _expiryAsked[l.Subnet] = DateTime.UtcNow;
                        if (_hosts.TryGetValue(l.Subnet, out var h) && h.Lease.EtcdLease == l.EtcdLease)
                            _hosts[l.Subnet] = h with { Lease = h.Lease with { Expires = left is null ? DateTime.UtcNow : DateTime.UtcNow + left.Value } };
                    }
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
                catch (StoreUnavailableException) { break; }
            }
        }
    }

    private void Reachable(long revision)
    {
        bool back;
        lock (_gate)
        {
            back = !_reachable && _unreachableSince is not null;
            if (back) _log.LogInformation("cluster: store {Store} reachable again after {Seconds:F1} s", _store.Describe, (DateTime.UtcNow - _unreachableSince!.Value).TotalSeconds);
            _reachable = true;
            _unreachableSince = null;
            _lastError = null;
            if (revision > _revision) _revision = revision;
        }
    }

    private void Unreachable(string error)
    {
        lock (_gate)
        {
            if (_reachable || _unreachableSince is null)
            {
                _unreachableSince ??= DateTime.UtcNow;
                _log.LogWarning("cluster: store {Store} unreachable ({Error}); every known host stays programmed, retrying", _store.Describe, error);
            }
            _reachable = false;
            _lastError = error;
        }
    }

    private void Failed(string error)
    {
        lock (_gate)
        {
            if (_lastError != error) _log.LogError("cluster: {Error}", error);
            _lastError = error;
        }
    }

    /// <summary>Stops the loops; <paramref name="revoke"/> gives the lease back (a graceful leave: the others remove this host at once).</summary>
    public async Task StopAsync(bool revoke)
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        foreach (var t in new[] { _run, _renew, _expiries, _remember })
            if (t is not null) try { await t.WaitAsync(TimeSpan.FromSeconds(5)); } catch (Exception) { }
        RememberNow(); // what a successor or the next start programs first
        var own = Own;
        if (revoke && own is { EtcdLease: not 0 } && _store.Dynamic)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3));
            try
            {
                await _store.RevokeAsync(own.EtcdLease, cts.Token);
                _log.LogInformation("cluster: lease {Subnet} given back", own.Subnet);
            }
            catch (Exception e) when (e is StoreUnavailableException or OperationCanceledException)
            {
                _log.LogWarning("cluster: could not give back lease {Subnet} ({Error}); it expires by its TTL", own.Subnet, e.Message);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(revoke: false);
        await _store.DisposeAsync();
        _stop.Dispose();
    }
}
