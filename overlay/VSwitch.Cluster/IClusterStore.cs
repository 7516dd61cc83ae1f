namespace VSwitch.Cluster;

/// <summary>
/// Where the cluster's configuration and leases live: etcd (<see cref="EtcdClusterStore"/>) or a static file
/// (<see cref="StaticClusterStore"/>). A store that cannot be reached throws <see cref="StoreUnavailableException"/>.
/// </summary>
public interface IClusterStore : IAsyncDisposable
{
    /// <summary>What `vsctl cluster` calls it: "etcd http://127.0.0.1:2379,..." or "file /etc/vswitch/cluster.json".</summary>
    string Describe { get; }

    /// <summary>Whether leases come and go (etcd) or are fixed (a file): a fixed store is never renewed nor watched.</summary>
    bool Dynamic { get; }

    Task<FlannelConfig> GetConfigAsync(CancellationToken ct);
    Task<LeaseListing> ListAsync(CancellationToken ct);

    /// <summary>
    /// Writes <paramref name="lease"/> bound to a new etcd lease of <paramref name="ttl"/>, only if the key does not exist
    /// (<paramref name="takeBackRevision"/> 0) or is still at that revision (taking back this host's own lease). False: someone else holds it.
    /// </summary>
    Task<SubnetLease?> TryWriteAsync(SubnetLease lease, TimeSpan ttl, long takeBackRevision, CancellationToken ct);

    /// <summary>Renews an etcd lease; its remaining time, or null when it no longer exists (it expired or was revoked).</summary>
    Task<TimeSpan?> KeepAliveAsync(long etcdLease, CancellationToken ct);

    /// <summary>How long an etcd lease has left (null: gone).</summary>
    Task<TimeSpan?> TimeToLiveAsync(long etcdLease, CancellationToken ct);

    Task RevokeAsync(long etcdLease, CancellationToken ct);

    /// <summary>Changes under the subnets prefix from <paramref name="fromRevision"/>, as etcd sends them (several per message
    /// when many changed at once); ends by throwing when the stream breaks (<see cref="StoreUnavailableException"/>) or the
    /// revision was compacted (<see cref="WatchCompactedException"/>).</summary>
    IAsyncEnumerable<IReadOnlyList<LeaseEvent>> WatchAsync(long fromRevision, CancellationToken ct);

    /// <summary>Drops the connection and makes a new one (after a failure: reconnect now, not after the transport's backoff).</summary>
    void ResetConnection() { }
}

public class StoreUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The watch asked for a revision etcd has compacted away: re-list and diff.</summary>
public sealed class WatchCompactedException(long compactRevision)
    : StoreUnavailableException($"watch revision compacted (etcd keeps from {compactRevision})")
{
    public long CompactRevision { get; } = compactRevision;
}

/// <summary>What the cluster control plane asks of the switch: its own subnet, and the other hosts.</summary>
public interface IClusterDataplane
{
    /// <summary>This host's VTEP MAC: the transit network's router MAC, stable across restarts.</summary>
    string VtepMac { get; }

    /// <summary>Sets up this host for its lease: the VXLAN endpoint on its public address, the transit network, the local subnet's network.</summary>
    void SetLocal(SubnetLease own, FlannelConfig config);

    /// <summary>Programs a remote host, all or nothing: VTEP, remote MAC, neighbour for its VTEP MAC, route to its subnet.</summary>
    void Program(SubnetLease remote);

    /// <summary>Removes what <see cref="Program"/> did for that host.</summary>
    void Remove(SubnetLease remote);

    /// <summary>Runs many Program/Remove calls as one change where the switch can (a listing's diff).</summary>
    void Batch(Action work) => work();

    /// <summary>
    /// The hosts programmed when this host last ran (kept by the switch), programmed again at start before the store answers:
    /// a hand-over's successor forwards to them from its first frame, and a restart while the store is down keeps them.
    /// </summary>
    IReadOnlyList<SubnetLease> RememberedHosts() => [];

    /// <summary>Keeps the programmed hosts for <see cref="RememberedHosts"/> (called at most once a second).</summary>
    void RememberHosts(IReadOnlyList<SubnetLease> hosts) { }
}
