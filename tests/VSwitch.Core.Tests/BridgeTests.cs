using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Ports;
using VSwitch.Core.Tables;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Tests;

/// <summary>The learning bridge through MemoryPorts: learning, flooding, split horizon, VLANs.</summary>
public class BridgeTests
{
    private sealed class Rig
    {
        public readonly Datapath Dp;
        public readonly PacketPool Pool = new(1024);
        public readonly DatapathContext Ctx;
        public readonly Dictionary<string, (MemoryPort Io, SwitchPort Port)> Ports = [];
        public long Now = 0;

        public Rig(MacTable? macs = null)
        {
            Dp = new Datapath(macs);
            Ctx = Dp.CreateContext(Pool);
        }

        public MemoryPort Add(string name, string net, VlanMode mode = VlanMode.Access, ushort? vlan = null, ushort[]? trunks = null, ushort native = 0)
        {
            if (Dp.Topology.NetworkByName(net) is null) Dp.AddNetwork(net);
            var io = new MemoryPort(name);
            var sp = Dp.AddPort(io, net, mode, vlan, trunks, native);
            Ports[name] = (io, sp);
            return io;
        }

        /// <summary>Receives one frame on a port and runs the pipeline, like the poll loop does.</summary>
        public void Send(string port, byte[] frame)
        {
            var (io, sp) = Ports[port];
            io.Inject(frame);
            var batch = new PacketBatch();
            io.Receive(batch, Pool);
            Datapath.CountReceive(batch, Ctx, sp.Id);
            Dp.ProcessBatch(batch, Ctx, Now);
        }

        public List<byte[]> Take(string port)
        {
            var l = Ports[port].Io.Sent.ToList();
            Ports[port].Io.Sent.Clear();
            return l;
        }

        public long Drops(DropReason r) => Dp.ReadDropCounters()[(int)r];
    }

    private static ulong M(int n) => TestFrames.Mac(n);

    [Fact]
    public void Unknown_unicast_floods_then_reply_is_forwarded_to_the_learned_port_only()
    {
        var r = new Rig();
        r.Add("a", "n1"); r.Add("b", "n1"); r.Add("c", "n1");
        r.Send("a", TestFrames.Eth(M(2), M(1)));
        Assert.Empty(r.Take("a")); // split horizon
        Assert.Single(r.Take("b"));
        Assert.Single(r.Take("c"));
        r.Send("b", TestFrames.Eth(M(1), M(2)));
        Assert.Single(r.Take("a"));
        Assert.Empty(r.Take("c"));
        r.Send("a", TestFrames.Eth(M(2), M(1)));
        Assert.Single(r.Take("b"));
        Assert.Empty(r.Take("c"));
        Assert.Equal(r.Ports["a"].Port.Id, r.Dp.MacTable.Lookup(r.Ports["a"].Port.Network.Id, 0, M(1), 0));
        Assert.Equal(0, r.Pool.InUse); // every buffer went back
    }

    [Fact]
    public void Broadcast_reaches_every_other_port_of_the_network_once_and_not_other_networks()
    {
        var r = new Rig();
        r.Add("a", "n1"); r.Add("b", "n1"); r.Add("c", "n1"); r.Add("x", "n2");
        var frame = TestFrames.Eth(0xFFFF_FFFF_FFFFUL, M(1));
        r.Send("a", frame);
        Assert.Empty(r.Take("a"));
        Assert.Equal(frame, Assert.Single(r.Take("b")));
        Assert.Equal(frame, Assert.Single(r.Take("c")));
        Assert.Empty(r.Take("x"));
        Assert.Equal(0, r.Pool.InUse);
    }

    [Fact]
    public void Frame_to_a_host_on_the_ingress_port_is_dropped_with_a_reason()
    {
        var r = new Rig();
        r.Add("a", "n1"); r.Add("b", "n1");
        r.Send("a", TestFrames.Eth(M(2), M(1)));
        r.Send("a", TestFrames.Eth(M(9), M(2))); // M(2) moves to a
        r.Take("b");
        r.Send("a", TestFrames.Eth(M(2), M(1)));
        Assert.Empty(r.Take("b"));
        Assert.Equal(1, r.Drops(DropReason.OutputIsIngress));
        Assert.Equal(0, r.Pool.InUse);
    }

    [Fact]
    public void Access_ports_on_different_vlans_are_isolated_and_trunk_tags_them()
    {
        var r = new Rig();
        r.Add("a10", "n1", VlanMode.Access, vlan: 10);
        r.Add("b10", "n1", VlanMode.Access, vlan: 10);
        r.Add("c20", "n1", VlanMode.Access, vlan: 20);
        r.Add("trunk", "n1", VlanMode.Trunk, trunks: [10, 20]);
        var f = TestFrames.Eth(0xFFFF_FFFF_FFFFUL, M(1));
        r.Send("a10", f);
        Assert.Equal(f, Assert.Single(r.Take("b10"))); // untagged out of an access port
        Assert.Empty(r.Take("c20"));
        var t = Assert.Single(r.Take("trunk"));
        Assert.Equal((ushort)10, TestFrames.VlanOf(t));
        Assert.Equal(f.Length + 4, t.Length);

        // A tagged frame from the trunk on VLAN 20 reaches only c20, untagged.
        var tagged = TestFrames.Eth(0xFFFF_FFFF_FFFFUL, M(5), vlan: 20);
        r.Send("trunk", tagged);
        var got = Assert.Single(r.Take("c20"));
        Assert.Null(TestFrames.VlanOf(got));
        Assert.Equal(TestFrames.Eth(0xFFFF_FFFF_FFFFUL, M(5)), got);
        Assert.Empty(r.Take("a10"));
        Assert.Empty(r.Take("b10"));
        Assert.Equal(0, r.Pool.InUse);
    }

