using System.Runtime.CompilerServices;
using dotnet_etcd;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;

namespace VSwitch.Cluster;

/// <summary>
/// Flannel's etcd layout (pkg/subnet/etcd/registry.go) through dotnet-etcd: the config at <c>PREFIX/config</c>, one key per
/// lease at <c>PREFIX/subnets/10.244.3.0-24</c> bound to an etcd lease. Writes are transactions that only create (or
/// take back this host's own key at the revision it was read), so no host ever overwrites another's lease.
/// Every call has a deadline: an unreachable store fails the call within <see cref="CallTimeout"/> instead of hanging.
/// </summary>
public sealed class EtcdClusterStore : IClusterStore
{
    public static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(3);
    private volatile EtcdClient _client;
    private readonly string _connection;
    private readonly string _prefix;
    private readonly string _subnets;
    // Like etcd's WithRequireLeader: a member cut off from the others ends the watch instead of going silent.
    private static readonly Metadata RequireLeader = new() { { "hasleader", "true" } };

    public EtcdClusterStore(IReadOnlyList<string> endpoints, string prefix)
    {
        if (endpoints.Count == 0) throw new ClusterConfigException("etcd: no endpoints");
        var urls = endpoints.Select(e => e.Contains("://", StringComparison.Ordinal) ? e : "http://" + e).ToArray();
        foreach (var u in urls)
            if (!Uri.TryCreate(u, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.Port <= 0)
                throw new ClusterConfigException($"etcd endpoint '{u}' is not http://HOST:PORT");
        Endpoints = urls;
        _prefix = prefix.TrimEnd('/');
        _subnets = _prefix + "/subnets/";
        _connection = string.Join(",", urls);
        _client = NewClient();
    }

    // gRPC waits up to 120 s between reconnects by default: after an outage the store would be seen late. At most 2 s
    // between tries here, so a store that came back is used within seconds, and an outage still costs a try per 2 s only.
    private EtcdClient NewClient() => new(_connection, configureChannelOptions: o =>
    {
        o.Credentials = ChannelCredentials.Insecure;
        o.InitialReconnectBackoff = TimeSpan.FromMilliseconds(250);
        o.MaxReconnectBackoff = TimeSpan.FromSeconds(2);
    });

    /// <summary>
    /// A new gRPC channel. After an outage the old one may wait out gRPC's reconnect backoff (up to two minutes) before
    /// it tries the members again; a fresh channel connects at its first call, so a store that came back is seen at once.
    /// </summary>
    public void ResetConnection()
    {
        var old = _client;
        _client = NewClient();
        old.Dispose(); // calls still on it fail, as unavailable, and are retried on the new one
    }

    public IReadOnlyList<string> Endpoints { get; }
    public string Prefix => _prefix;
    public string Describe => "etcd " + string.Join(",", Endpoints);
    public bool Dynamic => true;

    private static DateTime Deadline => DateTime.UtcNow + CallTimeout;

    public async Task<FlannelConfig> GetConfigAsync(CancellationToken ct)
    {
        var r = await Call(() => _client.GetAsync(_prefix + "/config", deadline: Deadline, cancellationToken: ct));
        if (r.Kvs.Count == 0) throw new ClusterConfigException($"etcd has no {_prefix}/config: put the cluster network's configuration there "
            + "(e.g. etcdctl put " + _prefix + "/config '{\"Network\": \"10.244.0.0/16\", \"Backend\": {\"Type\": \"vxlan\"}}')");
        return FlannelConfig.Parse(r.Kvs[0].Value.ToStringUtf8());
    }

    /// <summary>Puts the configuration (tests, the benchmark's tool); Flannel's operators use etcdctl.</summary>
    public Task PutConfigAsync(FlannelConfig config, CancellationToken ct) =>
        Call(() => _client.PutAsync(_prefix + "/config", config.ToJson(), deadline: Deadline, cancellationToken: ct));

    public async Task<LeaseListing> ListAsync(CancellationToken ct)
    {
        var r = await Call(() => _client.GetRangeAsync(_subnets, deadline: Deadline, cancellationToken: ct));
        var leases = new List<SubnetLease>(r.Kvs.Count);
        foreach (var kv in r.Kvs)
            if (SubnetLease.TryParse(kv.Key.ToStringUtf8()[_subnets.Length..], kv.Value.ToStringUtf8(), out _, kv.Lease, kv.ModRevision) is { } l)
                leases.Add(l);
        return new LeaseListing(leases, r.Header.Revision);
    }

    public async Task<SubnetLease?> TryWriteAsync(SubnetLease lease, TimeSpan ttl, long takeBackRevision, CancellationToken ct)
    {
        string key = _subnets + lease.Subnet.ToKey();
        var grant = await Call(() => _client.LeaseGrantAsync(new LeaseGrantRequest { TTL = (long)Math.Ceiling(ttl.TotalSeconds) }, deadline: Deadline, cancellationToken: ct));
        var txn = new TxnRequest();
        txn.Compare.Add(takeBackRevision == 0
            ? new Compare { Key = ByteString.CopyFromUtf8(key), Target = Compare.Types.CompareTarget.Version, Result = Compare.Types.CompareResult.Equal, Version = 0 }
            : new Compare { Key = ByteString.CopyFromUtf8(key), Target = Compare.Types.CompareTarget.Mod, Result = Compare.Types.CompareResult.Equal, ModRevision = takeBackRevision });
        txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = ByteString.CopyFromUtf8(key), Value = ByteString.CopyFromUtf8(lease.ToJson()), Lease = grant.ID } });
        TxnResponse t;
        try { t = await Call(() => _client.TransactionAsync(txn, deadline: Deadline, cancellationToken: ct)); }
        catch
        {
            await RevokeQuietly(grant.ID);
            throw;
        }
        if (!t.Succeeded)
        {
            // Someone else holds the key: give back the etcd lease we took for it.
            await RevokeQuietly(grant.ID);
            return null;
        }
        return lease with { EtcdLease = grant.ID, ModRevision = t.Header.Revision, Expires = DateTime.UtcNow.AddSeconds(grant.TTL) };
    }

    private async Task RevokeQuietly(long id)
    {
        try { await _client.LeaseRevokeAsync(new LeaseRevokeRequest { ID = id }, deadline: Deadline); }
        catch (RpcException) { } // it expires by itself
    }

    public async Task<TimeSpan?> KeepAliveAsync(long etcdLease, CancellationToken ct)
    {
        try
        {
            using var call = _client.GetConnection().LeaseClient.LeaseKeepAlive(deadline: Deadline, cancellationToken: ct);
            await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = etcdLease }, ct);
            if (!await call.ResponseStream.MoveNext(ct)) throw new StoreUnavailableException("etcd closed the keep-alive stream");
            var r = call.ResponseStream.Current;
            await call.RequestStream.CompleteAsync();
            return r.TTL <= 0 ? null : TimeSpan.FromSeconds(r.TTL);
        }
        catch (RpcException e) { throw Unavailable(e); }
    }

    public async Task<TimeSpan?> TimeToLiveAsync(long etcdLease, CancellationToken ct)
    {
        var r = await Call(() => _client.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = etcdLease }, deadline: Deadline, cancellationToken: ct));
        return r.TTL <= 0 ? null : TimeSpan.FromSeconds(r.TTL);
    }

    public Task RevokeAsync(long etcdLease, CancellationToken ct) =>
        Call(() => _client.LeaseRevokeAsync(new LeaseRevokeRequest { ID = etcdLease }, deadline: Deadline, cancellationToken: ct));

    /// <summary>Deletes a lease's key (tests and the benchmark's tool: a host removed by an operator).</summary>
    public Task DeleteLeaseAsync(Ipv4Prefix subnet, CancellationToken ct) =>
        Call(() => _client.DeleteAsync(_subnets + subnet.ToKey(), deadline: Deadline, cancellationToken: ct));

    public async IAsyncEnumerable<IReadOnlyList<LeaseEvent>> WatchAsync(long fromRevision, [EnumeratorCancellation] CancellationToken ct)
    {
        using var call = _client.GetConnection().WatchClient.Watch(RequireLeader, cancellationToken: ct);
        var end = ByteString.CopyFromUtf8(_subnets[..^1] + (char)('/' + 1)); // the prefix's range end: "subnets0"
        try
        {
            await call.RequestStream.WriteAsync(new WatchRequest
            {
                CreateRequest = new WatchCreateRequest { Key = ByteString.CopyFromUtf8(_subnets), RangeEnd = end, StartRevision = fromRevision, ProgressNotify = true },
            }, ct);
        }
        catch (RpcException e) { throw Unavailable(e); }
        while (true)
        {
            WatchResponse r;
            try
            {
                if (!await call.ResponseStream.MoveNext(ct)) throw new StoreUnavailableException("etcd ended the watch");
                r = call.ResponseStream.Current;
            }
            catch (RpcException e) { throw Unavailable(e); }
            if (r.CompactRevision != 0) throw new WatchCompactedException(r.CompactRevision);
            if (r.Canceled) throw new StoreUnavailableException($"etcd cancelled the watch: {r.CancelReason}");
            var batch = new List<LeaseEvent>(r.Events.Count);
            foreach (var ev in r.Events)
            {
                string tail = ev.Kv.Key.ToStringUtf8()[_subnets.Length..];
                if (!Ipv4Prefix.TryParseKey(tail, out var subnet)) continue;
                if (ev.Type == Mvccpb.Event.Types.EventType.Delete)
                    batch.Add(new LeaseEvent(subnet, null, ev.Kv.ModRevision));
                else if (SubnetLease.TryParse(tail, ev.Kv.Value.ToStringUtf8(), out _, ev.Kv.Lease, ev.Kv.ModRevision) is { } l)
                    batch.Add(new LeaseEvent(subnet, l, ev.Kv.ModRevision));
            }
            if (batch.Count > 0) yield return batch;
        }
    }

    private static async Task<T> Call<T>(Func<Task<T>> call)
    {
        try { return await call(); }
        catch (RpcException e) { throw Unavailable(e); }
    }

    private static StoreUnavailableException Unavailable(RpcException e) =>
        new($"etcd: {e.StatusCode}: {(string.IsNullOrEmpty(e.Status.Detail) ? e.Message : e.Status.Detail)}", e);

    public ValueTask DisposeAsync()
    {
        _client.Dispose();
        return ValueTask.CompletedTask;
    }
}
