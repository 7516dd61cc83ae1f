using VSwitch.Core.Buffers;
using VSwitch.Core.Ports;

namespace VSwitch.Core.Tests;

/// <summary>The hot path must not allocate per packet: steady state classify + bridge + output allocates 0 bytes.</summary>
public class ZeroAllocationTests
{
    [Fact]
    public void Steady_state_pipeline_allocates_nothing()
    {
        var dp = new Datapath();
        dp.AddNetwork("n1");
        var ports = new MemoryPort[4];
        var ids = new int[4];
        for (int i = 0; i < 4; i++)
        {
            ports[i] = new MemoryPort("p" + i) { KeepSent = false };
            ids[i] = dp.AddPort(ports[i], "n1").Id;
        }
        // Port i sends to port (i+1)%4: known unicast once learned, plus some broadcast floods.
        for (int i = 0; i < 4; i++)
        {
            var frames = new byte[32][];
            for (int j = 0; j < 32; j++)
                frames[j] = j % 8 == 0
                    ? TestFrames.Eth(0xFFFF_FFFF_FFFFUL, TestFrames.Mac(i))
                    : TestFrames.Eth(TestFrames.Mac((i + 1) % 4), TestFrames.Mac(i), payload: 46 + j);
            ports[i].Replay(frames);
        }
        var pool = new PacketPool(512);
        var ctx = dp.CreateContext(pool);
        var batch = new PacketBatch(32);

        void Run(int rounds)
        {
            for (int r = 0; r < rounds; r++)
                for (int i = 0; i < 4; i++)
                {
                    ports[i].Receive(batch, pool);
                    Datapath.CountReceive(batch, ctx, ids[i]);
                    dp.ProcessBatch(batch, ctx, 1000 + r);
                }
        }

        Run(100); // warm up: learn, JIT, first tx queues
        var m = SteadyStateAllocations.Measure(Run, 2000);
        SteadyStateAllocations.AssertNone(m);
        Assert.Equal(0, pool.InUse);
        Assert.True(ports[1].SentCount > m.RoundsRun * 28);
    }
}

/// <summary>The routed path (LPM, neighbour, rewrite, TTL) and isolation drops allocate nothing once their flows are cached.</summary>
public class RoutedZeroAllocationTests
{
    [Fact]
    public void Steady_state_routing_allocates_nothing()
    {
        var dp = new Datapath();
        ulong r1 = dp.AddNetwork("n1", gateway: 0x0A010001, prefixLength: 24).Router!.Mac;
        dp.AddNetwork("n2", gateway: 0x0A020001, prefixLength: 24);
        dp.AddNetwork("n3", gateway: 0x0A030001, prefixLength: 24); // isolated from n1
        dp.ConnectNetworks("n1", "n2");
        var a = new MemoryPort("a") { KeepSent = false };
        var b = new MemoryPort("b") { KeepSent = false };
        int ia = dp.AddPort(a, "n1").Id;
        dp.AddPort(b, "n2");
        ulong macB = TestFrames.Mac(0xB);
        dp.Neighbors.AddStatic(2, 0x0A020002, macB);
        dp.MacTable.AddStatic(2, 0, macB, dp.Topology.PortByName("b")!.Id);
        var frames = new byte[32][];
        for (int i = 0; i < 32; i++)
        {
            var k = new VSwitch.Core.Flow.FlowKey
            {
                // One frame in 8 goes to isolated n3: a cached drop (network-isolated).
                DlSrc = TestFrames.Mac(0xA), DlDst = r1, DlType = VSwitch.Core.Wire.EtherTypes.IPv4, NwSrc = 0x0A010002,
                NwDst = i % 8 == 7 ? 0x0A030002u : 0x0A020002u,
                NwTtl = 64, NwProto = VSwitch.Core.Wire.IpProtocols.Udp, TpSrc = (ushort)(1000 + i % 4), TpDst = 53,
            };
            frames[i] = Pipeline.FrameBuilder.FromKey(k);
        }
        a.Replay(frames);
        var pool = new PacketPool(512);
        var ctx = dp.CreateContext(pool);
        var batch = new PacketBatch(32);
        void Run(int rounds)
        {
            for (int r = 0; r < rounds; r++)
            {
                a.Receive(batch, pool);
                Datapath.CountReceive(batch, ctx, ia);
                dp.ProcessBatch(batch, ctx, 1000 + r);
            }
        }
        Run(100);
        var m = SteadyStateAllocations.Measure(Run, 2000);
        SteadyStateAllocations.AssertNone(m);
        Assert.True(b.SentCount >= m.RoundsRun * 28);
        Assert.True(dp.ReadDropCounters()[(int)VSwitch.Core.Flow.DropReason.NetworkIsolated] >= m.RoundsRun * 4);
        Assert.Equal(0, pool.InUse);
    }
}

