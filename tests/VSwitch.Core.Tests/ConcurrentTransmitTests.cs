using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports;
using VSwitch.Overlay;

namespace VSwitch.Core.Tests;

/// <summary>
/// IPort.Transmit may be called by every datapath thread at once (datapath.threads above 1): two
/// real threads send on one port object at the same time, each frame carrying its sender, its
/// sequence number and a checksum of itself, and every frame must come out whole, exactly once.
/// Ports that need no root: MemoryPort, and VxlanPort on loopback (TAP and AF_PACKET: the
/// integration tests' MultiThreadDatapathTests).
/// </summary>
public class ConcurrentTransmitTests
{
    private const int Senders = 2;

    /// <summary>A frame of sender <paramref name="sender"/>, number <paramref name="seq"/>: Ethernet, then sender, seq, filler, FNV-1a of all before it.</summary>
    internal static int WriteFrame(Span<byte> buf, int sender, int seq, int maxLength)
    {
        int len = 64 + (int)((uint)(seq * 37 + sender * 101) % (uint)(maxLength - 64));
        var f = buf[..len];
        f[..6].Fill(0x02);
        f[6..12].Fill((byte)(0x10 + sender));
        BinaryPrimitives.WriteUInt16BigEndian(f[12..], 0x88B5);
        f[14] = (byte)sender;
        BinaryPrimitives.WriteInt32BigEndian(f[15..], seq);
        for (int i = 19; i < len - 4; i++) f[i] = (byte)(seq * 7 + i * 13 + sender);
        BinaryPrimitives.WriteUInt32BigEndian(f[(len - 4)..], Fnv(f[..(len - 4)]));
        return len;
    }

    /// <summary>(sender, seq) of a whole frame, or null when its checksum does not match (a corrupted frame).</summary>
    internal static (int Sender, int Seq)? ReadFrame(ReadOnlySpan<byte> f)
    {
        if (f.Length < 64 || BinaryPrimitives.ReadUInt32BigEndian(f[(f.Length - 4)..]) != Fnv(f[..(f.Length - 4)])) return null;
        return (f[14], BinaryPrimitives.ReadInt32BigEndian(f[15..]));
    }

    private static uint Fnv(ReadOnlySpan<byte> s)
    {
        uint h = 2166136261;
        foreach (byte b in s) h = (h ^ b) * 16777619;
        return h;
    }

    /// <summary>Runs <see cref="Senders"/> threads that each send <paramref name="frames"/> frames in batches of <paramref name="batchSize"/>; returns what Transmit said it sent.</summary>
    private static long SendConcurrently(IPort port, int frames, int batchSize, int maxLength, Action<Packet>? prepare = null, Func<long, bool>? mayGo = null)
    {
        long sent = 0;
        using var start = new Barrier(Senders);
        var errors = new List<Exception>();
        var threads = new Thread[Senders];
        for (int t = 0; t < Senders; t++)
        {
            int sender = t;
            threads[t] = new Thread(() =>
            {
                try
                {
                    var pool = new PacketPool(256);
                    var batch = new PacketBatch(batchSize);
                    start.SignalAndWait();
                    for (int seq = 0; seq < frames;)
                    {
                        var wait = System.Diagnostics.Stopwatch.StartNew();
                        while (mayGo is not null && !mayGo(Interlocked.Read(ref sent)))
                        {
                            if (wait.Elapsed > TimeSpan.FromSeconds(10)) throw new TimeoutException("the receiver fell behind for 10 s");
                            Thread.Yield();
                        }
                        for (int i = 0; i < batchSize && seq < frames; i++, seq++)
                        {
                            var p = pool.TryRent()!;
                            p.SetLength(WriteFrame(p.ReceiveBuffer(), sender, seq, maxLength));
                            prepare?.Invoke(p);
                            batch.Add(p);
                        }
                        Interlocked.Add(ref sent, port.Transmit(batch));
                        batch.Clear(); // as the output stage does: the packets are the port's now
                    }
                    Assert.Equal(pool.Capacity, pool.Available); // Transmit gave every buffer back
                }
                catch (Exception e) { lock (errors) errors.Add(e); }
            }) { IsBackground = true, Name = $"sender{t}" };
            threads[t].Start();
        }
        foreach (var th in threads) Assert.True(th.Join(TimeSpan.FromSeconds(60)), "a sender did not finish within 60 s");
        Assert.Empty(errors);
        return sent;
    }

