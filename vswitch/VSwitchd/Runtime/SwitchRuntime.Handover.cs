using VSwitch.Core;
using VSwitch.Core.Ports;
using VSwitch.Core.Ports.AfXdp;
using VSwitch.Core.Ports.Linux;
using VSwitch.Core.Topology;
using VSwitch.Overlay;
using VSwitchd.Config;
using VSwitchd.Runtime.Handover;

namespace VSwitchd.Runtime;

/// <summary>
/// The runtime's side of a hitless restart (<see cref="HandoverService"/> drives it): the predecessor lists its
/// ports' open descriptors, stops its datapath threads on request and exports what they learned; the successor
/// builds its ports over the received descriptors instead of creating devices (<see cref="Adopting"/>), imports
/// the learned state and starts its threads. The datapath objects know nothing of processes: they only gain
/// constructors over an existing fd (TapPort.Adopt, AfPacketPort.Adopt, AfXdpPort.Adopt, VxlanPort.Adopt).
/// </summary>
public sealed partial class SwitchRuntime
{
    /// <summary>Successor only: the descriptors received, by port name; AddPort and StartOverlay take from it.</summary>
    public TakeoverInventory? Adopting { get; set; }

    /// <summary>Predecessor only: set once a successor took over; this process then only closes its copies and exits.</summary>
    public int? SuccessorPid { get; private set; }

    /// <summary>Runs <paramref name="action"/> under the runtime's lock: no operator change can land meanwhile.</summary>
    public T Exclusive<T>(Func<T> action)
    {
        lock (_gate) return action();
    }

    /// <summary>
    /// Every port's open descriptors, for the offer; <paramref name="fds"/> receives them in the order the offer's indices use.
    /// <paramref name="afXdp"/>: the successor takes AF_XDP ports over (else they stay out, and it opens them afresh).
    /// </summary>
    public OfferedPort[] OpenPorts(List<int> fds, bool afXdp = true)
    {
        var offered = new List<OfferedPort>();
        foreach (var port in Datapath.Topology.Ports)
        {
            int at = fds.Count;
            switch (port.Io)
            {
                // A multiqueue TAP or an AF_PACKET fanout group: every queue's fd goes, queue 0 first (a queue whose fd
                // were closed would take the frames the kernel steered to it with it).
                case TapPort tap when tap.DeviceFd >= 0:
                    fds.Add(tap.DeviceFd);
                    fds.AddRange(tap.QueueFds());
                    offered.Add(new OfferedPort(port.Name, "tap", [.. Enumerable.Range(at, fds.Count - at)], tap.Offloads, tap.UsesIoUring, tap.Netns, Persistent: tap.Persistent));
                    break;
                case AfPacketPort af when af.SocketFd >= 0:
                    for (int q = 0; q < af.RxQueueCount; q++) fds.Add(af.Queue(q).SocketFd);
                    offered.Add(new OfferedPort(port.Name, "afpacket", [.. Enumerable.Range(at, fds.Count - at)], RingBytes: af.RingBytes, RingFrameSize: af.RingFrameSize, RingFrameCount: af.RingFrameCount));
                    break;
                case AfXdpPort x when afXdp && x.PollFd >= 0:
                    fds.AddRange(x.HandoverFds());
                    offered.Add(new OfferedPort(port.Name, "afxdp", [.. Enumerable.Range(at, fds.Count - at)], RingFrameSize: x.FrameSize, RingFrameCount: x.FrameCount)
                    {
                        XdpRingSize = x.RingSize, XdpQueue = x.QueueId, XdpNative = x.Mode.Native, XdpZeroCopy = x.Mode.ZeroCopy, XdpRefused = [.. x.Refused],
                    });
                    break;
                case VxlanPort vx:
                    var s = vx.SocketFds();
                    fds.AddRange(s);
                    offered.Add(new OfferedPort(port.Name, "vxlan", Enumerable.Range(at, s.Length).ToArray()));
                    break;
                default:
                    _log.LogWarning("port {Port} ({Io}) cannot be handed over: the successor creates it again", port.Name, port.Io);
                    break;
            }
        }
        return [.. offered];
    }

