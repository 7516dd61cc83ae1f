namespace VSwitch.Api;

/// <summary>
/// One tracked connection (GET /v1/conntrack), as the <c>conntrack -L</c> tool shows one: the
/// original direction as its first packet came, the reply direction as its answers come (after
/// NAT), TCP's state, and counters. Nat is "dnat", "snat", "dnat,snat" or null; Label names the
/// backend that took it (a service backend, a published port), 0 when none.
/// </summary>
public sealed record ConnectionView(
    string Proto, string? TcpState, string[] Status,
    string OrigSrc, int OrigSport, string OrigDst, int OrigDport,
    string ReplySrc, int ReplySport, string ReplyDst, int ReplyDport,
    string? Nat, double ExpiresInSeconds, double AgeSeconds,
    long PacketsOrig, long BytesOrig, long PacketsReply, long BytesReply, int Label);

/// <summary>
/// GET /v1/conntrack: the table's state and its connections (at most ?limit=, default 10000; Truncated
/// says more matched). Tracking is false while no service, policy or NAT asks for conntrack.
/// Filters: ?proto=tcp|udp|icmp, ?src= and ?dst= (the original direction's addresses), ?port= (either
/// port of either direction), ?state= (a TCP state, e.g. ESTABLISHED), ?nat=dnat|snat.
/// </summary>
public sealed record ConntrackView(bool Tracking, int Count, int Capacity, long Created, long Removed, long Full, long Invalid,
    ConnectionView[] Connections, bool Truncated);
