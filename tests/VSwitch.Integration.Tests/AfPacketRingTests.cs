using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports;
using Xunit;
using Xunit.Abstractions;

namespace VSwitch.Integration.Tests;

/// <summary>
/// An afpacket port's receive ring as configured per port (ringFrames × frameSize). A burst is made deterministic by not
/// reading the ring while it arrives (the port is opened directly, nobody polls it): the default 120 slots keep exactly
/// 120 frames and the kernel counts the rest as ring-full drops; 2048 slots of 2048 bytes keep all 600. Through vswitchd
/// the geometry is asserted where the kernel shows it (ss's ring_rx), in the port's view and vsctl port show, and
/// across vsctl restart, which hands the ring over, and a cold start from the state database.
/// </summary>
[Collection("netns")]
public sealed class AfPacketRingTests(ITestOutputHelper output)
{
    private const int Burst = 600;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    /// <summary>Sends <paramref name="count"/> marked frames of <paramref name="size"/> bytes from the namespace's veth end in one burst (scapy).</summary>
    private static void SendBurst(TestNetns ns, string dev, int count, int size)
    {
        string script = Path.Combine(Path.GetTempPath(), $"vsring-{Guid.NewGuid():N}.py");
        try
        {
            File.WriteAllText(script, "import logging\nlogging.getLogger('scapy').setLevel(logging.ERROR)\nfrom scapy.all import Ether, Raw, sendp\n"
                + $"f = Ether(src='02:00:00:5e:00:01', dst='ff:ff:ff:ff:ff:ff', type=0x88b5)/Raw(b'vsring' + b'x' * {size - 20})\n"
                + $"sendp([f] * {count}, iface='{dev}', verbose=False)\n");
            var r = ns.TryExec(TimeSpan.FromSeconds(60), "/usr/bin/python3", script);
            Assert.True(r.ExitCode == 0, r.Output);
        }
        finally { File.Delete(script); }
    }

    /// <summary>Empties the ring: (frames read, of them ours).</summary>
    private static (int All, int Marked) Drain(AfPacketPort port, PacketPool pool)
    {
        var batch = new PacketBatch();
        int all = 0, marked = 0;
        while (port.Receive(batch, pool) > 0)
        {
            foreach (var p in batch.AsSpan())
            {
                all++;
                if (p.Length >= 20 && p.Data[12] == 0x88 && p.Data[13] == 0xb5 && p.Data.Slice(14, 6).SequenceEqual("vsring"u8)) marked++;
            }
            batch.ReleaseAll();
        }
        return (all, marked);
    }

    private static TestVeth OffloadsOffVeth(TestNetns ns, string address)
    {
        var veth = new TestVeth(ns, address);
        // Small slots need the sender's segmentation off: a GSO super-frame would not fit (and be dropped, rx-truncated).
        ns.Exec("ethtool", "-K", veth.Inner, "tx", "off", "tso", "off", "gso", "off");
        return veth;
    }

    [RootFact]
    public void A_2048_slot_ring_holds_a_burst_that_the_default_ring_drops_counted()
    {
        using var ns = new TestNetns("vsrg-");
        using var veth = OffloadsOffVeth(ns, "10.81.0.2/24");
        var pool = new PacketPool(4096);

        // The default: 120 slots of 68 KiB. Nobody reads while the burst arrives, so the ring fills and stays full.
        using (var port = AfPacketPort.Open(new AfPacketOptions { Interface = veth.Outer }))
        {
            Assert.Equal((120, 68 * 1024), (port.RingFrameCount, port.RingFrameSize));
            SendBurst(ns, veth.Inner, Burst, 64);
            Wait.Until(() => port.RingDrops >= Burst - 120, Deadline, $"{Burst - 120} ring-full drops on the default ring");
            var (all, marked) = Drain(port, pool);
            output.WriteLine($"default ring: read {all} ({marked} of the burst), ring-full drops {port.RingDrops}");
            Assert.Equal(120, all); // exactly the ring: every slot full, the rest dropped by the kernel
            Assert.True(marked <= 120 && marked + port.RingDrops >= Burst, $"{marked} read + {port.RingDrops} dropped < {Burst} sent");
        }

        // 2048 slots of 2048 bytes (4 MiB, half the default's memory): the same burst, none lost.
        using (var port = AfPacketPort.Open(new AfPacketOptions { Interface = veth.Outer, RingFrameCount = 2048, RingFrameSize = 2048 }))
        {
            Assert.Equal((2048, 2048, 4L << 20), (port.RingFrameCount, port.RingFrameSize, port.RingBytes));
            SendBurst(ns, veth.Inner, Burst, 64);
            int marked = 0;
            Wait.Until(() => (marked += Drain(port, pool).Marked) >= Burst, Deadline, $"{Burst} frames read from the 2048-slot ring");
            Assert.Equal(Burst, marked);
            Assert.Equal(0, port.RingDrops);
            Assert.Equal(0, Volatile.Read(ref port.RxTruncated));
        }
        Assert.Equal(0, pool.InUse);
    }

