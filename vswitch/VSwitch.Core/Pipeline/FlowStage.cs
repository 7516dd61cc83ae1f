using VSwitch.Core.Buffers;
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

    public override void Process(PacketBatch batch, DatapathContext ctx)
    {
        var items = batch.Items;
        int n = batch.Count;
        var cache = ctx.FlowCache;
        long now = ctx.NowMs;
        long gen = ctx.Generation;
        var live = ctx.Datapath.LiveTrace;
        for (int i = 0; i < n; i++)
        {
            var p = items[i];
            ulong hash = p.Key.Hash64();
            var e = cache.Lookup(in p.Key, hash);
            if (e is null)
            {
                cache.Misses++;
                e = cache.Install(in p.Key, hash, now, ctx.RetireFlow);
                e.Generation = gen;
                SlowPath.Resolve(in p.Key, p.Vlan, ctx.Datapath, ctx.Topology, now, e, ctx.Scratch, sideEffects: true, trace: null);
                if (e.NoCache) e.Generation = -1;
            }
            else if (e.Generation != gen)
            {
                cache.Revalidations++;
                ctx.RetireCounters(e);
                e.Generation = gen;
                SlowPath.Resolve(in p.Key, p.Vlan, ctx.Datapath, ctx.Topology, now, e, ctx.Scratch, sideEffects: true, trace: null);
                if (e.NoCache) e.Generation = -1;
            }
            else
            {
                cache.Hits++;
                // Learning and rule idle times are refreshed from the cache at most once a second.
                if (now - e.LastLearnMs >= 1000)
                {
                    e.LastLearnMs = now;
                    if (e.Learns) ctx.Datapath.MacTable.Learn(e.LearnNetwork, e.LearnVlan, e.LearnMac, e.LearnPort, now, e.LearnAgingMs);
                    if (e.Rule is { } r) Volatile.Write(ref r.LastUsedMs, now);
                }
            }
            e.Packets++;
            e.Bytes += p.Length;
            e.LastUsedMs = now;
            p.Flow = e;
            if (live is not null) ctx.TraceLive(live, p, e);
        }
    }
}
