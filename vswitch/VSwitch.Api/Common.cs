namespace VSwitch.Api;

/// <summary>GET /v1/show: the whole switch at a glance (like <c>ovs-vsctl show</c>).</summary>
public sealed record ShowView(string Version, double UptimeSeconds, int Threads, bool BusyPoll, NetworkView[] Networks, PortView[] Ports, int MacEntries);

/// <summary>A flush (DELETE /v1/fdb, /v1/flows, /v1/neighbors): how many entries went.</summary>
public sealed record FlushResult(int Removed);

/// <summary>POST /v1/restart: hand over to a new vswitchd process without losing traffic. Binary: the program to start (default: the one running, e.g. after an upgrade installed a new one there).</summary>
public sealed record RestartRequest([property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? Binary = null);

/// <summary>
/// A hand-over that happened: the old and new daemon's PIDs, the binary started, how many ports went over with their
/// descriptors, GapMs (from the old datapath's stop to the new one's start, by the successor's clock: frames meanwhile
/// waited in the kernel's queues), PausedMs (the old daemon's own measure, until it heard the new one forwards: an
/// upper bound) and TookMs (the whole restart, the new process's start included).
/// </summary>
public sealed record RestartView(int OldPid, int NewPid, string Binary, int Ports, double GapMs, double PausedMs, double TookMs);
