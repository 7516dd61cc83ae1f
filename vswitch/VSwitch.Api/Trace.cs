using System.Text.Json.Serialization;

namespace VSwitch.Api;

// POST /v1/trace (ofproto/trace) and /v1/trace/live (VPP's "trace add").

/// <summary>
/// POST /v1/trace: a packet as a match (spec) or as a frame (hex), and the port it comes in on. A spec
/// without dl_dst is sent to the router's MAC when its nw_dst lies outside the ingress network's
/// subnet, or always with <see cref="Routed"/>: a routed packet needs no MAC from the user.
/// </summary>
public sealed record TraceRequest(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Spec,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Hex,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? InPort,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? Routed = null);

/// <summary>POST /v1/trace/live. Null fields take the daemon's defaults (10 packets, 10 seconds, every packet).</summary>
public sealed record LiveTraceRequest(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Filter,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Count,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? TimeoutSeconds);

public sealed record TraceStepView(string Stage, string Detail);

public sealed record TraceView(string Flow, TraceStepView[] Steps, string Actions, string? DropReason, bool CacheHit, string? Time);

public sealed record LiveTraceView(int Requested, int Recorded, bool Complete, TraceView[] Packets);
