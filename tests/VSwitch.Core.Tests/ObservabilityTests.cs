using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Ports;
using VSwitch.Core.Tables.Rules;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Tests;

/// <summary>
/// One observability model: drops counted per (stage, reason) under the reasons each stage
/// declares, and traces written by the real stages (synthetic and live).
/// </summary>
public class ObservabilityTests
{
    private const uint Gw1 = 0x0A010001, HostA = 0x0A010002, Gw2 = 0x0A020001, HostB = 0x0A020002;
    private const uint Vni = 42, KnownVtep = 0xC0A80002, UnknownVtep = 0xC0A80009;
    private static readonly ulong MacA = TestFrames.Mac(0xA), MacB = TestFrames.Mac(0xB);

    /// <summary>A tunnel port in memory: what it is given to send, it keeps.</summary>
    private sealed class MemoryTunnel(string name) : ITunnelPort
    {
        private readonly MemoryPort _inner = new(name) { KeepSent = true };
        public string Name => name;
        public int PollFd => -1;
        public bool AcceptsGso => false;
        public List<byte[]> Sent => _inner.Sent;
        public void Inject(byte[] frame) => _inner.Inject(frame);
        public int Receive(PacketBatch batch, PacketPool pool) => _inner.Receive(batch, pool);
        public int Transmit(PacketBatch batch) => _inner.Transmit(batch);
        public void Dispose() => _inner.Dispose();
    }

    private sealed class Rig
    {
        public readonly Datapath Dp = new();
        public readonly PacketPool Pool = new(1024);
        public readonly DatapathContext Ctx;
        public readonly MemoryPort A = new("a") { KeepSent = true }, B = new("b") { KeepSent = true }, C = new("c") { KeepSent = true };
        public readonly MemoryTunnel Tunnel = new("vx");
        public readonly int IdA, IdB, IdC, IdTunnel;
        public readonly ulong R1;
        public long Now = 1000;

        public Rig()
        {
            R1 = Dp.AddNetwork("n1", gateway: Gw1, prefixLength: 24).Router!.Mac;
            Dp.AddNetwork("n2", gateway: Gw2, prefixLength: 24, mtu: 1000);
            Dp.ConnectNetworks("n1", "n2"); // routed networks are isolated unless connected
            Dp.AddNetwork("ov", vni: Vni);
            Dp.SetVteps("ov", [KnownVtep]);
            IdA = Dp.AddPort(A, "n1").Id;
            IdB = Dp.AddPort(B, "n2").Id;
            IdC = Dp.AddPort(C, "ov").Id;
            IdTunnel = Dp.AddPort(id => new SwitchPort(id, Tunnel, Network.Underlay)).Id;
            Dp.Neighbors.AddStatic(2, HostB, MacB);
            Ctx = Dp.CreateContext(Pool);
        }

        public void Send(IPort port, int id, byte[] frame, uint tunnelRemote = 0, uint vni = 0)
        {
            var batch = new PacketBatch();
            var p = Pool.TryRent()!;
            p.CopyFrom(frame);
            p.TunnelId = vni;
            p.TunnelRemote = tunnelRemote;
            batch.Add(p);
            Datapath.CountReceive(batch, Ctx, id);
            Dp.ProcessBatch(batch, Ctx, Now);
        }
    }

    private static byte[] Udp(ulong src, ulong dst, uint ipSrc, uint ipDst, int payload = 32) =>
        FrameBuilder.FromKey(new FlowKey { DlSrc = src, DlDst = dst, DlType = EtherTypes.IPv4, NwSrc = ipSrc, NwDst = ipDst, NwTtl = 64, NwProto = IpProtocols.Udp, TpSrc = 1000, TpDst = 2000 }, payload);

    [Fact]
    public void Every_drop_is_counted_under_a_reason_its_stage_declares_and_the_stages_add_up_to_the_total()
    {
        var r = new Rig();
        r.Send(r.A, r.IdA, new byte[10]);                                                   // runt-frame (classify)
        r.Send(r.Tunnel, r.IdTunnel, Udp(MacB, MacA, HostB, HostA), UnknownVtep, Vni);        // unknown-vtep (classify)
        r.Send(r.Tunnel, r.IdTunnel, Udp(MacB, MacA, HostB, HostA), KnownVtep, 77);           // unknown-vni (classify)
        r.Send(r.A, r.IdA, Udp(MacA, r.R1, HostA, HostB, payload: 1200));                    // fragmentation-needed (actions)
        r.Send(r.A, r.IdA, Udp(MacA, r.R1, HostA, 0x0B000001));                             // no-route (actions)
        r.Send(r.A, r.IdA, Udp(MacA, TestFrames.Mac(0x77), HostA, HostA + 5));               // flood alone: no-output (actions)
        r.Dp.AddNetwork("iso", gateway: 0x0A630001, prefixLength: 24);
        r.Send(r.A, r.IdA, Udp(MacA, r.R1, HostA, 0x0A630002));                             // network-isolated (actions)
        r.Dp.Rules.Add(new Rule(100, RuleParser.ParseMatch("in_port=a,udp,tp_dst=2000", n => n == "a" ? r.IdA : null).Match, [FlowAction.Drop(DropReason.RuleDrop)]), r.Now);
        r.Send(r.A, r.IdA, Udp(MacA, r.R1, HostA, HostB));                                  // rule-drop (actions)

        var byStage = r.Dp.ReadStageDropCounters();
        var total = r.Dp.ReadDropCounters();
        int reasons = (int)DropReason.Count;
        var seen = new List<string>();
        for (int s = 0; s < r.Dp.Stages.Count; s++)
        {
            for (int i = 1; i < reasons; i++)
            {
                long n = byStage[s * reasons + i];
                if (n == 0) continue;
                var stage = r.Dp.Stages[s];
                seen.Add($"{stage.Name}/{((DropReason)i).Name()}");
                Assert.True(stage.DropReasons.Contains((DropReason)i), $"stage {stage.Name} counted {((DropReason)i).Name()}, which it does not declare");
            }
        }
        for (int i = 0; i < reasons; i++)
            Assert.Equal(total[i], Enumerable.Range(0, r.Dp.Stages.Count).Sum(s => byStage[s * reasons + i]));
        foreach (var want in new[] { "classify/runt-frame", "classify/unknown-vtep", "classify/unknown-vni", "actions/fragmentation-needed",
                                     "actions/no-route", "actions/no-output", "actions/rule-drop", "actions/network-isolated" })
            Assert.Contains(want, seen);
        Assert.Equal(0, r.Pool.InUse);
    }