    [RootFact]
    public void The_smallest_slot_takes_a_full_size_frame_and_a_larger_one_is_counted_truncated()
    {
        using var ns = new TestNetns("vsrg-");
        using var veth = OffloadsOffVeth(ns, "10.82.0.2/24");
        var pool = new PacketPool(256);
        using var port = AfPacketPort.Open(new AfPacketOptions { Interface = veth.Outer, RingFrameCount = 64, RingFrameSize = AfPacketOptions.MinRingFrameSize });
        Assert.Equal(1524, port.LargestFrame);

        SendBurst(ns, veth.Inner, 3, 1514); // full-size frames: whole
        int marked = 0;
        Wait.Until(() => (marked += Drain(port, pool).Marked) >= 3, Deadline, "3 full-size frames");
        Assert.Equal(0, Volatile.Read(ref port.RxTruncated));

        // A jumbo frame (the veth's MTU raised) does not fit the slot: dropped, counted, never half-delivered.
        ns.Exec("ip", "link", "set", veth.Inner, "mtu", "4000");
        Proc.Check("ip", "link", "set", veth.Outer, "mtu", "4000");
        SendBurst(ns, veth.Inner, 2, 3000);
        Wait.Until(() => { Drain(port, pool); return Volatile.Read(ref port.RxTruncated) >= 2; }, Deadline, "2 frames counted rx-truncated");
        Assert.Equal(2, Volatile.Read(ref port.RxTruncated));
        Assert.Equal(0, pool.InUse);
    }

