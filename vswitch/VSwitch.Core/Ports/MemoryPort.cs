using VSwitch.Core.Buffers;

namespace VSwitch.Core.Ports;

/// <summary>
/// A port in memory, for tests and benchmarks: frames queued with <see cref="Inject"/> are
/// received; transmitted frames are kept as byte arrays in <see cref="Sent"/>, or, with
/// <see cref="KeepSent"/> off, only counted (so a benchmark allocates nothing).
/// </summary>
public sealed class MemoryPort(string name) : IPort
{
    private readonly Queue<byte[]> _rx = new();
    private byte[][]? _replay;
    private int _replayNext;

    public string Name { get; } = name;
    public int PollFd => -1;
    public bool KeepSent { get; set; } = true;
    public List<byte[]> Sent { get; } = [];
    public long SentCount { get; private set; }

    public void Inject(byte[] frame) => _rx.Enqueue(frame);

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
            var p = pool.TryRent();
            if (p is null) break;
            var buf = p.ReceiveBuffer();
            int len = Math.Min(frame.Length, buf.Length);
            frame.AsSpan(0, len).CopyTo(buf);
            p.SetLength(len);
            batch.Add(p);
            n++;
        }
        return n;
    }

    public int Transmit(PacketBatch batch)
    {
        int n = batch.Count;
        foreach (var p in batch.AsSpan())
        {
            if (KeepSent) Sent.Add(p.Data.ToArray());
            p.Release();
        }
        SentCount += n;
        return n;
    }

    public void Dispose() { }
}