    [Fact]
    public void Transmit_failures_are_the_output_stage_s_drops()
    {
        var r = new Rig();
        r.B.FailTransmits = true;
        r.Send(r.A, r.IdA, Udp(MacA, r.R1, HostA, HostB));
        var byStage = r.Dp.ReadStageDropCounters();
        int output = r.Dp.Stages.Count - 1;
        Assert.Equal("output", r.Dp.Stages[output].Name);
        Assert.Equal(1, byStage[output * (int)DropReason.Count + (int)DropReason.TxFailed]);
        Assert.Equal(1, r.Dp.ReadPortCounters(r.IdB).TxDrops);
    }

    [Fact]
    public void A_synthetic_trace_of_a_frame_from_an_unknown_VTEP_says_unknown_vtep()
    {
        var r = new Rig();
        var t = Tracer.Trace(r.Dp, Udp(MacB, MacA, HostB, HostA), r.IdTunnel, r.Now, Vni, UnknownVtep);
        Assert.Equal("unknown-vtep", t.DropReason);
        Assert.Contains(t.Steps, s => s.Stage == "classify" && s.Detail.Contains("unknown-vtep"));
        // From a VTEP the network knows, the same frame is delivered (flooded: its MAC is unknown).
        var ok = Tracer.Trace(r.Dp, Udp(MacB, MacA, HostB, HostA), r.IdTunnel, r.Now, Vni, KnownVtep);
        Assert.Null(ok.DropReason);
        Assert.Contains(ok.Steps, s => s.Stage == "output" && s.Detail == "would send on c");
        // A trace changes nothing: no MAC learned from it, nothing sent, no counter moved.
        Assert.Equal(0, r.Dp.MacTable.Count);
        Assert.Empty(r.C.Sent);
        Assert.All(r.Dp.ReadDropCounters(), n => Assert.Equal(0, n));
    }

    [Fact]
    public void A_synthetic_flood_lists_every_port_and_VTEP_it_reaches()
    {
        var r = new Rig();
        r.Dp.SetVteps("ov", [KnownVtep, KnownVtep + 1]);
        var t = Tracer.Trace(r.Dp, Udp(TestFrames.Mac(0x55), MacAddress.Broadcast, HostA, HostB), r.IdC, r.Now);
        var all = string.Join("\n", t.Steps.Select(s => s.Stage + ": " + s.Detail));
        Assert.True(t.Steps.Any(s => s.Stage == "actions" && s.Detail.StartsWith("flood in network ov")), all);
        Assert.True(t.Steps.Any(s => s.Detail.Contains($"to VTEP {AddressFormat.IPv4(KnownVtep)} VNI {Vni}")), all);
        Assert.True(t.Steps.Any(s => s.Detail.Contains($"to VTEP {AddressFormat.IPv4(KnownVtep + 1)} VNI {Vni}")), all);
        Assert.Equal(2, t.Outputs);
    }

    [Fact]
    public void A_live_trace_of_a_frame_too_big_for_the_egress_MTU_shows_the_drop_in_the_action_stage()
    {
        var r = new Rig();
        var live = new LiveTrace(RuleParser.ParseMatch("udp", _ => null).Match, 2);
        r.Dp.ArmLiveTrace(live);
        r.Send(r.A, r.IdA, Udp(MacA, r.R1, HostA, HostB, payload: 1200)); // DF set, 1000-byte MTU on n2
        r.Send(r.A, r.IdA, Udp(MacA, r.R1, HostA, HostB, payload: 100));
        Assert.True(live.Completion.IsCompleted);
        var big = live.Results[0];
        Assert.Equal("fragmentation-needed", big.DropReason);
        Assert.Contains(big.Steps, s => s.Stage == "actions" && s.Detail == "drop (fragmentation-needed)");
        Assert.Contains(big.Steps, s => s.Stage == "actions" && s.Detail.StartsWith("ICMP error type 3 code 4 back to a"));
        Assert.Contains(big.Steps, s => s.Stage == "output" && s.Detail == "sent on a"); // the ICMP error itself
        var small = live.Results[1];
        Assert.Null(small.DropReason);
        Assert.Contains(small.Steps, s => s.Stage == "output" && s.Detail == "sent on b");
        Assert.Null(r.Dp.LiveTrace); // disarmed once complete
    }

    [Fact]
    public void A_live_trace_shows_a_transmit_failure()
    {
        var r = new Rig();
        r.B.FailTransmits = true;
        var live = new LiveTrace(RuleParser.ParseMatch("udp", _ => null).Match, 1);
        r.Dp.ArmLiveTrace(live);
        r.Send(r.A, r.IdA, Udp(MacA, r.R1, HostA, HostB));
        var t = Assert.Single(live.Results);
        Assert.Equal("tx-failed", t.DropReason);
        Assert.Contains(t.Steps, s => s.Stage == "output" && s.Detail.StartsWith("transmit failed on b"));
    }
}
