using System.Text.Json;
using System.Text.Json.Nodes;

namespace VSwitch.Cluster;

/// <summary>
/// One host's lease of a subnet of the cluster network, as Flannel writes it at <c>PREFIX/subnets/10.244.3.0-24</c>:
/// <c>{"PublicIP": "192.168.50.3", "BackendType": "vxlan", "BackendData": {"VNI": 1, "VtepMAC": "aa:bb:cc:dd:ee:ff"}}</c>.
/// </summary>
/// <param name="EtcdLease">The etcd lease the key is bound to (0 when none: a static file's hosts).</param>
/// <param name="ModRevision">The key's last change in etcd (0 when not from etcd).</param>
/// <param name="Expires">When the etcd lease runs out, as last asked (null: unknown, or never).</param>
public sealed record SubnetLease(Ipv4Prefix Subnet, string PublicIP, string BackendType, int Vni, string? VtepMac,
    long EtcdLease = 0, long ModRevision = 0, DateTime? Expires = null)
{
    /// <summary>The address Flannel's vxlan backend gives the host's VTEP (flannel.1): the subnet's first, <c>subnet.0</c>.</summary>
    public uint VtepAddress => Subnet.Address;

    /// <summary>Whether two leases program the same thing (the etcd bookkeeping aside).</summary>
    public bool SameRemote(SubnetLease o) => Subnet == o.Subnet && PublicIP == o.PublicIP && BackendType == o.BackendType && Vni == o.Vni
        && string.Equals(VtepMac, o.VtepMac, StringComparison.OrdinalIgnoreCase);

    /// <summary>The value Flannel's LeaseAttrs marshal to (field names and order as Go writes them).</summary>
    public string ToJson() => new JsonObject
    {
        ["PublicIP"] = PublicIP,
        ["BackendType"] = BackendType,
        ["BackendData"] = new JsonObject { ["VNI"] = Vni, ["VtepMAC"] = VtepMac },
    }.ToJsonString();

    /// <summary>Reads a key and its value; null with a reason for anything that is not a lease this host can use.</summary>
    public static SubnetLease? TryParse(string keyTail, string json, out string? why, long etcdLease = 0, long modRevision = 0)
    {
        why = null;
        if (!Ipv4Prefix.TryParseKey(keyTail, out var subnet)) { why = $"key '{keyTail}' is not a subnet (10.244.3.0-24)"; return null; }
        try
        {
            var o = JsonNode.Parse(json) as JsonObject;
            if (o is null) { why = "value is not a JSON object"; return null; }
            string? publicIp = (string?)o["PublicIP"];
            if (!Ipv4Prefix.TryParseAddress(publicIp, out _)) { why = $"PublicIP '{publicIp}' is not an IPv4 address"; return null; }
            string type = (string?)o["BackendType"] ?? "";
            int vni = 0;
            string? mac = null;
            if (o["BackendData"] is JsonObject bd)
            {
                vni = (int?)bd["VNI"] ?? 0;
                mac = (string?)bd["VtepMAC"];
            }
            return new SubnetLease(subnet, publicIp!, type, vni, mac, etcdLease, modRevision);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            why = $"value is not a Flannel lease: {e.Message}";
            return null;
        }
    }
}

/// <summary>A change the watch saw: a lease put (added or changed) or removed (deleted, expired, revoked).</summary>
public sealed record LeaseEvent(Ipv4Prefix Subnet, SubnetLease? Lease, long Revision)
{
    public bool Removed => Lease is null;
}

/// <summary>Every lease at one revision; a watch continues from <c>Revision + 1</c>.</summary>
public sealed record LeaseListing(IReadOnlyList<SubnetLease> Leases, long Revision);