    /// <summary>
    /// Makes the datapath threads (their packet pools: tens of MB to allocate and touch) without starting them, so
    /// that a successor does it before the predecessor stops rather than in the gap.
    /// </summary>
    public void PrepareDatapath()
    {
        if (_threads.Count > 0) return;
        for (int i = 0; i < Options.Threads; i++) _threads.Add(new DatapathThread(Datapath, Options, i));
    }

    /// <summary>
    /// Stops the control timer (aging, down ports, rule timeouts) for a hand-over: its work takes the runtime's lock,
    /// which the hand-over holds, and would only pile up on the thread pool meanwhile.
    /// </summary>
    public void SuspendTimer()
    {
        _timer?.Dispose();
        _timer = null;
    }

    private void StartTimer() => _timer ??= new Timer(_ => Tick(), null, 250, 250);

    /// <summary>Stops the datapath threads (they read nothing from now on) and the control timer; the ports stay open.</summary>
    public void PauseDatapath()
    {
        SuspendTimer();
        foreach (var t in _threads) t.Stop();
        foreach (var t in _threads) t.Dispose();
        _threads.Clear();
        _running = false;
    }

    /// <summary>The hand-over failed after the pause: this process forwards again.</summary>
    public void ResumeDatapath()
    {
        if (_running) StartTimer();
        else Start();
    }

    /// <summary>What the stopped datapath learned, by names: the MAC table's learned entries, resolved neighbours, ring positions.</summary>
    public LearnedMessage ExportLearned()
    {
        long now = Environment.TickCount64;
        var topo = Datapath.Topology;
        var macs = new List<LearnedMac>();
        foreach (var e in Datapath.MacTable.Entries(now))
        {
            if (e.IsStatic || topo.Network(e.Network) is not { } net || topo.Port(e.Port) is not { } port) continue;
            bool v6 = VSwitch.Core.Flow.VtepRemote.IsIPv6(e.Remote);
            macs.Add(new LearnedMac(net.Name, e.Vlan, e.Mac, port.Name, e.AgeMs, v6 ? 0 : e.Remote)
            {
                Remote6 = v6 ? VSwitch.Core.Flow.VtepRemote.Format(e.Remote) : null,
            });
        }
        var neighbors = new List<LearnedNeighbor>();
        foreach (var n in Datapath.Neighbors.Entries())
            if (n.Usable && n.State != VSwitch.Core.Tables.NeighborState.Permanent && topo.Network(n.Network) is { } net)
                neighbors.Add(new LearnedNeighbor(net.Name, n.Address, n.Mac));
        var neighbors6 = new List<LearnedNeighbor6>();
        foreach (var n in Datapath.Neighbors6.Entries())
            if (n.Usable && n.State != VSwitch.Core.Tables.NeighborState.Permanent && topo.Network(n.Network) is { } net)
                neighbors6.Add(new LearnedNeighbor6(net.Name, VSwitch.Core.Wire.AddressFormat.IPv6(n.Address), n.Mac));
        var cursors = new Dictionary<string, int>();
        foreach (var port in topo.Ports)
            if (port.Io is AfPacketPort af)
                for (int q = 0; q < af.RxQueueCount; q++) cursors[RingCursorKey(port.Name, q)] = af.Queue(q).RingCursor;
        var xdpFree = new Dictionary<string, ulong[]>();
        foreach (var port in topo.Ports)
            if (port.Io is AfXdpPort x) xdpFree[port.Name] = x.TxFreeFrames();
        string? conntrack = null;
        int ctCount = 0;
        if (Datapath.ConntrackConfig.Track)
            conntrack = Convert.ToBase64String(Datapath.Conntrack.Export(now, MaxHandedOverConnections, out ctCount));
        return new LearnedMessage([.. macs], [.. neighbors], cursors, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())
        {
            Conntrack = conntrack, ConntrackEntrySize = VSwitch.Core.Tables.Conntrack.ConntrackTable.EntrySize, ConntrackCount = ctCount,
            Neighbors6 = [.. neighbors6],
            XdpTxFree = xdpFree,
        };
    }

    /// <summary>Connections a restart hands over (16 MB of entries); beyond, the rest are taken up mid-stream by their next packet.</summary>
    public const int MaxHandedOverConnections = 100_000;

