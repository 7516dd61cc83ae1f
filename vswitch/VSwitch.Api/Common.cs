namespace VSwitch.Api;

/// <summary>GET /v1/show: the whole switch at a glance (like <c>ovs-vsctl show</c>).</summary>
public sealed record ShowView(string Version, double UptimeSeconds, int Threads, bool BusyPoll, NetworkView[] Networks, PortView[] Ports, int MacEntries);

/// <summary>A flush (DELETE /v1/fdb, /v1/flows, /v1/neighbors): how many entries went.</summary>
public sealed record FlushResult(int Removed);
