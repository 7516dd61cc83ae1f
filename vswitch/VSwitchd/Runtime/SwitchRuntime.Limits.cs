using VSwitch.Api;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Tables;
using VSwitch.Core.Topology;
using VSwitchd.Config;
using VSwitchd.Logging;

namespace VSwitchd.Runtime;

// Every table and queue a user or a container can grow, its limit and what happened at it: one list,
// shown in `vsctl stats` (LIMITS), GET /v1/stats (limits) and /metrics (vswitch_limit*). The README's
// "Limits" table documents the same rows; a test checks that it names every one.
public sealed partial class SwitchRuntime
{
    private long _rulesRefused, _routesRefused, _portsRefused, _networksRefused, _apiBodiesRefused;

    /// <summary>The limits the daemon runs with (the config file's "limits" section, else the defaults).</summary>
    public LimitsConfig Limits { get; }

    /// <summary>Counts a request body refused for being over <see cref="LimitsConfig.ApiBodyBytes"/> (the API answers 413).</summary>
    public void CountApiBodyRefused() => Interlocked.Increment(ref _apiBodiesRefused);

    /// <summary>Throws a <see cref="ConflictException"/> naming the limit when a table is full; counts the refusal.</summary>
    private void EnsureRoom(string what, int count, int limit, ref long refused, string setting)
    {
        if (count < limit) return;
        Interlocked.Increment(ref refused);
        throw new ConflictException($"{what} full: {count} of {limit}" + (setting.Length > 0 ? $" (raise {setting} in the config file)" : " (a fixed limit)"));
    }

    private void EnsureRuleRoom() => EnsureRoom("the rule table is", Datapath.Rules.Rules.Count, Limits.Rules, ref _rulesRefused, "limits.rules");
    private void EnsureRouteRoom() => EnsureRoom("the route table is", Datapath.Routes.Routes().Count(r => !r.Paths.Any(p => p.Kind == RouteKind.Connected)),
        Limits.Routes, ref _routesRefused, "limits.routes");
    private void EnsurePortRoom() => EnsureRoom("the switch's port table is", Datapath.Topology.Ports.Count + _down.Count, SwitchTopology.MaxPorts, ref _portsRefused, "");
    private void EnsureNetworkRoom() => EnsureRoom("the switch's network table is", Datapath.Topology.Networks.Count, Network.MaxNetworks, ref _networksRefused, "");

    public LimitView[] GetLimits()
    {
        var macs = Datapath.MacTable;
        long flows = 0, flowCapacity = 0, evictions = 0, held = 0;
        foreach (var c in Datapath.Contexts)
        {
            flows += c.FlowCache.Count; flowCapacity += c.FlowCache.Capacity; evictions += c.FlowCache.Evictions;
            held += c.HeldForNeighbor;
        }
        int threads = Math.Max(1, Datapath.Contexts.Count);
        var drops = Datapath.ReadStageDropCounters();
        long Dropped(DropReason r)
        {
            long n = 0;
            for (int i = (int)r; i < drops.Length; i += (int)DropReason.Count) n += drops[i];
            return n;
        }
        int staticRoutes = Datapath.Routes.Routes().Count(r => !r.Paths.Any(p => p.Kind == RouteKind.Connected));
        int largestPort = 0;
        foreach (var p in Datapath.Topology.Ports) largestPort = Math.Max(largestPort, macs.CountOnPort(p.Id));
        return
        [
            new("mac-table", macs.Count, macs.Capacity, macs.RefusedLearns, "address not learned, frame flooded (mac-table-full; shared with mac-table-per-port)", "limits.macTable"),
            new("mac-table-per-port", largestPort, macs.PerPortLimit, macs.RefusedLearns, "address not learned, frame flooded (mac-table-full; used: the fullest port)", "limits.macPerPort"),
            new("flow-cache", flows, flowCapacity, evictions, "least recently used flow of the set evicted", "datapath.flowCacheSize"),
            new("neighbor-table", Datapath.Neighbors.Count, NeighborTable.MaxEntries, Datapath.Neighbors.Refused, "next hop not resolved, packet dropped (neighbor-queue-full)", ""),
            new("neighbor-hold-queue", held, (long)NeighborHold.MaxHeld * threads, Dropped(DropReason.NeighborQueueFull), "packet dropped (neighbor-queue-full), per thread", ""),
            new("icmp-errors-per-second", -1, (long)IcmpRateLimiter.PerSecond * threads, Dropped(DropReason.IcmpRateLimited), "ICMP error not sent (icmp-rate-limited), per thread", ""),
            new("conntrack", Datapath.ConntrackConfig.Track ? Datapath.Conntrack.Count : 0, Datapath.ConntrackCapacity,
                Dropped(DropReason.ConntrackFull), "new connection dropped (conntrack-full); existing ones go on", "limits.conntrack"),
            new("rules", Datapath.Rules.Rules.Count, Limits.Rules, Interlocked.Read(ref _rulesRefused), "rule refused (API 409)", "limits.rules"),
            new("routes", staticRoutes, Limits.Routes, Interlocked.Read(ref _routesRefused), "route refused (API 409)", "limits.routes"),
            new("ports", Datapath.Topology.Ports.Count + _down.Count, SwitchTopology.MaxPorts, Interlocked.Read(ref _portsRefused), "port refused (API 409)", ""),
            new("networks", Datapath.Topology.Networks.Count, Network.MaxNetworks, Interlocked.Read(ref _networksRefused), "network refused (API 409)", ""),
            new("api-request-body-bytes", -1, Limits.ApiBodyBytes, Interlocked.Read(ref _apiBodiesRefused), "request refused (API 413)", "limits.apiBodyBytes"),
            new("log-lines-per-second", -1, Limits.LogLinesPerSecond, LogLimiter?.Suppressed ?? 0, "line not written, counted in a later summary line", "limits.logLinesPerSecond"),
            .. MoreLimits?.Invoke() ?? [],
        ];
    }

    /// <summary>Bounds kept outside the runtime (the API's audit log), listed with the runtime's own (Program sets it).</summary>
    public Func<LimitView[]>? MoreLimits { get; set; }

    /// <summary>The daemon's log budget, when its logging goes through one (Program sets it).</summary>
    public LogRateLimiter? LogLimiter { get; set; }
}
