using System.Globalization;
using VSwitch.Api;
using VSwitch.Core;
using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Tables.Rules;
using VSwitchd.Capture;

namespace VSwitchd.Runtime;

public sealed partial class SwitchRuntime
{
    /// <summary>tcpdump's default and largest snap length.</summary>
    public const int MaxSnapLength = 262144;
    /// <summary>Memory a capture's ring may take: frames wait there while the client reads slower than they come.</summary>
    private const int CaptureRingBytes = 16 << 20;

    /// <summary>
    /// Checks a capture request, arms the capture in the datapath and returns the session that streams it.
    /// Every refusal names the bad value; nothing is armed then.
    /// </summary>
    public CaptureSession StartCapture(CaptureRequest r)
    {
        bool drops = r.Drops ?? false;
        int port = -1;
        if (!string.IsNullOrWhiteSpace(r.Port)) port = PortId(r.Port) ?? throw NoPort(r.Port);
        else if (!drops) throw new InvalidRequestException("give the port to capture on (or drops: true for the pipeline's drops)");
        var direction = r.Direction?.ToLowerInvariant() switch
        {
            null or "both" => CaptureDirection.Both,
            "rx" or "in" => CaptureDirection.Rx,
            "tx" or "out" => CaptureDirection.Tx,
            _ => throw new InvalidRequestException($"direction '{r.Direction}' must be rx, tx or both"),
        };
        if (drops && r.Direction is not null && direction != CaptureDirection.Rx)
            throw new InvalidRequestException($"direction '{r.Direction}': dropped frames are frames received (leave direction out)");
        FlowMatch? filter = null;
        if (!string.IsNullOrWhiteSpace(r.Filter))
        {
            try { filter = RuleParser.ParseMatch(r.Filter, PortId).Match; }
            catch (RuleSyntaxException e) { throw Syntax("bad filter", e); }
        }
        long count = r.Count ?? 0;
        if (r.Count is not null && count is < 1 or > 1_000_000_000)
            throw new InvalidRequestException($"count {count} must be 1..1000000000");
        int snap = r.SnapLength ?? MaxSnapLength;
        if (snap is < 64 or > MaxSnapLength) throw new InvalidRequestException($"snapLength {snap} must be 64..{MaxSnapLength}");
        TimeSpan? duration = null;
        if (r.DurationSeconds is double s)
        {
            if (!(s > 0 && s <= 86400)) throw new InvalidRequestException($"durationSeconds {s.ToString(CultureInfo.InvariantCulture)} must be in (0, 86400]");
            duration = TimeSpan.FromSeconds(s);
        }
        var reason = DropReason.None;
        if (r.Reason is { Length: > 0 } name)
        {
            if (!drops) throw new InvalidRequestException($"reason '{name}' is for a capture of drops (drops: true)");
            if (!DropReasons.TryParse(name, out reason) || reason == DropReason.None)
                throw new InvalidRequestException($"reason '{name}' is not a drop reason (vsctl stats lists them, e.g. bad-ihl, rule-drop)");
        }
        // A slot keeps a whole frame up to the snap length, super-frames (64 KiB) included.
        int slotBytes = Math.Min(snap, PacketPool.LargeFrameSize);
        int slots = Math.Clamp(CaptureRingBytes / slotBytes, 64, 4096);
        var capture = new PacketCapture(port, drops ? CaptureDirection.Rx : direction, filter, count, snap, new CaptureRing(slots, slotBytes), drops, reason);
        try { Datapath.ArmCapture(capture); }
        catch (InvalidOperationException e) { throw new ConflictException(e.Message); }
        return new CaptureSession(Datapath, capture, duration, $"vswitchd {typeof(SwitchRuntime).Assembly.GetName().Version}");
    }

    /// <summary>The captures running now, with what they took and lost so far.</summary>
    public CaptureView[] ListCaptures()
    {
        var topo = Datapath.Topology;
        return (Datapath.Captures ?? []).Select(c => new CaptureView(c.Port < 0 ? null : topo.Port(c.Port)?.Name ?? $"#{c.Port}",
            c.Direction switch { CaptureDirection.Rx => "rx", CaptureDirection.Tx => "tx", _ => "both" },
            c.Filter?.Format(id => topo.Port(id)?.Name), c.Drops, c.Reason == DropReason.None ? null : c.Reason.Name(), c.Accepted, c.Overflow)).ToArray();
    }
}