    /// <summary>Loads what the predecessor learned, before this datapath starts; entries whose port or network is not here are skipped.</summary>
    public int ImportLearned(LearnedMessage learned)
    {
        long now = Environment.TickCount64;
        var topo = Datapath.Topology;
        int loaded = 0;
        foreach (var m in learned.Macs)
        {
            if (topo.NetworkByName(m.Network) is not { } net || topo.PortByName(m.Port) is not { } port) continue;
            long aging = (_networkConfigs.GetValueOrDefault(m.Network)?.MacAgingSeconds ?? 300) * 1000L;
            long left = Math.Max(1000, aging - m.AgeMs);
            uint remote = m.Remote;
            if (m.Remote6 is { } r6)
            {
                // This process's handle for the predecessor's IPv6 VTEP; an entry that cannot get one is learned again.
                if (!System.Net.IPAddress.TryParse(r6, out var ip6)) continue;
                try { remote = VSwitch.Core.Flow.VtepRemote.FromAddress(ip6); }
                catch (ArgumentException) { continue; }
            }
            // Learned as if now, with the time it had left: it ages out when it would have in the predecessor.
            if (Datapath.MacTable.Learn(net.Id, m.Vlan, m.Mac, port.Id, now, left, remote) is VSwitch.Core.Tables.LearnResult.Learned or VSwitch.Core.Tables.LearnResult.Refreshed or VSwitch.Core.Tables.LearnResult.Moved) loaded++;
        }
        foreach (var n in learned.Neighbors)
            if (topo.NetworkByName(n.Network) is { } net) Datapath.Neighbors.Confirm(net.Id, n.Address, n.Mac, now, create: true);
        // IPv6 neighbours come in STALE, as the kernel keeps what it was not told afresh: usable at once, confirmed on first use.
        foreach (var n in learned.Neighbors6 ?? [])
            if (topo.NetworkByName(n.Network) is { } net && System.Net.IPAddress.TryParse(n.Address, out var a6))
                Datapath.Neighbors6.OnSolicitation(net.Id, System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(a6.GetAddressBytes()), n.Mac, now);
        foreach (var port in topo.Ports)
            if (port.Io is AfPacketPort af)
                for (int q = 0; q < af.RxQueueCount; q++)
                    if (learned.RingCursors.TryGetValue(RingCursorKey(port.Name, q), out int cursor)) af.Queue(q).ResumeAt(cursor);
        foreach (var port in topo.Ports)
            if (port.Io is AfXdpPort x)
            {
                ulong[]? free = null;
                learned.XdpTxFree?.TryGetValue(port.Name, out free);
                string how = x.ResumeAfterHandover(free);
                if (how != "already running") _log.LogInformation("port {Port}: AF_XDP rings taken up where the predecessor stopped; {How}", port.Name, how);
            }
        if (learned.Conntrack is { Length: > 0 } ct)
        {
            if (learned.ConntrackEntrySize != VSwitch.Core.Tables.Conntrack.ConntrackTable.EntrySize)
                _log.LogWarning("restart: the predecessor's conntrack entries are {Theirs} bytes, ours {Ours}: its {Count} connections are not imported (they are taken up by their next packet)",
                    learned.ConntrackEntrySize, VSwitch.Core.Tables.Conntrack.ConntrackTable.EntrySize, learned.ConntrackCount);
            else
            {
                int imported = Datapath.Conntrack.Import(Convert.FromBase64String(ct), now);
                _log.LogInformation("restart: {Imported} of {Count} tracked connections taken over", imported, learned.ConntrackCount);
            }
        }
        return loaded;
    }

    /// <summary>A TAP or AF_PACKET port over a received descriptor, when the predecessor handed one over under this name.</summary>
    private IPort? TryAdopt(PortConfig p)
    {
        if (Adopting?.Take(p.Name) is not { } offered) return null;
        var (o, fds) = offered;
        IPort? io = o.Kind switch
        {
            "tap" => TapPort.Adopt(fds[0], p.Name, p.Netns ?? o.Netns, o.Offloads, o.IoUring, o.Persistent, fds[1..]),
            "afpacket" => AdoptAfPacket(p, o, fds),
            "afxdp" => AdoptAfXdp(p, o, fds),
            _ => throw new HandoverException($"port {p.Name}: a {o.Kind} descriptor was handed over for a {p.Type} port"),
        };
        if (io is null) return null;
        _log.LogInformation("port {Port}: took over the predecessor's {Kind} descriptor", p.Name, o.Kind);
        return io;
    }