    [Fact]
    public void Trunk_drops_vlans_it_does_not_carry_and_access_drops_tagged_frames()
    {
        var r = new Rig();
        r.Add("trunk", "n1", VlanMode.Trunk, trunks: [10]);
        r.Add("a10", "n1", VlanMode.Access, vlan: 10);
        r.Send("trunk", TestFrames.Eth(0xFFFF_FFFF_FFFFUL, M(5), vlan: 30));
        Assert.Equal(1, r.Drops(DropReason.VlanNotAllowed));
        r.Send("a10", TestFrames.Eth(0xFFFF_FFFF_FFFFUL, M(6), vlan: 10));
        Assert.Equal(1, r.Drops(DropReason.TaggedOnAccessPort));
        Assert.Empty(r.Take("trunk"));
        Assert.Empty(r.Take("a10"));
        // A priority-tagged frame (VID 0) on an access port is accepted, and leaves untagged.
        r.Send("a10", TestFrames.Eth(0xFFFF_FFFF_FFFFUL, M(6), vlan: 0, pcp: 5));
        Assert.Equal((ushort)10, TestFrames.VlanOf(Assert.Single(r.Take("trunk"))));
    }

    [Fact]
    public void Trunk_native_vlan_goes_untagged()
    {
        var r = new Rig();
        r.Add("trunk", "n1", VlanMode.Trunk, trunks: [10, 20], native: 20);
        r.Add("a20", "n1", VlanMode.Access, vlan: 20);
        r.Send("a20", TestFrames.Eth(0xFFFF_FFFF_FFFFUL, M(1)));
        Assert.Null(TestFrames.VlanOf(Assert.Single(r.Take("trunk"))));
        r.Send("trunk", TestFrames.Eth(0xFFFF_FFFF_FFFFUL, M(2)));
        Assert.Single(r.Take("a20"));
    }

    [Fact]
    public void A_MAC_flood_past_the_per_port_limit_is_counted_and_still_forwarded()
    {
        var r = new Rig(new MacTable(capacity: 1024, perPortLimit: 4));
        r.Add("a", "n1"); r.Add("b", "n1");
        for (int i = 0; i < 10; i++) r.Send("a", TestFrames.Eth(MacAddress.Broadcast, M(100 + i)));
        Assert.Equal(4, r.Dp.MacTable.Count);
        Assert.Equal(6, r.Dp.MacTable.RefusedLearns);
        // Refused to learn, not refused to forward: every broadcast reached b.
        Assert.Equal(10, r.Take("b").Count);
        Assert.Equal(0, r.Pool.InUse);
    }

    [Fact]
    public void Runt_frames_are_dropped_and_counted_per_port()
    {
        var r = new Rig();
        r.Add("a", "n1"); r.Add("b", "n1");
        r.Send("a", new byte[10]);
        Assert.Equal(1, r.Drops(DropReason.RuntFrame));
        Assert.Equal(1, r.Dp.ReadPortCounters(r.Ports["a"].Port.Id).RxDrops);
        Assert.Empty(r.Take("b"));
        Assert.Equal(0, r.Pool.InUse);
    }

    [Fact]
    public void Removing_a_port_flushes_its_addresses_and_stops_flooding_to_it()
    {
        var r = new Rig();
        r.Add("a", "n1"); r.Add("b", "n1"); r.Add("c", "n1");
        r.Send("b", TestFrames.Eth(M(1), M(2)));
        r.Dp.RemovePort("b");
        Assert.Equal(-1, r.Dp.MacTable.Lookup(1, 0, M(2), 0));
        r.Take("c");
        r.Send("a", TestFrames.Eth(M(2), M(1)));
        Assert.Single(r.Take("c"));
        Assert.Empty(r.Take("b"));
    }

    [Fact]
    public void Counters_sum_rx_and_tx()
    {
        var r = new Rig();
        r.Add("a", "n1"); r.Add("b", "n1");
        for (int i = 0; i < 5; i++) r.Send("a", TestFrames.Eth(M(2), M(1), payload: 100));
        var a = r.Dp.ReadPortCounters(r.Ports["a"].Port.Id);
        var b = r.Dp.ReadPortCounters(r.Ports["b"].Port.Id);
        Assert.Equal(5, a.RxPackets);
        Assert.Equal(5 * 114, a.RxBytes);
        Assert.Equal(5, b.TxPackets);
        Assert.Equal(5 * 114, b.TxBytes);
        var stages = r.Dp.ReadStageCounters();
        Assert.Equal(5, stages[0].Packets);
    }
}
