using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Tables;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// IPv6 packets waiting for their next hop to answer a neighbour solicitation, per datapath thread,
/// as <see cref="NeighborHold"/> does for ARP: the first packet to an unknown neighbour sends the
/// solicitation; the packets wait up to <see cref="NeighborHold.HoldMs"/> and re-enter at the flow
/// stage once the neighbour answered, or are dropped with ICMPv6 address unreachable when it never does.
/// Bounded: at most <see cref="MaxHeld"/> packets, the rest dropped as neighbor-queue-full.
/// </summary>
public sealed class NeighborHold6
{
    public const int MaxHeld = 128;

    private readonly (Packet Packet, ushort Network, UInt128 Target, long Since)[] _held = new (Packet, ushort, UInt128, long)[MaxHeld];
    private int _count;
    private PacketBatch? _release;
    private readonly Packet[] _ready = new Packet[MaxHeld];

    public int Count => Volatile.Read(ref _count);

    /// <summary>Keeps a packet until its next hop answers, sending the first solicitation.</summary>
    public void Hold(Packet p, ushort network, DatapathContext ctx)
    {
        UInt128 target = Router6.NextHop(in p.Key, ctx.Datapath);
        if (target == UInt128.Zero) { ctx.Drop(p, DropReason.NoRoute); return; }
        if (ctx.DryRun)
        {
            var known = ctx.Datapath.Neighbors6.Lookup(network, target);
            p.Trace?.Add(ctx.StageName, $"next hop {Wire.AddressFormat.IPv6(target)} is not resolved ({known?.State.ToString() ?? "unknown"}): would hold the packet and send a neighbour solicitation");
            p.Release();
            return;
        }
        var entry = ctx.Datapath.Neighbors6.Resolve(network, target, ctx.NowMs, out bool created);
        if (entry is null) { ctx.Drop(p, DropReason.NeighborQueueFull); return; }
        if (created) ctx.SendNeighborSolicitation(network, target, 0);
        if (entry.State == NeighborState.Failed)
        {
            ctx.SendIcmpError(p, Router6.IcmpUnreachable, Router6.CodeAddressUnreachable, 0);
            ctx.Drop(p, DropReason.NeighborUnresolved);
            return;
        }
        if (_count == MaxHeld) { ctx.Drop(p, DropReason.NeighborQueueFull); return; }
        if (p.Trace is { } t)
        {
            t.Add(ctx.StageName, $"held until {Wire.AddressFormat.IPv6(target)} answers the solicitation{(created ? " (sent)" : "")}");
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
        int kept = 0, ready = 0;
        for (int i = 0; i < _count; i++)
        {
            var h = _held[i];
            var e = ctx.Datapath.Neighbors6.Lookup(h.Network, h.Target);
            if (e is { Usable: true }) _ready[ready++] = h.Packet;
            else if (e is null || e.State == NeighborState.Failed || nowMs - h.Since > NeighborHold.HoldMs)
            {
                ctx.SendIcmpError(h.Packet, Router6.IcmpUnreachable, Router6.CodeAddressUnreachable, 0);
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
