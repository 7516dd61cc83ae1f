using VSwitch.Core.Buffers;

namespace VSwitch.Core.Ports;

/// <summary>
/// A port in memory, for tests and benchmarks: frames queued with <see cref="Inject"/> are
/// received; transmitted frames are kept as byte arrays in <see cref="Sent"/>, or, with
/// <see cref="KeepSent"/> off, only counted (so a benchmark allocates nothing).
/// <para>
/// Like every port, <see cref="Transmit"/> may be called by several threads at once: the count is
/// added atomically and <see cref="Sent"/> is filled under a lock (it allocates anyway: tests only).
/// Frames may be injected from any thread while the owning thread receives.
/// </para>
/// </summary>
public sealed class MemoryPort(string name) : IPort
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<byte[]> _rx = new();
    private readonly Dictionary<byte[], (ushort Mss, byte Type)> _gso = new(ReferenceEqualityComparer.Instance);
    private byte[][]? _replay;
    private int _replayNext;

    public string Name { get; } = name;
    public int PollFd => -1;
    public bool KeepSent { get; set; } = true;
    public List<byte[]> Sent { get; } = [];
    private long _sentCount;
    public long SentCount => Interlocked.Read(ref _sentCount);

    public void Inject(byte[] frame) => _rx.Enqueue(frame);

    /// <summary>Queues a TCP super-frame with its MSS, received into the pool's large buffers as a TAP with offloads would hand it over.</summary>
    public void InjectGso(byte[] frame, ushort mss, bool ipv6 = false) =>
        Enqueue(frame, (mss, ipv6 ? Linux.VirtioNetHdr.GSO_TCPV6 : Linux.VirtioNetHdr.GSO_TCPV4));

    private bool _gsoQueued;

    private void Enqueue(byte[] frame, (ushort, byte) gso)
    {
        Volatile.Write(ref _gsoQueued, true);
        lock (_gso) _gso[frame] = gso;
        _rx.Enqueue(frame);
    }

    /// <summary>Whether Transmit takes super-frames whole (as a TAP with offloads does); off: the datapath segments them first.</summary>
    public bool AcceptsGso { get; set; }

    /// <summary>With <see cref="KeepSent"/>: the GSO size of each frame in <see cref="Sent"/> (0 for ordinary frames).</summary>
    public List<ushort> SentGsoSizes { get; } = [];

    /// <summary>Receives these frames over and over, without allocating (benchmarks).</summary>
    public void Replay(byte[][] frames)
    {
        _replay = frames;
        _replayNext = 0;
    }

    public int Receive(PacketBatch batch, PacketPool pool)
    {
        int n = 0;
        while (!batch.IsFull)
        {
            byte[] frame;
            if (_replay is not null) frame = _replay[_replayNext++ % _replay.Length];
            else if (!_rx.TryDequeue(out frame!)) break;
            (ushort Mss, byte Type) gso = default;
            bool isGso = false;
            if (Volatile.Read(ref _gsoQueued)) lock (_gso) isGso = _gso.Remove(frame, out gso);
            var p = isGso ? pool.Large?.TryRent() : pool.TryRent();
            if (p is null) break;
            if (isGso) { p.GsoSize = gso.Mss; p.GsoType = gso.Type; }
            var buf = p.ReceiveBuffer();
            int len = Math.Min(frame.Length, buf.Length);
            frame.AsSpan(0, len).CopyTo(buf);
            p.SetLength(len);
            batch.Add(p);
            n++;
        }
        return n;
    }

    /// <summary>Transmit refuses every frame (returns 0, as a device whose queue is full): for tests of transmit failures.</summary>
    public bool FailTransmits { get; set; }

    public int Transmit(PacketBatch batch)
    {
        int n = batch.Count;
        if (FailTransmits)
        {
            foreach (var p in batch.AsSpan()) p.Release();
            return 0;
        }
        if (KeepSent)
        {
            lock (Sent)
                foreach (var p in batch.AsSpan()) { Sent.Add(p.Data.ToArray()); SentGsoSizes.Add(p.GsoSize); }
        }
        foreach (var p in batch.AsSpan()) p.Release();
        Interlocked.Add(ref _sentCount, n);
        return n;
    }

    public void Dispose() { }
}