/// <summary>Super-frames: passed whole, segmented in software on egress, and joined again by GRO, all without allocating.</summary>
public class GsoZeroAllocationTests
{
    [Fact]
    public void Super_frames_whole_segmented_and_coalesced_allocate_nothing()
    {
        var dp = new Datapath();
        dp.AddNetwork("n");
        var a = new MemoryPort("a") { AcceptsGso = true, KeepSent = false };
        var b = new MemoryPort("b") { AcceptsGso = false, KeepSent = false };
        var c = new MemoryPort("c") { AcceptsGso = true, KeepSent = false };
        int ia = dp.AddPort(a, "n").Id, ib = dp.AddPort(b, "n").Id, ic = dp.AddPort(c, "n").Id;
        var pool = new PacketPool(512) { Large = new PacketPool(8, PacketPool.LargeFrameSize) };
        var ctx = dp.CreateContext(pool);
        var batch = new PacketBatch(32);

        // b is 02:..:02, c is 02:..:03: learn them from one small frame each.
        var toB = OffloadTests.TcpV4Frame(20000, 0x10);
        var toC = OffloadTests.TcpV4Frame(20000, 0x10);
        toC[5] = 0x03;
        foreach (var (port, id, mac) in new[] { (b, ib, (byte)2), (c, ic, (byte)3) })
        {
            var f = OffloadTests.TcpV4Frame(10, 0x10);
            f.AsSpan(0, 6).CopyTo(f.AsSpan(6, 6));
            f[5] = 0x01; f[11] = mac;
            port.Inject(f);
            port.Receive(batch, pool);
            Datapath.CountReceive(batch, ctx, id);
            dp.ProcessBatch(batch, ctx, 0);
        }
        var segs = new byte[14][];
        Assert.True(Ports.Offload.TcpSegmenter.TryParse(toB, 1448, out var g));
        for (int i = 0; i < g.SegmentCount; i++)
        {
            var buf = new byte[2048];
            segs[i] = buf[..Ports.Offload.TcpSegmenter.WriteSegment(toB, g, i, buf)];
        }
        var gro = new Ports.Offload.TcpCoalescer();
        var superFrames = new[] { toB, toC };
        long b0 = b.SentCount, c0 = c.SentCount; // the learning frames flooded to each other

        void Run(int rounds)
        {
            for (int r = 0; r < rounds; r++)
            {
                foreach (var frame in superFrames)
                {
                    var p = pool.Large!.TryRent()!;
                    p.CopyFrom(frame);
                    p.GsoSize = 1448;
                    p.GsoType = Ports.Linux.VirtioNetHdr.GSO_TCPV4;
                    batch.Add(p);
                }
                Datapath.CountReceive(batch, ctx, ia);
                dp.ProcessBatch(batch, ctx, 1 + r);

                foreach (var s in segs)
                {
                    var p = pool.TryRent()!;
                    p.CopyFrom(s);
                    batch.Add(p);
                }
                gro.Coalesce(batch, 0, pool);
                batch.ReleaseAll();
            }
        }

        Run(50);
        var m = SteadyStateAllocations.Measure(Run, 500);
        SteadyStateAllocations.AssertNone(m);
        int rounds = 50 + m.RoundsRun;
        Assert.Equal(0, pool.InUse);
        Assert.Equal(0, pool.Large!.InUse);
        Assert.Equal(rounds * 14, b.SentCount - b0);   // segmented: 14 frames per super-frame
        Assert.Equal(rounds, c.SentCount - c0);        // whole
        Assert.Equal(rounds, gro.SuperFrames);
    }
}

