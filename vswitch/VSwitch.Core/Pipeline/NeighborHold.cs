using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Tables;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// Packets waiting for their next hop to answer ARP (the kernel's unresolved queue), per datapath
/// thread: the first packet to an unknown neighbour sends the request; the packets wait up to
/// 3.5 s and re-enter the pipeline at the flow stage once the neighbour is known, or are dropped
/// with an ICMP host unreachable when it never answers.
/// </summary>
public sealed class NeighborHold
{
    public const int MaxHeld = 128;
    public const long HoldMs = 3_500;
    public static readonly DropReason[] Reasons = [DropReason.NeighborQueueFull, DropReason.NeighborUnresolved];

    private readonly (Packet Packet, ushort Network, uint Target, long Since)[] _held = new (Packet, ushort, uint, long)[MaxHeld];
    private int _count;
    private PacketBatch? _release;
    private readonly Packet[] _ready = new Packet[MaxHeld];

    public int Count => Volatile.Read(ref _count);

    /// <summary>Keeps a packet until its next hop answers, sending the first request.</summary>
    public void Hold(Packet p, ushort network, uint target, DatapathContext ctx)
    {
        if (ctx.DryRun)
        {
            // A synthetic trace asks no neighbour and holds nothing: it says what would happen.
            var known = ctx.Datapath.Neighbors.Lookup(network, target);
            p.Trace?.Add(ctx.StageName, $"next hop {Wire.AddressFormat.IPv4(target)} is not resolved ({known?.State.ToString() ?? "unknown"}): would hold the packet and send ARP");
            p.Release();
            return;
        }
        var entry = ctx.Datapath.Neighbors.Resolve(network, target, ctx.NowMs, out bool created);
        if (entry is null) { ctx.Drop(p, DropReason.NeighborQueueFull); return; }
        if (created) ctx.SendArpRequest(network, target);
        if (entry.State == NeighborState.Failed)
        {
            ctx.SendIcmpError(p, Router.IcmpUnreachable, Router.CodeHost, 0);
            ctx.Drop(p, DropReason.NeighborUnresolved);
            return;
        }
        if (_count == MaxHeld) { ctx.Drop(p, DropReason.NeighborQueueFull); return; }
        if (p.Trace is { } t)
        {
            t.Add(ctx.StageName, $"held until {Wire.AddressFormat.IPv4(target)} answers ARP{(created ? " (request sent)" : "")}");
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
        // Decide first, then send: sending may hold packets again, which must not disturb this walk.
        int kept = 0, ready = 0;
        for (int i = 0; i < _count; i++)
        {
            var h = _held[i];
            var e = ctx.Datapath.Neighbors.Lookup(h.Network, h.Target);
            if (e is { Usable: true }) _ready[ready++] = h.Packet;
            else if (e is null || e.State == NeighborState.Failed || nowMs - h.Since > HoldMs)
            {
                ctx.SendIcmpError(h.Packet, Router.IcmpUnreachable, Router.CodeHost, 0);
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
