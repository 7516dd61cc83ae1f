using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Tables;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// Looks each packet's key up in the thread's flow cache. A hit whose generation is current
/// gives the actions at once; a miss, or a hit made stale by a change to the rules, the MAC table
/// or the topology, runs the slow path and (re)installs the flow. Counts every packet on its flow.
/// </summary>
public sealed class FlowStage : Stage
{
    public override string Name => "flow-lookup";

    /// <summary>The slow path's decisions become drop actions that the action stage carries out: this stage drops nothing itself.</summary>
    public override IReadOnlyList<DropReason> DropReasons { get; } = [];

    public override void Process(PacketBatch batch, DatapathContext ctx)
    {
        var items = batch.Items;
        int n = batch.Count;
        var cache = ctx.FlowCache;
        long now = ctx.NowMs;
        long gen = ctx.Generation, routingGen = ctx.RoutingGeneration;
        var macs = ctx.Datapath.MacTable;
        // A synthetic trace decides like the datapath but must not learn or touch rule timers.
        bool sideEffects = !ctx.DryRun;
        for (int i = 0; i < n; i++)
        {
            var p = items[i];
            ulong hash = p.Key.Hash64();
            var e = cache.Lookup(in p.Key, hash);
            var trace = p.Trace;
            if (e is null)
            {
                cache.Misses++;
                if (trace is not null) TraceMiss(p, trace, ctx);
                e = cache.Install(in p.Key, hash, now, ctx.RetireFlow);
                e.Generation = gen;
                e.RoutingGeneration = routingGen;
                SlowPath.Resolve(in p.Key, p.Vlan, ctx.Datapath, ctx.Topology, now, e, ctx.Scratch, sideEffects, trace);
                if (e.NoCache) e.Generation = -1;
            }
            else if (!SlowPath.IsCurrent(e, gen, routingGen, macs))
            {
                cache.Revalidations++;
                trace?.Add(Name, $"cached flow is stale (a table changed since, {e.Packets} packets): revalidate in the slow path");
                ctx.RetireCounters(e);
                e.Generation = gen;
                e.RoutingGeneration = routingGen;
                SlowPath.Resolve(in p.Key, p.Vlan, ctx.Datapath, ctx.Topology, now, e, ctx.Scratch, sideEffects, trace);
                if (e.NoCache) e.Generation = -1;
            }
            else
            {
                cache.Hits++;
                if (trace is not null)
                {
                    trace.CacheHit = true;
                    trace.Add(Name, $"hit in thread {ctx.Index}'s flow cache ({e.Packets} packets)"
                        + (e.Rule is { } rule ? $", from rule {rule.Format(PortNames(ctx))}" : ""));
                }
                // Learning and rule idle times are refreshed from the cache at most once a second.
                if (now - e.LastLearnMs >= 1000)
                {
                    e.LastLearnMs = now;
                    if (e.Learns) ctx.Datapath.MacTable.Learn(e.LearnNetwork, e.LearnVlan, e.LearnMac, e.LearnPort, now, e.LearnAgingMs, e.LearnRemote);
                    if (e.Rule is { } r) Volatile.Write(ref r.LastUsedMs, now);
                }
            }
            e.Packets++;
            e.Bytes += p.Length;
            e.LastUsedMs = now;
            p.Flow = e;
            if (trace is not null) trace.Actions = FlowAction.Format(e.Actions, PortNames(ctx));
        }
    }

    private static Func<int, string?> PortNames(DatapathContext ctx)
    {
        var topo = ctx.Topology;
        return id => topo.Port(id)?.Name;
    }

    /// <summary>
    /// A miss in this thread's cache. A synthetic trace runs in a context of its own, so it also
    /// says whether a datapath thread caches the flow, and what that cached flow does.
    /// </summary>
    private void TraceMiss(Buffers.Packet p, PacketTrace trace, DatapathContext ctx)
    {
        if (!ctx.DryRun) { trace.Add(Name, "miss: the slow path decides"); return; }
        ulong hash = p.Key.Hash64();
        long gen = ctx.Datapath.Generation, routingGen = ctx.Datapath.RoutingGeneration;
        bool any = false;
        foreach (var other in ctx.Datapath.Contexts)
        {
            var cached = other.FlowCache.Lookup(in p.Key, hash);
            if (cached is null) continue;
            any = true;
            trace.Add(Name, $"thread {other.Index} caches this flow ({cached.Packets} packets, "
                + (SlowPath.IsCurrent(cached, gen, routingGen, ctx.Datapath.MacTable) ? "current" : "stale: will be revalidated") + $"): actions={FlowAction.Format(cached.Actions, PortNames(ctx))}");
        }
        if (!any) trace.Add(Name, "no datapath thread caches this flow: the slow path decides");
    }
}
