using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// The transmit queues of one datapath thread, one per output port: the action stage queues each
/// frame for its port, and the output stage sends every port's queue as one batch (one sendmmsg
/// or io_uring_enter), like VPP's interface-output. A queue that fills up is sent at once.
/// </summary>
public sealed class OutputQueues
{
    public static readonly DropReason[] Reasons = [DropReason.PortDown, DropReason.TxFailed];

    private readonly PacketBatch?[] _tx = new PacketBatch?[SwitchTopology.MaxPorts];
    private readonly int[] _dirty = new int[SwitchTopology.MaxPorts];
    private int _dirtyCount;

    /// <summary>Frames queued since the output stage last took the count (its packets per call).</summary>
    internal int Queued;

    /// <summary>Queues a packet for a port; super-frames go through software GSO first if the port cannot take them whole.</summary>
    public void Enqueue(Packet p, SwitchPort port, DatapathContext ctx)
    {
        if (p.GsoSize != 0 && !port.Io.AcceptsGso) { SoftwareGso.Segment(p, port, ctx); return; }
        if (p.Trace is { } t)
            t.Add(ctx.StageName, port.IsTunnel
                ? $"queued on {port.Name} to VTEP {VtepRemote.Format(p.TunnelRemote)} VNI {p.TunnelId}"
                : $"queued on {port.Name}");
        var q = _tx[port.Id];
        if (q is null) _tx[port.Id] = q = new PacketBatch(PacketBatch.MaxSize);
        if (q.Count == 0) _dirty[_dirtyCount++] = port.Id;
        else if (q.IsFull) Send(port.Id, q, ctx);
        q.Add(p);
        Queued++;
    }

    /// <summary>Transmits every queued batch.</summary>
    public void Flush(DatapathContext ctx)
    {
        for (int i = 0; i < _dirtyCount; i++)
        {
            int id = _dirty[i];
            var q = _tx[id]!;
            if (q.Count > 0) Send(id, q, ctx);
        }
        _dirtyCount = 0;
    }

    private static void Send(int portId, PacketBatch q, DatapathContext ctx)
    {
        // Wherever the queue is sent from, what happens here is the output stage's doing.
        int stage = ctx.OutputStage;
        ref var pc = ref ctx.Counters.Ports[portId];
        int n = q.Count;
        long bytes = 0;
        bool traced = false;
        foreach (var p in q.AsSpan())
        {
            bytes += p.Length;
            traced |= p.Trace is not null;
        }
        var port = ctx.Topology.Port(portId);
        if (port is null || ctx.DryRun)
        {
            if (traced) Record(q, port is null ? $"port {portId} is gone: drop" : $"would send on {port.Name}", port is null, port is not null, stage, ctx);
            if (port is null)
            {
                ctx.Counters.CountDrop(stage, DropReason.PortDown, n);
                pc.TxDrops += n;
            }
            q.ReleaseAll();
            return;
        }
        // Transmit returns every buffer to its pool: note the traces it will not give back first.
        PacketTrace?[]? traces = traced ? Traces(q) : null;
        if (ctx.Captures is { } caps) CaptureTap.Sent(caps, q, portId);
        if (ctx.Mirrors is { } mirrors) Mirroring.Sent(mirrors, q, portId, ctx);
        int sent = port.Io.Transmit(q);
        q.Clear();
        pc.TxPackets += sent;
        pc.TxBytes += sent == n ? bytes : bytes * sent / Math.Max(1, n);
        // A device that is down (not up yet, or set down in its namespace) refuses what it is given: that is a port
        // that is down, not a failure of the transmit.
        var failed = sent < n && port.Io.LinkDown ? DropReason.PortDown : DropReason.TxFailed;
        if (sent < n)
        {
            pc.TxDrops += n - sent;
            ctx.Counters.CountDrop(stage, failed, n - sent);
        }
        if (traces is not null)
        {
            // A port sends its batch in order and stops at the first frame it cannot send.
            string name = ctx.Datapath.Stages[stage].Name;
            for (int i = 0; i < traces.Length; i++)
            {
                if (traces[i] is not { } t) continue;
                if (i < sent) { t.Add(name, $"sent on {port.Name}"); t.Outputs++; }
                else if (failed == DropReason.PortDown) { t.Add(name, $"{port.Name}'s device is down (not up): drop ({failed.Name()})"); t.DropReason ??= failed.Name(); }
                else { t.Add(name, $"transmit failed on {port.Name}: drop ({failed.Name()})"); t.DropReason ??= failed.Name(); }
            }
        }
    }

    private static PacketTrace?[] Traces(PacketBatch q)
    {
        var s = q.AsSpan();
        var t = new PacketTrace?[s.Length];
        for (int i = 0; i < s.Length; i++) t[i] = s[i].Trace;
        return t;
    }

    private static void Record(PacketBatch q, string detail, bool drop, bool output, int stage, DatapathContext ctx)
    {
        string name = ctx.Datapath.Stages[stage].Name;
        var s = q.AsSpan();
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i].Trace is not { } t) continue;
            t.Add(name, detail);
            if (drop) t.DropReason ??= DropReason.PortDown.Name();
            if (output) t.Outputs++;
        }
    }
}