/// <summary>The port-security stage allocates nothing: allowed frames (UDP, ARP, ND) and refused ones (spoofed MAC, IP, ARP, ND, invalid source MAC).</summary>
public class PortSecurityZeroAllocationTests
{
    [Fact]
    public void Secured_ports_check_every_frame_without_allocating()
    {
        var dp = new Datapath();
        dp.AddNetwork("n");
        var a = new MemoryPort("a") { KeepSent = false };
        var b = new MemoryPort("b") { KeepSent = false };
        int ia = dp.AddPort(a, "n").Id, ib = dp.AddPort(b, "n").Id;
        ulong macA = TestFrames.Mac(0xA), macB = TestFrames.Mac(0xB);
        const uint ipA = 0x0A000002, ipB = 0x0A000003;
        dp.SetPortSecurity("a", new Topology.PortSecurity(macA, [ipA]), macA, pinMac: true);
        dp.SetPortSecurity("b", new Topology.PortSecurity(macB, [ipB]), macB, pinMac: true);
        UInt128 llA = Topology.PortSecurity.LinkLocal(macA), llB = Topology.PortSecurity.LinkLocal(macB), mcast = (UInt128)0xFF02 << 112 | 1;
        var good = new List<byte[]>
        {
            PortSecurityTests.Udp(macB, macA, ipA, ipB),
            PortSecurityTests.Arp(macA, macA, ipA, ipB),
            PortSecurityTests.Nd(Wire.IcmpV6Header.NeighborSolicitation, macA, llA, mcast, llB, macA),
            PortSecurityTests.Nd(Wire.IcmpV6Header.NeighborAdvertisement, macA, llA, mcast, llA, macA),
        };
        var bad = new List<byte[]>
        {
            PortSecurityTests.Udp(macB, macB, ipB, ipB),
            PortSecurityTests.Udp(macB, macA, ipB, ipB),
            PortSecurityTests.Arp(macA, macA, ipB, ipB),
            PortSecurityTests.Nd(Wire.IcmpV6Header.NeighborAdvertisement, macA, llA, mcast, llB, macA),
            PortSecurityTests.Udp(macB, 0, ipA, ipB),
        };
        var frames = new byte[32][];
        for (int i = 0; i < 32; i++) frames[i] = i % 4 == 3 ? bad[i / 4 % bad.Count] : good[i % good.Count];
        a.Replay(frames);
        b.Replay([.. Enumerable.Range(0, 32).Select(_ => PortSecurityTests.Udp(macA, macB, ipB, ipA))]);
        var pool = new PacketPool(512);
        var ctx = dp.CreateContext(pool);
        var batch = new PacketBatch(32);
        var sources = new[] { (a, ia), (b, ib) };
        void Run(int rounds)
        {
            for (int r = 0; r < rounds; r++)
                foreach (var (port, id) in sources)
                {
                    port.Receive(batch, pool);
                    Datapath.CountReceive(batch, ctx, id);
                    dp.ProcessBatch(batch, ctx, 1000 + r);
                }
        }
        Run(100);
        long dropsBefore = dp.ReadPortDrops(ia).Sum();
        var m = SteadyStateAllocations.Measure(Run, 2000);
        SteadyStateAllocations.AssertNone(m);
        Assert.Equal(0, pool.InUse);
        Assert.Equal(m.RoundsRun * 8L, dp.ReadPortDrops(ia).Sum() - dropsBefore);
        Assert.True(b.SentCount > m.RoundsRun * 20);
    }
}

