using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Tables;

namespace VSwitch.Core.Pipeline;

/// <summary>The bounds of the per-thread neighbour hold queues (one for each family).</summary>
public static class NeighborHold
{
    public const int MaxHeld = 128;
    public const long HoldMs = 3_500;
    public static readonly DropReason[] Reasons = [DropReason.NeighborQueueFull, DropReason.NeighborUnresolved];
}

/// <summary>
/// Packets waiting for their next hop to answer (the kernel's unresolved queue), per datapath
/// thread and family (<see cref="ArpResolution"/>, <see cref="NdResolution"/>): the first packet to
/// an unknown neighbour sends the request; the packets wait up to <see cref="NeighborHold.HoldMs"/>
/// and re-enter the pipeline at the flow stage once the neighbour is known, or are dropped with an
/// ICMP unreachable when it never answers. Bounded: at most <see cref="NeighborHold.MaxHeld"/>
/// packets, the rest dropped as neighbor-queue-full.
/// </summary>
internal sealed class NeighborHold<TAddress, TResolution>
    where TAddress : unmanaged, IEquatable<TAddress>
    where TResolution : struct, INeighborResolution<TAddress>
{
    private readonly (Packet Packet, ushort Network, TAddress Target, long Since)[] _held = new (Packet, ushort, TAddress, long)[NeighborHold.MaxHeld];
    private int _count;
    private PacketBatch? _release;
    private readonly Packet[] _ready = new Packet[NeighborHold.MaxHeld];

    public int Count => Volatile.Read(ref _count);

    /// <summary>Keeps a packet until its next hop answers, sending the first request.</summary>
    public void Hold(Packet p, ushort network, TAddress target, DatapathContext ctx)
    {
        var table = TResolution.Table(ctx.Datapath);
        if (ctx.DryRun)
        {
            // A synthetic trace asks no neighbour and holds nothing: it says what would happen.
            var known = table.Lookup(network, target);
            p.Trace?.Add(ctx.StageName, $"next hop {TResolution.Format(target)} is not resolved ({known?.State.ToString() ?? "unknown"}): would hold the packet and send {TResolution.Question}");
            p.Release();
            return;
        }
        var entry = table.Resolve(network, target, ctx.NowMs, out bool created);
        if (entry is null) { ctx.Drop(p, DropReason.NeighborQueueFull); return; }
        if (created) TResolution.Solicit(ctx, network, target);
        if (entry.State == NeighborState.Failed)
        {
            TResolution.SendUnreachable(ctx, p);
            ctx.Drop(p, DropReason.NeighborUnresolved);
            return;
        }
        if (_count == NeighborHold.MaxHeld) { ctx.Drop(p, DropReason.NeighborQueueFull); return; }
        if (p.Trace is { } t)
        {
            t.Add(ctx.StageName, $"held until {TResolution.Format(target)} {TResolution.Answer}{(created ? TResolution.Sent : "")}");
            // The trace ends here: it is handed back at the end of this batch, while the packet waits.
            p.Trace = null;
        }
        p.Flow = null;
        _held[_count++] = (p, network, target, ctx.NowMs);
    }

    /// <summary>Sends held packets whose neighbour answered (from the flow stage on) and drops those that waited too long.</summary>
    public void ReleaseReady(long nowMs, DatapathContext ctx)
    {
        if (_count == 0) return;
        _release ??= new PacketBatch(PacketBatch.MaxSize);
        var table = TResolution.Table(ctx.Datapath);
        // Decide first, then send: sending may hold packets again, which must not disturb this walk.
        int kept = 0, ready = 0;
        for (int i = 0; i < _count; i++)
        {
            var h = _held[i];
            var e = table.Lookup(h.Network, h.Target);
            if (e is { Usable: true }) _ready[ready++] = h.Packet;
            else if (e is null || e.State == NeighborState.Failed || nowMs - h.Since > NeighborHold.HoldMs)
            {
                TResolution.SendUnreachable(ctx, h.Packet);
                ctx.Drop(h.Packet, DropReason.NeighborUnresolved);
            }
            else _held[kept++] = h;
        }
        for (int i = kept; i < _count; i++) _held[i] = default;
        _count = kept;
        for (int i = 0; i < ready; i++)
        {
            _release.Add(_ready[i]);
            _ready[i] = null!;
            if (_release.IsFull || i == ready - 1) ctx.Datapath.ProcessBatch(_release, ctx, nowMs, ctx.Datapath.FlowStageIndex);
        }
    }
}
