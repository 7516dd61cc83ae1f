using System.Text.Json.Serialization;

namespace VSwitch.Api;

// /v1/ipfix: flow export to a collector, IPFIX (RFC 7011) over UDP.

/// <summary>
/// PUT /v1/ipfix. <see cref="Collector"/>: HOST:PORT (an IPv6 address in brackets); null fields take the defaults:
/// every flow (sampling 1), active timeout 60 s, idle timeout 15 s, observation domain 0.
/// </summary>
public sealed record IpfixRequest(
    string? Collector,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Sampling = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? ActiveTimeoutSeconds = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? IdleTimeoutSeconds = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? DomainId = null);

/// <summary>
/// The exporter: its settings (null collector: off) and what it sent since it was set: messages, data records,
/// template sets, flows it follows now, and send errors with the last one.
/// </summary>
public sealed record IpfixView(bool Enabled, string? Collector, int Sampling, int ActiveTimeoutSeconds, int IdleTimeoutSeconds, long DomainId,
    int TemplateRefreshSeconds, long Messages, long Records, long Templates, long Flows, long SendErrors, string? LastError);
