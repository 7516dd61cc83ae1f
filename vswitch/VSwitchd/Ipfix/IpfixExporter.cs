using System.Net;
using System.Net.Sockets;
using VSwitch.Api;
using VSwitch.Core;
using VSwitch.Core.Flow;
using VSwitch.Core.Wire;

namespace VSwitchd.Ipfix;

/// <summary>The exporter's settings, checked.</summary>
public sealed record IpfixSettings(string Collector, IPEndPoint Endpoint, int Sampling, int ActiveTimeoutSeconds, int IdleTimeoutSeconds, uint DomainId);

/// <summary>
/// Exports the datapath's flows as IPFIX over UDP, from the control plane: once a second it reads every thread's flow
/// cache (as `vsctl flows` does; the datapath does nothing more for it) and sends, per IP flow, the packets and octets
/// since its last record when the flow has been idle for the idle timeout, every active timeout while it lasts, and when
/// it leaves the cache. Templates go first and again every <see cref="TemplateRefreshSeconds"/> (UDP loses them; a
/// collector that restarts needs them). With sampling N, one flow in N is exported (chosen by its key's hash), whole.
/// </summary>
public sealed class IpfixExporter : IDisposable
{
    public const int TemplateRefreshSeconds = 30;
    private const int EthernetHeader = 14;

    private readonly Datapath _dp;
    private readonly Socket _socket;
    private readonly Timer _timer;
    private readonly object _gate = new();
    private readonly Dictionary<FlowEntry, FlowState> _flows = new(ReferenceEqualityComparer.Instance);
    private readonly byte[] _message = new byte[IpfixMessage.MaxMessage + 256];
    private readonly List<FlowRecord> _v4 = [], _v6 = [];
    private long? _lastTemplatesMs; // null: never sent
    private uint _sequence;
    private long _messages, _records, _templates, _errors;
    private string? _lastError;
    private bool _disposed;

    private sealed class FlowState
    {
        public long StartMs, ExportedPackets, ExportedBytes, SeenPackets, SeenBytes, SeenLastUsedMs, LastExportTick;
        public FlowKey Key;
        public uint Egress;
    }

