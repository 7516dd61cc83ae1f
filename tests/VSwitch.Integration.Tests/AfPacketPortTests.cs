using System.Diagnostics;
using System.Net;
using System.Text.Json;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports;
using VSwitch.Core.Ports.Linux;
using VSwitch.Core.Wire;
using Xunit;
using Xunit.Abstractions;

namespace VSwitch.Integration.Tests;

[Collection("netns")]
public class AfPacketPortTests(ITestOutputHelper output)
{
    private const ulong SwitchMac = 0x02_00_00_aa_bb_dd;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    [RootFact]
    public void Frames_flow_both_ways_and_own_transmits_are_not_read_back()
    {
        using var ns = new TestNetns();
        using var veth = new TestVeth(ns, "10.9.2.2/24");
        var pool = new PacketPool(256);
        using var port = AfPacketPort.Open(veth.Outer);
        Assert.Equal(NativeMethods.IfNameToIndex(veth.Outer), port.IfIndex);

        using var ping = ns.Start("ping", "-c1", "-W1", "10.9.2.1");
        try
        {
            // namespace → port
            var (mac, ip) = PortTestHelpers.WaitForArpRequest(port, pool, IPAddress.Parse("10.9.2.1"), Timeout);
            Assert.Equal(0x0A090202u, ip);
            // port → namespace
            Assert.Equal(1, PortTestHelpers.SendArpReply(port, pool, SwitchMac, IPAddress.Parse("10.9.2.1"), mac, ip));
            Wait.Until(() => PortTestHelpers.NeighbourHasMac(ns, "10.9.2.1", SwitchMac), Timeout,
                $"{MacAddress.Format(SwitchMac)} in the neighbour table of {ns.Name}");

            // Our own reply must not come back. A quiet window is the only way to see an absence.
            var batch = new PacketBatch();
            var sw = Stopwatch.StartNew();
            while (sw.ElapsedMilliseconds < 300)
            {
                port.Receive(batch, pool);
                foreach (var p in batch.AsSpan())
                    Assert.NotEqual(SwitchMac, MacAddress.Read(p.Data[6..]));
                batch.ReleaseAll();
                Thread.Sleep(10);
            }
        }
        finally { Proc.KillQuietly(ping); }
        Assert.Equal(1, port.TxFrames);
        Assert.Equal(0, pool.InUse);
    }

    [RootFact]
    public void Unknown_interface_throws_a_clear_error()
    {
        string name = Names.Random("vsnone");
        var ex = Assert.Throws<PortException>(() => AfPacketPort.Open(name));
        Assert.Contains(name, ex.Message);
    }

    /// <summary>
    /// Two namespaces on one subnet, each behind a veth whose offloads stay ON, joined by a test
    /// forwarding loop over two AfPacketPorts. A TCP transfer completes only if partial checksums
    /// are completed and GSO super-frames are segmented correctly.
    /// </summary>
    [RootFact]
    public void Iperf3_TCP_through_two_AfPacketPorts_with_offloads_on()
    {
        if (Proc.Run("sh", "-c", "command -v iperf3").ExitCode != 0)
            throw new InvalidOperationException("iperf3 is not installed (apt-get install iperf3)");
        using var nsA = new TestNetns();
        using var nsB = new TestNetns();
        using var vethA = new TestVeth(nsA, "10.9.1.1/24");
        using var vethB = new TestVeth(nsB, "10.9.1.2/24");
        output.WriteLine("offloads on " + vethA.Inner + ":\n" +
            nsA.TryExec(TimeSpan.FromSeconds(5), "ethtool", "-k", vethA.Inner).StdOut.Split('\n')
                .Where(l => l.Contains("tx-checksumming") || l.Contains("tcp-segmentation-offload")).Aggregate("", (a, l) => a + l + "\n"));

        using var a = AfPacketPort.Open(vethA.Outer);
        using var b = AfPacketPort.Open(vethB.Outer);
        var stop = new ForwardingLoop();
        Exception? loopError = null;
        var loop = new Thread(() =>
        {
            try { PortTestHelpers.Forward(a, b, stop, steadyAfter: 10_000); }
            catch (Exception e) { loopError = e; }
        }) { IsBackground = true, Name = "test-forwarder" };
        loop.Start();

        Process? server = null;
        try
        {
            server = nsB.Start("iperf3", "-s", "-1", "-B", "10.9.1.2");
            Wait.Until(() => nsB.TryExec(Timeout, "ss", "-ltn").StdOut.Contains("10.9.1.2:5201"), Timeout, "iperf3 -s to listen");
            var client = nsA.TryExec(TimeSpan.FromSeconds(20), "iperf3", "-c", "10.9.1.2", "-t", "3", "-J");
            output.WriteLine($"A: rx {a.RxFrames} gso {a.RxGsoFrames}->{a.RxGsoSegments} csum {a.RxChecksumsCompleted} unsupported {a.RxUnsupportedOffload} trunc {a.RxTruncated} tx {a.TxFrames} txdrop {a.TxDropped}");
            output.WriteLine($"B: rx {b.RxFrames} gso {b.RxGsoFrames}->{b.RxGsoSegments} csum {b.RxChecksumsCompleted} unsupported {b.RxUnsupportedOffload} trunc {b.RxTruncated} tx {b.TxFrames} txdrop {b.TxDropped}");
            Assert.True(client.ExitCode == 0, "iperf3 client failed: " + client.Output);
            using var json = JsonDocument.Parse(client.StdOut);
            var end = json.RootElement.GetProperty("end");
            long sent = end.GetProperty("sum_sent").GetProperty("bytes").GetInt64();
            long received = end.GetProperty("sum_received").GetProperty("bytes").GetInt64();
            double bps = end.GetProperty("sum_received").GetProperty("bits_per_second").GetDouble();
            output.WriteLine($"iperf3: sent {sent} received {received} bytes, {bps / 1e6:F0} Mbit/s");
            output.WriteLine($"iperf3: retransmits {end.GetProperty("sum_sent").GetProperty("retransmits").GetInt64()}");
            Assert.True(sent > 1_000_000, $"only {sent} bytes sent");
            // iperf3 3.12 stops the receiver's count when TEST_END arrives on the control connection,
            // so data still in flight at that moment is missing from sum_received (seen: 0.3 % at
            // 2 Gbit/s, 1.4 % at 3.3 Gbit/s in a CI-like run, which a 99 % bound here failed on).
            // The shared 95 % bound; exact equality is checked below with a transfer that counts to EOF.
            Iperf.AssertIntact(sent, received);

            // Exact bytes and content: known data, counted and hashed to EOF on the other side.
            Iperf.ExactTransfer(nsA, nsB, "10.9.1.2");
            // The offload path really ran: the sender's veth handed over GSO frames or partial checksums.
            Assert.True(a.RxGsoFrames + a.RxChecksumsCompleted > 0, "no offloaded frame was seen on the sender's side");
        }
        finally
        {
            stop.Stop = true;
            loop.Join(TimeSpan.FromSeconds(5));
            if (server is not null) { Proc.KillQuietly(server); server.Dispose(); }
        }
        Assert.Null(loopError);
        output.WriteLine($"forwarding loop allocated {stop.AllocatedBytes} bytes");
        Assert.Equal(0, stop.AllocatedBytes); // receive, segment, complete, transmit: no allocation
    }
}