    /// <summary>vswitchd's AF_PACKET rings as ss shows them (ring_rx(...frm_size:N,frm_nr:N...)), for its process.</summary>
    private static List<(int FrameSize, int Frames)> KernelRings(int pid)
    {
        var r = Proc.Run(TimeSpan.FromSeconds(10), "ss", "-0", "-e", "-n", "-p");
        var rings = new List<(int, int)>();
        bool ours = false;
        foreach (string line in r.StdOut.Split('\n'))
        {
            if (line.StartsWith("p_", StringComparison.Ordinal)) ours = line.Contains($"pid={pid},", StringComparison.Ordinal);
            var m = Regex.Match(line, @"ring_rx\(.*frm_size:(\d+),frm_nr:(\d+)");
            if (ours && m.Success) rings.Add((int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value)));
        }
        return rings;
    }

    private static void AssertRing(Vswitchd d, int pid, string port, int frames, int frameSize)
    {
        var f = d.Port(port)["features"]!;
        Assert.Equal(frames.ToString(), (string?)f["ring-frames"]);
        Assert.Equal(frameSize.ToString(), (string?)f["ring-frame-size"]);
        Assert.Equal($"above {frameSize - 76} bytes truncated, dropped (rx-truncated): the peer needs GSO/TSO off", (string?)f["large-frames"]);
        Assert.Equal(0, (long)d.Port(port)["details"]!["rx-ring-full-drops"]!);
        var rings = KernelRings(pid);
        Assert.Contains((frameSize, frames), rings);
        Assert.Contains((68 * 1024, 120), rings); // the other port kept the default
    }

    [RootFact]
    public void A_port_with_a_2048_slot_ring_shows_it_forwards_and_keeps_it_across_restart_and_a_cold_start()
    {
        using var a = new TestNetns("vsrg-");
        using var b = new TestNetns("vsrg-");
        using var va = OffloadsOffVeth(a, "10.83.0.2/24");
        using var vb = OffloadsOffVeth(b, "10.83.0.3/24");
        using var d = Vswitchd.Start("""{ "datapath": { "threads": 1 } }""");
        int? successor = null;
        try
        {
            var (status, body) = d.Send(HttpMethod.Post, "/v1/networks", new { name = "blue" });
            Assert.True(status == 201, body?.ToJsonString());
            // Bad values through vsctl and the API alike: refused with the value and the range, nothing opened.
            var bad = AttachTests.Vsctl(d, "port", "add", va.Outer, "--type", "afpacket", "--network", "blue", "--frame-size", "1000");
            Assert.NotEqual(0, bad.ExitCode);
            Assert.Contains("afpacket.frameSize: 1000 must be a multiple of 16, 1600..131072", bad.StdErr);
            (status, body) = d.Send(HttpMethod.Post, "/v1/ports", new { name = va.Outer, type = "afpacket", network = "blue", afpacket = new { ringFrames = 4 } });
            Assert.Equal(400, status);
            Assert.Contains("afpacket.ringFrames: 4 must be at least 8", body!.ToJsonString());

            var add = AttachTests.Vsctl(d, "port", "add", va.Outer, "--type", "afpacket", "--network", "blue", "--ring-frames", "2048", "--frame-size", "2048");
            Assert.True(add.ExitCode == 0, add.Output);
            (status, body) = d.Send(HttpMethod.Post, "/v1/ports", new { name = vb.Outer, type = "afpacket", network = "blue" });
            Assert.True(status == 201, body?.ToJsonString());
            AssertRing(d, d.Pid, va.Outer, 2048, 2048);

            var show = AttachTests.Vsctl(d, "port", "show", va.Outer);
            output.WriteLine(show.StdOut);
            Assert.True(show.ExitCode == 0, show.Output);
            Assert.Matches(@"ring-frames\s+2048", show.StdOut);
            Assert.Matches(@"ring-frame-size\s+2048", show.StdOut);
            Assert.Matches(@"rx-ring-full-drops\s+0", show.StdOut);
            Assert.Matches(@"rx-truncated\s+0", show.StdOut);

            // Full-size frames both ways through the small slots.
            a.Exec("ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "1472", "-M", "do", "10.83.0.3");

            var r = VsctlHarness.Vsctl("--socket", d.Socket, "--json", "restart");
            Assert.True(r.ExitCode == 0, r.ToString());
            successor = (int)JsonNode.Parse(r.Stdout)!["newPid"]!;
            Wait.Until(() => d.HasExited, TimeSpan.FromSeconds(20), "the old vswitchd to exit");
            Assert.Contains($"port {va.Outer}: took over the predecessor's afpacket descriptor", d.Log);
            // The successor reads the same ring (handed over with its geometry), and the stored port still asks for it.
            AssertRing(d, successor.Value, va.Outer, 2048, 2048);
            a.Exec("ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "1472", "-M", "do", "10.83.0.3");
            Assert.Equal(0, (long)d.Port(va.Outer)["details"]!["rx-truncated"]!);

            // A cold start from the state database opens the stored port with its stored ring.
            RestartTests.StopByPid(successor.Value);
            successor = null;
            using var cold = Vswitchd.StartIn(d.Dir, null);
            cold.KeepDir = true; // d removes the folder
            AssertRing(cold, cold.Pid, va.Outer, 2048, 2048);
            a.Exec("ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "1472", "-M", "do", "10.83.0.3");
        }
        finally
        {
            if (successor is int pid) RestartTests.StopByPid(pid);
        }
    }
}
