using System.Buffers.Binary;
using System.Net;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports;

namespace VSwitch.Core.Tests;

/// <summary>The routed IPv6 path in steady state (flow cached: hop limit minus one, MAC rewrite, MTU check) allocates nothing, isolated drops included.</summary>
public class Routed6ZeroAllocationTests
{
    private static UInt128 Ip6(string s) => BinaryPrimitives.ReadUInt128BigEndian(IPAddress.Parse(s).GetAddressBytes());

    [Fact]
    public void Steady_state_ipv6_routing_allocates_nothing()
    {
        var dp = new Datapath();
        ulong r1 = dp.AddNetwork("n1", gateway: 0x0A010001, prefixLength: 24, gateway6: Ip6("fd00:1::1"), prefixLength6: 64).Router!.Mac;
        dp.AddNetwork("n2", gateway: 0x0A020001, prefixLength: 24, gateway6: Ip6("fd00:2::1"), prefixLength6: 64);
        dp.AddNetwork("n3", gateway: 0x0A030001, prefixLength: 24, gateway6: Ip6("fd00:3::1"), prefixLength6: 64); // isolated from n1
        dp.ConnectNetworks("n1", "n2");
        var a = new MemoryPort("a") { KeepSent = false };
        var b = new MemoryPort("b") { KeepSent = false };
        int ia = dp.AddPort(a, "n1").Id;
        dp.AddPort(b, "n2");
        ulong macB = TestFrames.Mac(0xB);
        dp.Neighbors6.AddStatic(2, Ip6("fd00:2::2"), macB);
        dp.MacTable.AddStatic(2, 0, macB, dp.Topology.PortByName("b")!.Id);
        var frames = new byte[32][];
        for (int i = 0; i < 32; i++)
        {
            var k = new VSwitch.Core.Flow.FlowKey
            {
                // One frame in 8 goes to isolated n3: a cached drop (network-isolated).
                DlSrc = TestFrames.Mac(0xA), DlDst = r1, DlType = VSwitch.Core.Wire.EtherTypes.IPv6, NwSrc = Ip6("fd00:1::2"),
                NwDst = i % 8 == 7 ? Ip6("fd00:3::2") : Ip6("fd00:2::2"),
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
