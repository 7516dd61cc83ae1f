using System.Text.Json;
using System.Text.Json.Serialization;

namespace VSwitch.Api;

/// <summary>
/// Source-generated JSON metadata for every record of the API, so that clients serialize without
/// reflection (and can be published with Native AOT). The options are the daemon's: ASP.NET Core's web
/// defaults (camelCase names, case-insensitive reading, numbers also read from strings), nulls written.
/// Requests leave their null members out by their own <see cref="JsonIgnoreAttribute"/>s, so that a
/// missing field takes the daemon's default; responses write every member, nulls included.
/// The daemon binds and writes the same records through ASP.NET Core's reflection-based metadata with the
/// same options; a test (tests/VSwitch.Core.Tests/ApiContractTests.cs) checks that both write the same JSON.
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(ApiErrorBody))]
[JsonSerializable(typeof(ShowView))]
[JsonSerializable(typeof(OverlayRequest))]
[JsonSerializable(typeof(FlushResult))]
[JsonSerializable(typeof(NetworkRequest))]
[JsonSerializable(typeof(NetworkView))]
[JsonSerializable(typeof(NetworkView[]))]
[JsonSerializable(typeof(AllocationView))]
[JsonSerializable(typeof(NetworkConnectionRequest))]
[JsonSerializable(typeof(PortRequest))]
[JsonSerializable(typeof(PortSettingsRequest))]
[JsonSerializable(typeof(PortView))]
[JsonSerializable(typeof(PortView[]))]
[JsonSerializable(typeof(CountersView))]
[JsonSerializable(typeof(FdbEntryView[]))]
[JsonSerializable(typeof(RemoteMacRequest))]
[JsonSerializable(typeof(StatsView))]
[JsonSerializable(typeof(StageView))]
[JsonSerializable(typeof(DropView))]
[JsonSerializable(typeof(FlowCacheView))]
[JsonSerializable(typeof(RuleRequest))]
[JsonSerializable(typeof(RuleView))]
[JsonSerializable(typeof(RuleView[]))]
[JsonSerializable(typeof(DeleteResult))]
[JsonSerializable(typeof(FlowView[]))]
[JsonSerializable(typeof(TraceRequest))]
[JsonSerializable(typeof(LiveTraceRequest))]
[JsonSerializable(typeof(TraceView))]
[JsonSerializable(typeof(LiveTraceView))]
[JsonSerializable(typeof(RouteRequest))]
[JsonSerializable(typeof(RouteView))]
[JsonSerializable(typeof(RouteView[]))]
[JsonSerializable(typeof(NeighborRequest))]
[JsonSerializable(typeof(NeighborView))]
[JsonSerializable(typeof(NeighborView[]))]
[JsonSerializable(typeof(OverlayView))]
[JsonSerializable(typeof(OverlayNetworkView))]
[JsonSerializable(typeof(VtepRequest))]
[JsonSerializable(typeof(AttachRequest))]
[JsonSerializable(typeof(AttachmentView))]
[JsonSerializable(typeof(AttachmentView[]))]
[JsonSerializable(typeof(AttachmentCheckView))]
[JsonSerializable(typeof(AttachmentDnsView))]
[JsonSerializable(typeof(AttachmentLabelsRequest))]
[JsonSerializable(typeof(AuditView))]
[JsonSerializable(typeof(AuditEntryView))]
[JsonSerializable(typeof(RestartRequest))]
[JsonSerializable(typeof(RestartView))]
[JsonSerializable(typeof(ServiceRequest))]
[JsonSerializable(typeof(HealthCheckRequest))]
[JsonSerializable(typeof(BackendRequest))]
[JsonSerializable(typeof(ServiceView))]
[JsonSerializable(typeof(ServiceView[]))]
[JsonSerializable(typeof(BackendView))]
[JsonSerializable(typeof(ConnectionView))]
[JsonSerializable(typeof(ConntrackView))]
[JsonSerializable(typeof(PolicyRequest))]
[JsonSerializable(typeof(PolicyView))]
[JsonSerializable(typeof(PolicyView[]))]
public sealed partial class ApiJson : JsonSerializerContext;
