using System.Text.Json.Serialization;

namespace VSwitch.Api;

/// <summary>
/// A MAC table entry (GET /v1/fdb). Vtep is the remote VTEP a MAC on a VXLAN network lives behind;
/// null for a MAC on a local port. Static entries (remote MACs added by POST /v1/fdb) do not age.
/// </summary>
public sealed record FdbEntryView(string Network, int Vlan, string Mac, string Port, double AgeSeconds, bool Static, string? Vtep = null);

/// <summary>POST /v1/fdb: a static remote MAC, behind a VTEP on a VXLAN network.</summary>
public sealed record RemoteMacRequest(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Network,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Mac,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Vtep);
