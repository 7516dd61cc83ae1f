using Prometheus;
using VSwitchd.Runtime;

namespace VSwitchd.Api;

/// <summary>
/// Prometheus metrics at /metrics, through prometheus-net. The datapath's counters are per-thread
/// plain fields; they are summed into the exported series just before each scrape.
/// </summary>
public sealed class MetricsExporter
{
    private readonly CollectorRegistry _registry = Metrics.NewCustomRegistry();
    private readonly SwitchRuntime _rt;
    private readonly Counter _ringDrops, _deviceLosses;
    private readonly Counter _rxPackets, _rxBytes, _txPackets, _txBytes, _rxDrops, _txDrops, _drops, _stageDrops, _stagePackets, _stageCalls;
    private readonly Counter _cacheHits, _cacheMisses, _cacheRevalidations, _cacheEvictions;
    private readonly Gauge _flows, _macEntries, _ports, _rules;
    private readonly Counter _macRefused, _limitHits, _portDrops, _macMoves;
    private readonly Gauge _limit, _limitUsed;
    private readonly Counter _masqueraded, _natPortsExhausted, _published;
    private readonly Gauge _masqueradedOpen, _publishedOpen;

    private readonly VSwitchd.Services.ServiceMetrics? _services;

    public MetricsExporter(SwitchRuntime rt, VSwitchd.Services.LoadBalancer? lb = null)
    {
        _rt = rt;
        var f = Metrics.WithCustomRegistry(_registry);
        if (lb is not null) _services = new VSwitchd.Services.ServiceMetrics(f, lb);
        string[] port = ["port"];
        _rxPackets = f.CreateCounter("vswitch_port_rx_packets_total", "Frames received on a port.", port);
        _rxBytes = f.CreateCounter("vswitch_port_rx_bytes_total", "Bytes received on a port.", port);
        _txPackets = f.CreateCounter("vswitch_port_tx_packets_total", "Frames sent on a port.", port);
        _txBytes = f.CreateCounter("vswitch_port_tx_bytes_total", "Bytes sent on a port.", port);
        _rxDrops = f.CreateCounter("vswitch_port_rx_drops_total", "Frames received on a port and dropped.", port);
        _txDrops = f.CreateCounter("vswitch_port_tx_drops_total", "Frames that could not be sent on a port.", port);
        _ringDrops = f.CreateCounter("vswitch_port_rx_ring_drops_total", "Frames the kernel dropped because an AF_PACKET port's receive ring was full.", port);
        _deviceLosses = f.CreateCounter("vswitch_port_device_losses_total", "Times a port's device vanished under it (namespace deleted, interface removed); the port is then down until it is back.", port);
        _portDrops = f.CreateCounter("vswitch_port_drops_total",
            "Frames a port sent that were refused, by reason (VLAN tags, invalid source MAC, port security, refused MAC moves).", ["port", "reason"]);
        _macMoves = f.CreateCounter("vswitch_mac_moves_total", "Learned MACs that moved onto a port from another port of its network.", ["network", "port"]);
        _drops = f.CreateCounter("vswitch_drops_total", "Frames dropped, by reason.", ["reason"]);
        _stageDrops = f.CreateCounter("vswitch_stage_drops_total", "Frames dropped, by the stage that dropped them and the reason.", ["stage", "reason"]);
        _stagePackets = f.CreateCounter("vswitch_stage_packets_total", "Packets handled by a pipeline stage.", ["stage"]);
        _stageCalls = f.CreateCounter("vswitch_stage_calls_total", "Batches handled by a pipeline stage.", ["stage"]);
        _cacheHits = f.CreateCounter("vswitch_flow_cache_hits_total", "Flow cache hits.");
        _cacheMisses = f.CreateCounter("vswitch_flow_cache_misses_total", "Flow cache misses (slow path runs).");
        _cacheRevalidations = f.CreateCounter("vswitch_flow_cache_revalidations_total", "Cached flows recomputed after a table changed.");
        _cacheEvictions = f.CreateCounter("vswitch_flow_cache_evictions_total", "Cached flows evicted to make room.");
        _flows = f.CreateGauge("vswitch_flow_cache_flows", "Flows in the flow caches.");
        _macEntries = f.CreateGauge("vswitch_mac_table_entries", "Entries in the MAC table.");
        _macRefused = f.CreateCounter("vswitch_mac_learns_refused_total", "Addresses not learned because the MAC table or the port was at its limit (mac-table-full).");
        _ports = f.CreateGauge("vswitch_ports", "Ports attached.");
        _rules = f.CreateGauge("vswitch_rules", "Rules in the rule table.");
        string[] resource = ["resource"];
        _masqueraded = f.CreateCounter("vswitch_masquerade_connections_total", "Connections masqueraded behind a host address (source NAT through a host port).");
        _masqueradedOpen = f.CreateGauge("vswitch_masquerade_connections", "Masqueraded connections in the conntrack table now.");
        _natPortsExhausted = f.CreateCounter("vswitch_masquerade_ports_exhausted_total", "New connections dropped because no masquerade port was free (nat-ports-exhausted).");
        _published = f.CreateCounter("vswitch_publish_connections_total", "Connections taken by a published port.", ["publish", "to"]);
        _publishedOpen = f.CreateGauge("vswitch_publish_connections", "A published port's connections in the conntrack table now.", ["publish", "to"]);
        _limit = f.CreateGauge("vswitch_limit", "The limit of a bounded table, queue or rate (vsctl stats: LIMITS).", resource);
        _limitUsed = f.CreateGauge("vswitch_limit_used", "How much of a bounded table or queue is in use (absent for rates and per-request sizes).", resource);
        _limitHits = f.CreateCounter("vswitch_limit_hits_total", "Times a limit was hit: entries refused, packets dropped, flows evicted or log lines suppressed.", resource);
        // The process and the .NET runtime (resident memory, open fds, GC heap and collections): what a soak watches.
        DotNetStats.Register(_registry);
        _registry.AddBeforeCollectCallback(Update);
    }