    /// <summary>Checks that <paramref name="received"/> holds every frame of every sender exactly once, none corrupted.</summary>
    private static void AssertExactlyOnce(IEnumerable<byte[]> received, int frames)
    {
        var seen = new bool[Senders, frames];
        int corrupted = 0, duplicates = 0, count = 0;
        foreach (var f in received)
        {
            count++;
            if (ReadFrame(f) is not var (s, q) || s >= Senders || (uint)q >= (uint)frames) { corrupted++; continue; }
            if (seen[s, q]) duplicates++;
            seen[s, q] = true;
        }
        int missing = 0;
        for (int s = 0; s < Senders; s++)
            for (int q = 0; q < frames; q++)
                if (!seen[s, q]) missing++;
        Assert.True(corrupted == 0 && duplicates == 0 && missing == 0 && count == Senders * frames,
            $"{count} frames received of {Senders * frames}: {corrupted} corrupted, {duplicates} duplicated, {missing} missing");
    }

    [Fact]
    public void Two_threads_transmitting_on_one_MemoryPort_lose_and_corrupt_nothing()
    {
        const int frames = 20_000;
        var port = new MemoryPort("m") { KeepSent = true };
        long sent = SendConcurrently(port, frames, batchSize: 32, maxLength: 1500);
        Assert.Equal(Senders * frames, sent);
        Assert.Equal(Senders * frames, port.SentCount);
        AssertExactlyOnce(port.Sent, frames);
    }

    [Fact]
    public void Two_threads_transmitting_on_one_VxlanPort_send_every_frame_whole_once()
    {
        const int frames = 4_000;
        // The receiving "remote VTEP": a plain UDP socket on 127.0.0.2 (all of 127/8 is local, no root needed).
        using var rx = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        rx.ReceiveBufferSize = 4 << 20;
        rx.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
        ushort udpPort = (ushort)((IPEndPoint)rx.LocalEndPoint!).Port;
        using var port = VxlanPort.Open("vxt", 0x7F000001, udpPort);
        const uint vni = 4242;

        var received = new List<byte[]>();
        long receivedCount = 0, badHeaders = 0;
        using var stop = new CancellationTokenSource();
        var reader = new Thread(() =>
        {
            var buf = new byte[70_000];
            rx.ReceiveTimeout = 200;
            while (!stop.IsCancellationRequested)
            {
                int n;
                try { n = rx.Receive(buf); }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut) { continue; }
                // VXLAN header (flags with I set, VNI) in front of the inner frame.
                if (n < 8 || buf[0] != 0x08 || BinaryPrimitives.ReadUInt32BigEndian(buf.AsSpan(4)) >> 8 != vni) Interlocked.Increment(ref badHeaders);
                else lock (received) received.Add(buf.AsSpan(8, n - 8).ToArray());
                Interlocked.Increment(ref receivedCount);
            }
        }) { IsBackground = true, Name = "vtep-reader" };
        reader.Start();
        try
        {
            // A plain UDP socket's buffer is small without root (rmem_max): both senders go on only
            // while at most 64 datagrams are in flight, so the kernel never drops one and the count
            // can be exact. They still call Transmit at the same time (both wait on the same condition).
            long sent = SendConcurrently(port, frames, batchSize: 16, maxLength: 1000,
                prepare: p => { p.TunnelRemote = 0x7F000002; p.TunnelId = vni; },
                mayGo: s => Interlocked.Read(ref receivedCount) >= s - 32);
            Assert.Equal(Senders * frames, sent);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            // A duplicated frame means another is missing (the count of datagrams is what was sent).
            while (Interlocked.Read(ref receivedCount) < sent && DateTime.UtcNow < deadline) Thread.Sleep(5);
        }
        finally
        {
            stop.Cancel();
            reader.Join(TimeSpan.FromSeconds(5));
        }
        Assert.Equal(0, Interlocked.Read(ref badHeaders));
        Assert.Equal(Senders * frames, port.TxPackets);
        Assert.Equal(0, port.TxDropped);
        lock (received) AssertExactlyOnce(received, frames);
    }
}
