using System.Text.Json.Serialization;

namespace VSwitch.Api;

/// <summary>
/// A peer of a policy rule, Kubernetes NetworkPolicy's: the attachments whose labels a selector
/// matches (every label given must be there with that value; an empty selector matches every
/// attachment), or an address block (<c>cidr</c>, with <c>except</c> blocks inside it).
/// </summary>
public sealed record PolicyPeerSpec(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] Dictionary<string, string>? Selector,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Cidr,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string[]? Except);

/// <summary>A port of a rule: a number (or 0/absent: every port) and a protocol, tcp (default) or udp.</summary>
public sealed record PolicyPortSpec(int? Port, string? Protocol);

/// <summary>One rule: from/to any of its peers (none: anyone), on any of its ports (none: every port and protocol).</summary>
public sealed record PolicyRuleSpec(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] PolicyPeerSpec[]? Peers,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] PolicyPortSpec[]? Ports);

/// <summary>
/// POST /v1/policies: a network policy with Kubernetes NetworkPolicy's semantics. The attachments
/// <c>selector</c> picks are isolated in each direction the policy governs (<c>ingress</c> and
/// <c>egress</c> lists given, even empty; <c>policyTypes</c> may name a direction with no rule, which
/// then allows nothing): only connections some rule of some policy allows may open. Policies only
/// allow, and add up; replies and established connections always pass.
/// </summary>
public sealed record PolicyRequest(string Name, Dictionary<string, string>? Selector,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] PolicyRuleSpec[]? Ingress,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] PolicyRuleSpec[]? Egress)
{
    /// <summary>"ingress", "egress" or both: the directions governed (default: those with a list).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string[]? PolicyTypes { get; init; }
}

/// <summary>A policy (GET /v1/policies): as given, the attachments it selects now, and the connections it allowed and refused.</summary>
public sealed record PolicyView(string Name, Dictionary<string, string> Selector, PolicyRuleSpec[] Ingress, PolicyRuleSpec[] Egress,
    string[] PolicyTypes, string[] Selected, long AllowedConnections, long DeniedConnections);
