using System.Text.Json.Serialization;

namespace VSwitch.Api;

/// <summary>One rule of the rule table (GET /v1/rules). Cookie is hex ("0x0"); timeouts are seconds, 0 for none.</summary>
public sealed record RuleView(int Priority, string Cookie, string Match, string Actions, string Text, long Packets, long Bytes,
    int IdleTimeout, int HardTimeout, double AgeSeconds);

/// <summary>POST /v1/rules: a rule in ovs-ofctl syntax ("priority=100,in_port=p1,icmp,actions=drop").</summary>
public sealed record RuleRequest([property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Rule);

/// <summary>DELETE /v1/rules: how many went and their text.</summary>
public sealed record DeleteResult(int Removed, string[] Rules);

/// <summary>One datapath flow: a cached (exact) flow key and the actions a thread applies to it (GET /v1/flows).</summary>
public sealed record FlowView(int Thread, string Flow, string Actions, string? Rule, long Packets, long Bytes, double AgeSeconds, double IdleSeconds);