/// <summary>
/// The transmit paths that take a sender's state (SenderSlots): a VXLAN endpoint on loopback (no root
/// needed) sending batches allocates nothing once each sender's state exists.
/// </summary>
public class TransmitZeroAllocationTests
{
    [Fact]
    public void Vxlan_transmit_through_a_senders_slot_allocates_nothing()
    {
        using var sink = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
        sink.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Parse("127.0.0.3"), 0));
        ushort udpPort = (ushort)((System.Net.IPEndPoint)sink.LocalEndPoint!).Port;
        using var port = VSwitch.Overlay.VxlanPort.Open("vxz", 0x7F000001, udpPort);
        var pool = new PacketPool(64);
        var batch = new PacketBatch(32);
        var frame = TestFrames.Eth(TestFrames.Mac(2), TestFrames.Mac(1), payload: 200);

        void Run(int rounds)
        {
            for (int r = 0; r < rounds; r++)
            {
                for (int i = 0; i < 32; i++)
                {
                    var p = pool.TryRent()!;
                    p.CopyFrom(frame);
                    p.TunnelRemote = 0x7F000003;
                    p.TunnelId = 7;
                    batch.Add(p);
                }
                port.Transmit(batch); // the sink's buffer fills and the kernel drops: a send all the same
                batch.Clear();
            }
        }

        Run(20);
        var m = SteadyStateAllocations.Measure(Run, 200);
        SteadyStateAllocations.AssertNone(m);
        Assert.Equal(0, pool.InUse);
        Assert.True(port.TxPackets > 0);
    }

    /// <summary>
    /// Over an IPv6 underlay: an endpoint on ::1 sends batches to itself and reads them back (sockaddr_in6 out,
    /// the source interned to its handle on the way in): neither half allocates once warm.
    /// </summary>
    [Fact]
    public void Vxlan_over_ipv6_transmit_and_receive_allocate_nothing()
    {
        ushort udpPort;
        using (var probe = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetworkV6, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp))
        {
            probe.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.IPv6Loopback, 0));
            udpPort = (ushort)((System.Net.IPEndPoint)probe.LocalEndPoint!).Port;
        }
        using var port = VSwitch.Overlay.VxlanPort.Open("vxz6", System.Net.IPAddress.IPv6Loopback, udpPort);
        uint self = VSwitch.Core.Flow.VtepRemote.FromAddress(System.Net.IPAddress.IPv6Loopback);
        var pool = new PacketPool(256);
        var batch = new PacketBatch(32);
        var rx = new PacketBatch(64);
        var frame = TestFrames.Eth(TestFrames.Mac(2), TestFrames.Mac(1), payload: 200);
        long received = 0;

        void Run(int rounds)
        {
            for (int r = 0; r < rounds; r++)
            {
                for (int i = 0; i < 16; i++)
                {
                    var p = pool.TryRent()!;
                    p.CopyFrom(frame);
                    p.TunnelRemote = self;
                    p.TunnelId = 7;
                    batch.Add(p);
                }
                port.Transmit(batch);
                batch.Clear();
                // Read back what arrived (loopback delivers at once; a frame not yet there is read next round).
                port.Receive(rx, pool);
                for (int i = 0; i < rx.Count; i++) if (rx[i].TunnelRemote == self && rx[i].Drop == Flow.DropReason.None) received++;
                rx.ReleaseAll();
            }
        }

        Run(20);
        var m = SteadyStateAllocations.Measure(Run, 200);
        SteadyStateAllocations.AssertNone(m);
        Assert.True(received > 1000, $"only {received} frames came back");
        Assert.True(port.TxPackets > 0);
    }
}

/// <summary>
/// Receive spread over queues (RSS): a VXLAN endpoint with two receive sockets sharing its port (SO_REUSEPORT), on
/// loopback (no root needed). Datagrams from eight source ports are spread over both by the kernel; reading each queue
/// allocates nothing once warm.
/// </summary>
public class RxQueueZeroAllocationTests
{
    [Fact]
    public void Vxlan_receive_on_each_reuseport_queue_allocates_nothing_and_both_queues_get_datagrams()
    {
        using var probe = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
        probe.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Parse("127.0.0.1"), 0));
        ushort udpPort = (ushort)((System.Net.IPEndPoint)probe.LocalEndPoint!).Port;
        probe.Close();
        using var port = VSwitch.Overlay.VxlanPort.Open("vxq", 0x7F000001, udpPort, rxQueues: 2);
        Assert.Equal(2, ((IPort)port).RxQueueCount);

        // VXLAN (flags 0x08, VNI 7) + an inner frame, from eight sockets: eight outer 4-tuples for the reuseport hash.
        var frame = TestFrames.Eth(TestFrames.Mac(2), TestFrames.Mac(1), payload: 60);
        var datagram = new byte[8 + frame.Length];
        datagram[0] = 0x08;
        datagram[6] = 7;
        frame.CopyTo(datagram, 8);
        var to = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, udpPort);
        const int PerSender = 500;
        for (int s = 0; s < 8; s++)
        {
            using var sender = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
            sender.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Parse("127.0.0.2"), 0));
            for (int i = 0; i < PerSender; i++) sender.SendTo(datagram, to);
        }

        var pool = new PacketPool(64);
        var batch = new PacketBatch(4);
        var got = new long[2];
        void Run(int rounds)
        {
            for (int r = 0; r < rounds; r++)
                for (int q = 0; q < 2; q++)
                {
                    got[q] += ((IPort)port).RxQueue(q).Receive(batch, pool);
                    batch.ReleaseAll();
                }
        }

        Run(20);
        var m = SteadyStateAllocations.Measure(Run, 100);
        SteadyStateAllocations.AssertNone(m);
        Assert.Equal(0, pool.InUse);
        Assert.True(got[0] > 0 && got[1] > 0, $"queue 0 got {got[0]}, queue 1 got {got[1]}");
        Assert.True(got[0] + got[1] <= 8 * PerSender);
    }
}