    /// <summary>The AF_PACKET ring's drop counter among a port's diagnostics (<c>PortView.Details</c>).</summary>
    private const string RingDropsDetail = "rx-ring-full-drops";

    private void Update()
    {
        // The same figures as GET /v1/stats, read through the runtime when Prometheus scrapes.
        var stats = _rt.GetStats();
        foreach (var p in stats.Ports)
        {
            var c = p.Counters;
            _rxPackets.WithLabels(p.Name).IncTo(c.RxPackets);
            _rxBytes.WithLabels(p.Name).IncTo(c.RxBytes);
            _txPackets.WithLabels(p.Name).IncTo(c.TxPackets);
            _txBytes.WithLabels(p.Name).IncTo(c.TxBytes);
            _rxDrops.WithLabels(p.Name).IncTo(c.RxDrops);
            _txDrops.WithLabels(p.Name).IncTo(c.TxDrops);
            if (p.Details?.TryGetValue(RingDropsDetail, out long ringDrops) == true) _ringDrops.WithLabels(p.Name).IncTo(ringDrops);
            if (p.Details?.TryGetValue(SwitchRuntime.DeviceLossesDetail, out long lost) == true) _deviceLosses.WithLabels(p.Name).IncTo(lost);
            if (p.SecurityDrops is { } sd)
                foreach (var (reason, n) in sd) _portDrops.WithLabels(p.Name, reason).IncTo(n);
            if (p.MacMoves > 0) _macMoves.WithLabels(p.Network, p.Name).IncTo(p.MacMoves);
        }
        foreach (var d in stats.Drops) _drops.WithLabels(d.Reason).IncTo(d.Packets);
        foreach (var st in stats.Stages)
        {
            _stagePackets.WithLabels(st.Name).IncTo(st.Packets);
            _stageCalls.WithLabels(st.Name).IncTo(st.Calls);
            foreach (var d in st.Drops) _stageDrops.WithLabels(st.Name, d.Reason).IncTo(d.Packets);
        }
        var fc = stats.FlowCache;
        _cacheHits.IncTo(fc.Hits);
        _cacheMisses.IncTo(fc.Misses);
        _cacheRevalidations.IncTo(fc.Revalidations);
        _cacheEvictions.IncTo(fc.Evictions);
        _flows.Set(fc.Flows);
        _macEntries.Set(stats.MacEntries);
        _macRefused.IncTo(stats.MacLearnsRefused);
        _ports.Set(stats.Ports.Length);
        foreach (var l in stats.Limits ?? [])
        {
            _limit.WithLabels(l.Resource).Set(l.Limit);
            if (l.Used >= 0) _limitUsed.WithLabels(l.Resource).Set(l.Used);
            _limitHits.WithLabels(l.Resource).IncTo(l.Hits);
        }
        _rules.Set(_rt.RuleCount);
        _services?.Update();
        if (stats.NorthSouth is { } ns)
        {
            _masqueraded.IncTo(ns.Masqueraded);
            _masqueradedOpen.Set(ns.MasqueradedActive);
            _natPortsExhausted.IncTo(ns.NatPortsExhausted);
            foreach (var p in ns.Publishes)
            {
                _published.WithLabels(p.Id, p.To).IncTo(p.Connections);
                _publishedOpen.WithLabels(p.Id, p.To).Set(p.Active);
            }
        }
    }

    public void Map(WebApplication app) =>
        app.MapGet("/metrics", async (HttpContext ctx) =>
        {
            ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await _registry.CollectAndExportAsTextAsync(ctx.Response.Body, ctx.RequestAborted);
        }).ExcludeFromDescription();
}
