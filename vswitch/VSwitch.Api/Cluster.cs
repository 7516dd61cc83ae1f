namespace VSwitch.Api;

/// <summary>
/// GET /v1/cluster: the store of leases (etcd or a static file), whether it answers and since when it does not, this host's
/// lease, the cluster network's configuration, and how many hosts are programmed.
/// </summary>
/// <param name="UnreachableSince">When the store stopped answering (null while it answers).</param>
/// <param name="Network">The cluster network (Flannel's Network), e.g. 10.244.0.0/16; null until the configuration was read.</param>
/// <param name="ContainerNetwork">The switch network containers attach to (its subnet is the leased one).</param>
/// <param name="TransitNetwork">The VXLAN network between the hosts (this host's VTEP is its router interface).</param>
public sealed record ClusterView(string Store, bool Reachable, DateTime? UnreachableSince, string? LastError, string PublicIp,
    string? Network, int SubnetLen, int Vni, int Port, int Mtu, ClusterLeaseView? Lease, long LeaseTtlSeconds, long Revision,
    int Hosts, int Programmed, string ContainerNetwork, string TransitNetwork);

/// <summary>This host's lease: its subnet, the VTEP MAC it published, when it runs out and when it was last renewed.</summary>
public sealed record ClusterLeaseView(string Subnet, string PublicIp, string? VtepMac, DateTime? Expires, DateTime? Renewed);

/// <summary>
/// GET /v1/cluster/hosts: one other host of the cluster, from its lease; whether the switch is programmed for it (with the
/// error when not), and the frames and bytes sent to and received from its VTEP.
/// </summary>
public sealed record ClusterHostView(string Subnet, string PublicIp, string? VtepMac, int Vni, string Backend, bool Programmed, string? Error,
    DateTime? LeaseExpires, long TxPackets, long TxBytes, long RxPackets, long RxBytes);
