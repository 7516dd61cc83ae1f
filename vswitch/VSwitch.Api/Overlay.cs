using System.Text.Json.Serialization;

namespace VSwitch.Api;

/// <summary>GET /v1/overlay. Local is null (and Port 0) when vswitchd has no VXLAN endpoint (no overlay.local in its config).</summary>
public sealed record OverlayView(string? Local, int Port, string? TunnelPort, OverlayNetworkView[] Networks, VtepView[] Vteps)
{
    /// <summary>Over an IPv6 underlay, whether datagrams with a zero UDP checksum are taken (off unless configured, as the kernel).</summary>
    public bool Udp6ZeroChecksumRx { get; init; }
}

/// <summary>
/// A VXLAN network: its VNI, its remote VTEPs (head-end replication list), whether it learns unknown VTEPs.
/// </summary>
/// <remarks>
/// Vni was a uint in the daemon and a long in vsctl's copy. A VNI is 24 bits (1..16777215), so both
/// hold every real value; long is kept because <see cref="NetworkView.Vni"/> is a long too, and a
/// client compares the two without a cast. The JSON is the same number either way.
/// </remarks>
public sealed record OverlayNetworkView(string Network, long Vni, string[] Vteps, bool AcceptUnknownVteps, int Mtu);

/// <summary>One remote VTEP's counters (only VTEPs the endpoint has sent to or heard from).</summary>
public sealed record VtepView(string Address, long RxPackets, long RxBytes, long TxPackets, long TxBytes);

/// <summary>POST /v1/networks/{name}/vteps.</summary>
public sealed record VtepRequest([property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Vtep);

/// <summary>PUT /v1/overlay: this host's VXLAN endpoint. Port defaults to 4789, udpGso to true.</summary>
public sealed record OverlayRequest(
    string? Local,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] int? Port = null,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] bool? UdpGso = null,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] bool? Udp6ZeroChecksumRx = null);