    /// <summary>
    /// The predecessor's AF_XDP socket, UMEM and program, or null (descriptors closed) when they cannot be taken over:
    /// the port is then opened afresh as at any start, which the predecessor's program refuses (EBUSY) until it exits,
    /// so the port is kept down for that while; the restart itself goes on.
    /// </summary>
    private AfXdpPort? AdoptAfXdp(PortConfig p, OfferedPort o, int[] fds)
    {
        string device = p.Device ?? p.Name;
        try
        {
            if (p.Type != "afxdp") throw new PortException($"{device}: an afxdp port was handed over for a {p.Type} port", 22);
            var want = (p.Afxdp ?? new AfxdpConfig()).ToOptions(device);
            if (want.QueueId != o.XdpQueue || want.RingSize != o.XdpRingSize || want.FrameSize != o.RingFrameSize)
                throw new PortException($"{device}: the stored options (queue {want.QueueId}, ring {want.RingSize}, frame {want.FrameSize}) differ from the handed-over socket's (queue {o.XdpQueue}, ring {o.XdpRingSize}, frame {o.RingFrameSize})", 22);
            if (Environment.GetEnvironmentVariable("VSWITCHD_TEST_TAKEOVER_FAULT") == "afxdp-adopt")
                throw new PortException($"{device}: VSWITCHD_TEST_TAKEOVER_FAULT=afxdp-adopt: refusing the AF_XDP socket on purpose", 22);
            return AfXdpPort.Adopt(device, o.XdpQueue, fds, o.XdpRingSize, o.RingFrameSize, o.RingFrameCount,
                new XskMode(o.XdpNative, o.XdpZeroCopy), o.XdpRefused ?? []);
        }
        catch (PortException e)
        {
            foreach (int fd in fds) Tmds.Linux.LibC.close(fd);
            _log.LogWarning("port {Port}: cannot take over the predecessor's AF_XDP socket ({Error}); opening it afresh, down until the predecessor's program is gone", p.Name, e.Message);
            return null;
        }
    }

    private static AfPacketPort AdoptAfPacket(PortConfig p, OfferedPort o, int[] fds)
    {
        var af = AfPacketPort.Adopt(fds[0], p.Device ?? p.Name, o.RingBytes, o.RingFrameSize, o.RingFrameCount);
        try { af.AdoptQueues(fds.AsSpan(1)); }
        catch
        {
            af.Dispose();
            throw;
        }
        return af;
    }

    /// <summary>Queue 0's ring cursor is kept under the port's name (as before queues existed), queue q's under NAME#q.</summary>
    private static string RingCursorKey(string port, int queue) => queue == 0 ? port : $"{port}#{queue}";

    private VxlanPort? TryAdoptTunnel(OverlayConfig o, System.Net.IPAddress local)
    {
        if (Adopting?.Take(TunnelPortName) is not { } offered) return null;
        var io = VxlanPort.Adopt(TunnelPortName, local, (ushort)o.Port, offered.Fds, o.UdpGso);
        _log.LogInformation("VXLAN endpoint: took over the predecessor's sockets");
        return io;
    }

    /// <summary>Predecessor: a successor runs; from now on this process forwards nothing and only closes its copies.</summary>
    public void HandedOver(int successorPid) => SuccessorPid = successorPid;

    /// <summary>Closes this process's copies of the ports' descriptors: the devices stay, the successor holds them.</summary>
    private void CloseHandedOverPorts()
    {
        foreach (var p in Datapath.Topology.Ports)
        {
            try { p.Io.Dispose(); }
            catch (Exception e) when (e is not OutOfMemoryException) { _log.LogWarning("closing port {Port}: {Error}", p.Name, e.Message); }
        }
        _log.LogInformation("handed over to pid {Pid}: closed this process's copies of {Count} port(s)", SuccessorPid, Datapath.Topology.Ports.Count);
    }
}
