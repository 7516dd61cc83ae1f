using System.IO.Pipelines;
using VSwitch.Core;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;

namespace VSwitchd.Capture;

/// <summary>
/// Streams one capture as pcapng to a client: drains the capture's ring into the response's PipeWriter and
/// flushes, which waits while the client does not read (backpressure stops here, at this task; the datapath only
/// sees a full ring and counts what it could not keep). It ends when the count is reached, the duration passes,
/// the client goes away or the daemon stops; then it writes the statistics (captured, lost, delivered) as the
/// stream's last blocks.
/// </summary>
public sealed class CaptureSession(Datapath datapath, PacketCapture capture, TimeSpan? duration, string application)
{
    /// <summary>How often an idle reader looks at the ring again: the latency a live capture adds, at most.</summary>
    private static readonly TimeSpan IdlePoll = TimeSpan.FromMilliseconds(10);
    /// <summary>Frames written between flushes, so that a busy capture reaches the client in steady pieces.</summary>
    private const int FramesPerFlush = 256;

    private readonly Dictionary<int, int> _interfaces = [];
    private readonly List<long> _delivered = [];

    /// <summary>Frames written to the client.</summary>
    public long Delivered { get; private set; }

    public async Task StreamAsync(PipeWriter output, CancellationToken aborted)
    {
        var w = new PcapngWriter(output);
        long start = capture.NowNs();
        w.WriteSectionHeader(application);
        // The port's interface comes first, so that an empty capture is still a file readers accept.
        if (capture.Port >= 0) Interface(w, capture.Port);
        // Past the deadline the datapath stops offering frames even while this task waits for a slow client.
        using var deadline = duration is { } d ? new CancellationTokenSource(d) : null;
        using var stopAtDeadline = deadline?.Token.Register(() => datapath.DisarmCapture(capture));
        try
        {
            if ((await output.FlushAsync(aborted)).IsCompleted) return;
            while (true)
            {
                int n = Drain(w, FramesPerFlush);
                if (n > 0)
                {
                    if ((await output.FlushAsync(aborted)).IsCompleted) return;
                    continue;
                }
                if (capture.IsDone)
                {
                    datapath.DisarmCapture(capture);
                    // A writer may have claimed a slot and still be copying into it: a few microseconds.
                    if (capture.Ring.Pending > 0 && await Settled(aborted)) continue;
                    break;
                }
                await Task.Delay(IdlePoll, aborted);
            }
            if (_interfaces.Count == 0) Interface(w, -1); // statistics need an interface
            long end = capture.NowNs();
            long lost = capture.Overflow;
            string summary = $"{capture.Accepted} frames captured, {lost} lost (the capture's ring was full: the reader was slower than the traffic), {Delivered} delivered";
            for (int i = 0; i < _delivered.Count; i++)
                w.WriteStatistics(i, start, end, i == 0 ? capture.Accepted : _delivered[i], i == 0 ? lost : 0, _delivered[i], summary);
            await output.FlushAsync(aborted);
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            // The client went away (or the daemon stops): nothing more to say to it.
        }
        finally
        {
            datapath.DisarmCapture(capture);
        }
    }

    /// <summary>Waits (briefly) for slots claimed before the capture closed to be published; true when some are.</summary>
    private async Task<bool> Settled(CancellationToken aborted)
    {
        for (int i = 0; i < 100 && capture.Ring.IsEmpty; i++) await Task.Delay(1, aborted);
        return !capture.Ring.IsEmpty;
    }

    private int Drain(PcapngWriter w, int max)
    {
        var ring = capture.Ring;
        int n = 0;
        while (n < max && ring.TryPeek(out var meta, out var frame))
        {
            int iface = Interface(w, meta.Port);
            string? comment = meta.Drop == DropReason.None ? null
                : $"drop: {meta.Drop.Name()} (stage {StageName(meta.Stage)})";
            w.WritePacket(iface, meta.TimestampNs, frame, meta.OriginalLength,
                meta.Direction == CaptureDirection.Tx ? PcapngWriter.Outbound : PcapngWriter.Inbound, comment);
            ring.Release();
            _delivered[iface]++;
            Delivered++;
            n++;
        }
        return n;
    }

    private string StageName(int stage) => (uint)stage < (uint)datapath.Stages.Count ? datapath.Stages[stage].Name : stage.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The pcapng interface of a switch port, described on first use (-1: the capture as a whole).</summary>
    private int Interface(PcapngWriter w, int port)
    {
        if (_interfaces.TryGetValue(port, out int iface)) return iface;
        iface = _interfaces.Count;
        _interfaces[port] = iface;
        _delivered.Add(0);
        var sp = port > 0 ? datapath.Topology.Port(port) : null;
        string name = sp?.Name ?? (port < 0 ? "drops" : $"port{port}");
        string description = sp is null ? (port == 0 ? "frames the switch made itself" : "vswitchd")
            : $"vswitchd port {sp.Name}" + (sp.IsTunnel ? " (tunnel)" : $" in network {sp.Network.Name}");
        w.WriteInterface(name, description, capture.SnapLength);
        return iface;
    }
}