    public IpfixExporter(Datapath dp, IpfixSettings settings)
    {
        _dp = dp;
        Settings = settings;
        _socket = new Socket(settings.Endpoint.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        _socket.Connect(settings.Endpoint);
        _timer = new Timer(_ => Tick(), null, TimeSpan.Zero, TimeSpan.FromSeconds(1));
    }

    public IpfixSettings Settings { get; }

    public IpfixView View()
    {
        lock (_gate)
            return new IpfixView(true, Settings.Collector, Settings.Sampling, Settings.ActiveTimeoutSeconds, Settings.IdleTimeoutSeconds, Settings.DomainId,
                TemplateRefreshSeconds, _messages, _records, _templates, _flows.Count, _errors, _lastError);
    }

    /// <summary>One pass over the flow caches (the timer's, or a test's).</summary>
    public void Tick()
    {
        lock (_gate)
        {
            if (_disposed) return;
            try { Export(Environment.TickCount64, forced: false); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                _errors++;
                _lastError = e.Message;
            }
        }
    }

    private void Export(long tick, bool forced)
    {
        long epochNow = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        long ToEpoch(long t) => epochNow - (tick - t);
        long activeMs = Settings.ActiveTimeoutSeconds * 1000L, idleMs = Settings.IdleTimeoutSeconds * 1000L;
        var seen = new HashSet<FlowEntry>(ReferenceEqualityComparer.Instance);
        foreach (var ctx in _dp.Contexts)
            foreach (var e in ctx.FlowCache.Entries())
            {
                var key = e.Key;
                if (!key.IsIPv4 && !key.IsIPv6) continue;
                if (Settings.Sampling > 1 && key.Hash64() % (ulong)Settings.Sampling != 0) continue;
                seen.Add(e);
                if (!_flows.TryGetValue(e, out var s))
                    _flows[e] = s = new FlowState { StartMs = ToEpoch(e.CreatedMs), Key = key, LastExportTick = tick, Egress = Egress(e) };
                s.SeenPackets = Volatile.Read(ref e.Packets);
                s.SeenBytes = Volatile.Read(ref e.Bytes);
                s.SeenLastUsedMs = Volatile.Read(ref e.LastUsedMs);
                bool idle = tick - s.SeenLastUsedMs >= idleMs, active = tick - s.LastExportTick >= activeMs;
                if ((forced || idle || active) && s.SeenPackets > s.ExportedPackets)
                    Emit(s, forced ? IpfixMessage.ForcedEnd : idle ? IpfixMessage.IdleTimeout : IpfixMessage.ActiveTimeout, ToEpoch(s.SeenLastUsedMs), tick);
            }
        // Flows that left the caches (expired, evicted, revalidated): what was seen of them last goes out now.
        List<FlowEntry>? gone = null;
        foreach (var (e, s) in _flows)
        {
            if (seen.Contains(e)) continue;
            if (s.SeenPackets > s.ExportedPackets) Emit(s, IpfixMessage.IdleTimeout, ToEpoch(s.SeenLastUsedMs), tick);
            (gone ??= []).Add(e);
        }
        if (gone is not null) foreach (var e in gone) _flows.Remove(e);
        Flush(tick, epochNow);
    }

    private static uint Egress(FlowEntry e)
    {
        foreach (var a in e.Actions)
            if (a.Kind == ActionKind.Output) return (uint)a.Port;
        return 0;
    }

    private void Emit(FlowState s, byte reason, long endMs, long tick)
    {
        var k = s.Key;
        long packets = s.SeenPackets - s.ExportedPackets, bytes = s.SeenBytes - s.ExportedBytes;
        bool icmp = k.NwProto is IpProtocols.Icmp or IpProtocols.IcmpV6;
        var r = new FlowRecord
        {
            IPv6 = k.IsIPv6,
            Source = k.NwSrc,
            Destination = k.NwDst,
            SourcePort = icmp ? (ushort)0 : k.TpSrc,
            DestinationPort = icmp ? (ushort)(k.TpSrc << 8 | k.TpDst & 0xFF) : k.TpDst,
            Protocol = k.NwProto,
            TcpFlags = k.NwProto == IpProtocols.Tcp ? k.TcpFlags : (ushort)0,
            Ingress = k.InPort,
            Egress = s.Egress,
            Vlan = k.VlanId,
            Layer2SegmentId = k.TunId != 0 ? 0x01UL << 56 | k.TunId : 0,
            Packets = packets,
            Octets = Math.Max(0, bytes - packets * EthernetHeader),
            StartMs = s.StartMs,
            EndMs = Math.Max(endMs, s.StartMs),
            EndReason = reason,
        };
        (r.IPv6 ? _v6 : _v4).Add(r);
        s.ExportedPackets = s.SeenPackets;
        s.ExportedBytes = s.SeenBytes;
        s.LastExportTick = tick;
        s.StartMs = Math.Max(endMs, s.StartMs); // the next record of this flow starts where this one ended
    }

    /// <summary>Sends the templates when due, then the records gathered, as many per message as fit.</summary>
    private void Flush(long tick, long epochNow)
    {
        uint seconds = (uint)(epochNow / 1000);
        if (_lastTemplatesMs is not long last || tick - last >= TemplateRefreshSeconds * 1000L)
        {
            int len = IpfixMessage.WriteTemplates(_message.AsSpan(16));
            Send(16 + len, seconds);
            _lastTemplatesMs = tick;
            _templates++;
        }
        foreach (bool v6 in new[] { false, true })
        {
            var list = v6 ? _v6 : _v4;
            int perMessage = (IpfixMessage.MaxMessage - 16 - 4) / IpfixMessage.RecordLength(v6);
            for (int i = 0; i < list.Count; i += perMessage)
            {
                int n = Math.Min(perMessage, list.Count - i);
                int len = IpfixMessage.WriteDataSet(_message.AsSpan(16), System.Runtime.InteropServices.CollectionsMarshal.AsSpan(list).Slice(i, n), v6);
                Send(16 + len, seconds);
                _sequence += (uint)n; // RFC 7011: data records sent before this message, so counted after it
                _records += n;
            }
            list.Clear();
        }
    }

    private void Send(int length, uint seconds)
    {
        IpfixMessage.WriteHeader(_message, length, seconds, _sequence, Settings.DomainId);
        try
        {
            _socket.Send(_message.AsSpan(0, length));
            _messages++;
        }
        catch (SocketException e)
        {
            // A collector that is not listening yet answers ICMP port unreachable: counted, and the next tick tries again.
            _errors++;
            _lastError = e.Message;
        }
    }

    /// <summary>Stops: what the flows counted since their last record goes out with end reason "forced end".</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _timer.Dispose();
            try { Export(Environment.TickCount64, forced: true); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
            _disposed = true;
            _socket.Dispose();
        }
    }
}
