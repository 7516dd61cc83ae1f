using System.Net.Sockets;
using VSwitch.Core.Buffers;
using VSwitch.Overlay;

namespace VSwitch.Integration.Tests;

/// <summary>
/// Two VXLAN endpoints on loopback (127.0.0.1 and 127.0.0.2, one UDP port): no root, no namespace.
/// Frames of the same size to the same VTEP leave as one UDP GSO train and arrive whole and in order.
/// </summary>
public sealed class VxlanPortTests
{
    [Fact]
    public void Same_size_frames_to_one_vtep_go_as_one_train_and_arrive_intact_and_in_order()
    {
        int udp;
        using (var probe = new UdpClient(new System.Net.IPEndPoint(System.Net.IPAddress.Parse("127.0.0.2"), 0)))
            udp = ((System.Net.IPEndPoint)probe.Client.LocalEndPoint!).Port;
        using var a = VxlanPort.Open("vxa", 0x7F000001, (ushort)udp);
        using var b = VxlanPort.Open("vxb", 0x7F000002, (ushort)udp);
        var pool = new PacketPool(256) { Large = new PacketPool(32, PacketPool.LargeFrameSize) };

        // 10 frames of 100 bytes, an 80-byte one (a train's last segment may be shorter), then 100 again
        // (a new message: nothing may follow a short segment).
        int[] sizes = [.. Enumerable.Repeat(100, 10), 80, 100];
        var tx = new PacketBatch(64);
        for (int i = 0; i < sizes.Length; i++)
        {
            var p = pool.TryRent()!;
            var buf = p.ReceiveBuffer()[..sizes[i]];
            for (int j = 0; j < buf.Length; j++) buf[j] = (byte)(i * 7 + j);
            p.SetLength(sizes[i]);
            p.TunnelRemote = 0x7F000002;
            p.TunnelId = 42;
            tx.Add(p);
        }
        Assert.Equal(sizes.Length, a.Transmit(tx));
        Assert.Equal(1, a.TxTrains);
        Assert.Equal(11, a.TxTrainFrames);

        var rx = new PacketBatch(64);
        Wait.Until(() => { b.Receive(rx, pool); return rx.Count >= sizes.Length; }, TimeSpan.FromSeconds(5), "12 frames at the second VTEP");
        Assert.Equal(sizes.Length, rx.Count);
        for (int i = 0; i < sizes.Length; i++)
        {
            var p = rx[i];
            Assert.Equal(42u, p.TunnelId);
            Assert.Equal(0x7F000001u, p.TunnelRemote);
            Assert.Equal(sizes[i], p.Length);
            for (int j = 0; j < p.Length; j++) Assert.Equal((byte)(i * 7 + j), p.Data[j]);
        }
        rx.ReleaseAll();
        Assert.Equal(0, pool.InUse);
        Assert.Equal(0, pool.Large.InUse);
    }
}
