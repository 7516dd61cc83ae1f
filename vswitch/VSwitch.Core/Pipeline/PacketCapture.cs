using System.Diagnostics;
using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Tables.Rules;

namespace VSwitch.Core.Pipeline;

/// <summary>Which way a captured frame went through its port (pcapng's epb_flags inbound/outbound).</summary>
[Flags]
public enum CaptureDirection : byte
{
    Rx = 1,
    Tx = 2,
    Both = Rx | Tx,
}

/// <summary>
/// One running capture (tcpdump on a switch port, or on the drops): which frames it wants, the ring they are
/// copied into, and its counts. The datapath offers frames to it through <see cref="CaptureTap"/>; a reader in
/// the control plane drains <see cref="Ring"/>. Nothing here blocks or allocates per frame: a frame the ring has
/// no room for is counted in <see cref="Overflow"/> and forgotten.
/// </summary>
public sealed class PacketCapture
{
    private long _remaining;
    private long _accepted, _overflow;
    private volatile bool _closed;
    private readonly long _baseNs, _baseTicks;
    private readonly double _nsPerTick = 1e9 / Stopwatch.Frequency;

    /// <param name="port">The port to capture on; -1 with <paramref name="drops"/> for every port.</param>
    /// <param name="filter">A match in rule syntax on the frame's flow key; null takes every frame.</param>
    /// <param name="count">Frames to take before the capture is done; 0 for no limit.</param>
    /// <param name="drops">Take frames the pipeline drops (with their reason and stage) instead of frames passing.</param>
    /// <param name="reason">With <paramref name="drops"/>: only this reason; <see cref="DropReason.None"/> for all.</param>
    public PacketCapture(int port, CaptureDirection direction, FlowMatch? filter, long count, int snapLength, CaptureRing ring,
        bool drops = false, DropReason reason = DropReason.None)
    {
        Port = port;
        Direction = direction;
        Filter = filter;
        _remaining = count > 0 ? count : long.MaxValue;
        SnapLength = snapLength;
        Ring = ring;
        Drops = drops;
        Reason = reason;
        _baseNs = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
        _baseTicks = Stopwatch.GetTimestamp();
    }

    public int Port { get; }
    public CaptureDirection Direction { get; }
    public FlowMatch? Filter { get; }
    public int SnapLength { get; }
    public CaptureRing Ring { get; }
    public bool Drops { get; }
    public DropReason Reason { get; }

    /// <summary>Frames the capture took (those the ring then had no room for included).</summary>
    public long Accepted => Interlocked.Read(ref _accepted);
    /// <summary>Frames taken but lost because the ring was full: the reader was too slow.</summary>
    public long Overflow => Interlocked.Read(ref _overflow);
    /// <summary>True once <see cref="Close"/> was called or the count is reached: no frame will be added.</summary>
    public bool IsDone => _closed || Volatile.Read(ref _remaining) <= 0;

    /// <summary>Stops taking frames (the datapath may still be offering some for a batch; they are refused).</summary>
    public void Close() => _closed = true;

    /// <summary>Unix time in nanoseconds, from the monotonic clock (one read; wall-clock steps do not reorder frames).</summary>
    public long NowNs() => _baseNs + (long)((Stopwatch.GetTimestamp() - _baseTicks) * _nsPerTick);

    /// <summary>Whether the capture wants this frame, by its key (port and direction are the tap's to check).</summary>
    internal bool Wants(Packet p) => !_closed && (Filter is null || Filter.Matches(p.Key));

    /// <summary>Takes one frame: claims a place in the count, then a slot in the ring.</summary>
    internal void Take(Packet p, int port, CaptureDirection direction, DropReason drop, int stage)
    {
        if (Interlocked.Decrement(ref _remaining) < 0) return;
        Interlocked.Increment(ref _accepted);
        var meta = new CaptureRing.Record { TimestampNs = NowNs(), Port = port, Direction = direction, Drop = drop, Stage = stage };
        if (!Ring.TryWrite(p.Data, meta)) Interlocked.Increment(ref _overflow);
    }
}

/// <summary>
/// Where the pipeline hands frames to the running captures: on receive (the classify stage, before the VLAN tag is
/// removed: the frame as it came), on transmit (the output stage, as the port sends it) and on drop. The callers test
/// <see cref="DatapathContext.Captures"/> for null first: with no capture running that test is all it costs.
/// </summary>
public static class CaptureTap
{
    public static void Received(PacketCapture[] captures, Packet p)
    {
        foreach (var c in captures)
            if (!c.Drops && (c.Direction & CaptureDirection.Rx) != 0 && c.Port == p.InPort && c.Wants(p))
                c.Take(p, p.InPort, CaptureDirection.Rx, DropReason.None, 0);
    }

    public static void Sent(PacketCapture[] captures, PacketBatch queue, int port)
    {
        foreach (var c in captures)
        {
            if (c.Drops || (c.Direction & CaptureDirection.Tx) == 0 || c.Port != port) continue;
            foreach (var p in queue.AsSpan())
                if (c.Wants(p)) c.Take(p, port, CaptureDirection.Tx, DropReason.None, 0);
        }
    }

    public static void Dropped(PacketCapture[] captures, Packet p, DropReason reason, int stage)
    {
        foreach (var c in captures)
            if (c.Drops && (c.Port < 0 || c.Port == p.InPort) && (c.Reason == DropReason.None || c.Reason == reason) && c.Wants(p))
                c.Take(p, p.InPort, CaptureDirection.Rx, reason, stage);
    }
}
