using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Ports;
using VSwitch.Core.Tables;
using VSwitch.Core.Tables.Rules;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Tests;

public class RuleParserTests
{
    private static int? Ports(string name) => name switch { "tap1" => 1, "tap2" => 2, "tap3" => 3, _ => null };
    private static string? Names(int id) => id switch { 1 => "tap1", 2 => "tap2", 3 => "tap3", _ => null };

    [Theory]
    [InlineData("priority=100,ip,in_port=tap1,nw_dst=10.1.0.0/24,actions=output:tap2")]
    [InlineData("priority=200,tcp,nw_src=10.0.0.1,tp_dst=80,actions=drop")]
    [InlineData("priority=10,udp6,ipv6_dst=fd00::/64,tp_src=53,actions=normal")]
    [InlineData("priority=5,arp,arp_tpa=10.0.0.1,arp_op=1,actions=flood")]
    [InlineData("cookie=0x2a,priority=7,idle_timeout=30,hard_timeout=60,dl_src=02:00:00:00:00:01,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=mod_dl_src:02:00:00:00:00:09,mod_vlan_vid:10,output:tap3")]
    [InlineData("priority=1,dl_vlan=10,dl_vlan_pcp=3,actions=strip_vlan,normal")]
    [InlineData("priority=1,icmp,icmp_type=8,icmp_code=0,actions=dec_ttl,in_port")]
    [InlineData("priority=0,actions=normal")]
    [InlineData("priority=3,tun_id=0x1388,actions=set_tunnel:42,output:tap1")]
    public void Good_rules_round_trip_through_text(string text)
    {
        var rule = RuleParser.ParseRule(text, Ports);
        string printed = rule.Format(Names);
        Assert.Equal(text, printed);
        var again = RuleParser.ParseRule(printed, Ports);
        Assert.True(again.Match.SameAs(rule.Match));
        Assert.Equal(rule.Actions, again.Actions);
    }

    [Theory]
    [InlineData("priority=100,in_port=tap9,actions=normal", "tap9")]
    [InlineData("priority=100,nw_dts=10.0.0.1,actions=normal", "nw_dts")]
    [InlineData("priority=100,ip,nw_dst=10.0.0.300,actions=normal", "nw_dst=10.0.0.300")]
    [InlineData("priority=100,nw_dst=10.0.0.1,actions=normal", "nw_dst=10.0.0.1")]
    [InlineData("priority=99999,actions=normal", "priority=99999")]
    [InlineData("priority=1,actions=output:nowhere", "output:nowhere")]
    [InlineData("priority=1,actions=frobnicate", "frobnicate")]
    [InlineData("priority=1,ip", "priority=1,ip")]
    [InlineData("priority=1,dl_src=zz:00:00:00:00:01,actions=drop", "dl_src=zz:00:00:00:00:01")]
    [InlineData("priority=1,tcp,tp_dst=http,actions=drop", "tp_dst=http")]
    [InlineData("priority=1,actions=drop,normal", "drop,normal")]
    // Found by fuzzing (tests/VSwitch.Fuzz/regressions/rules): two keywords of different dl_types threw a plain FormatException.
    [InlineData("priority=1,ip,arp,actions=drop", "arp")]
    [InlineData("priority=1,udp6,icmp,actions=drop", "icmp")]
    public void Bad_rules_fail_naming_the_token(string text, string token)
    {
        var e = Assert.Throws<RuleSyntaxException>(() => RuleParser.ParseRule(text, Ports));
        Assert.Contains(token, e.Message);
        Assert.Contains(token, e.Token);
    }

    [Fact]
    public void Matching_uses_masks_and_prefixes()
    {
        var r = RuleParser.ParseRule("priority=1,ip,nw_dst=10.1.0.0/16,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=drop", Ports);
        var k = new FlowKey { DlType = EtherTypes.IPv4, NwDst = 0x0A01_0203, DlDst = 0xFF_FF_FF_FF_FF_FFUL };
        Assert.True(r.Match.Matches(k));
        k.NwDst = 0x0A02_0203;
        Assert.False(r.Match.Matches(k));
        k.NwDst = 0x0A01_0000;
        k.DlDst = 0x02_00_00_00_00_01UL;
        Assert.False(r.Match.Matches(k));
    }

    [Fact]
    public void Table_orders_by_priority_replaces_same_match_and_deletes_covered_rules()
    {
        var t = new RuleTable();
        Assert.Single(t.Rules);
        t.Add(RuleParser.ParseRule("priority=10,ip,actions=drop", Ports), 0);
        t.Add(RuleParser.ParseRule("priority=20,tcp,actions=normal", Ports), 0);
        t.Add(RuleParser.ParseRule("priority=20,tcp,actions=flood", Ports), 0); // replaces
        Assert.Equal([20, 10, 0], t.Rules.Select(r => r.Priority));
        Assert.Equal(ActionKind.Flood, t.Rules[0].Actions[0].Kind);
        long v = t.Version;
        var removed = t.Delete(RuleParser.ParseMatch("ip", Ports).Match, null, strict: false);
        Assert.Equal(2, removed.Count); // "ip" covers both "ip" and "tcp"
        Assert.True(t.Version > v);
        Assert.Single(t.Rules);
    }

    [Fact]
    public void Rules_expire_on_hard_and_idle_timeouts()
    {
        var t = new RuleTable();
        var hard = RuleParser.ParseRule("priority=5,ip,hard_timeout=10,actions=drop", Ports);
        var idle = RuleParser.ParseRule("priority=6,arp,idle_timeout=5,actions=drop", Ports);
        t.Add(hard, 1000);
        t.Add(idle, 1000);
        Assert.Empty(t.Expired(5999));
        Assert.Equal([idle], t.Expired(6000));
        idle.LastUsedMs = 9000;
        Assert.Equal([hard], t.Expired(11000));
    }
}

/// <summary>Rules, the flow cache and traces working together in the pipeline.</summary>
public class FlowPipelineTests
{
    private sealed class Rig
    {
        public readonly Datapath Dp;
        public readonly PacketPool Pool = new(1024);
        public readonly DatapathContext Ctx;
        public readonly Dictionary<string, (MemoryPort Io, int Id)> Ports = [];
        public long Now = 1000;

        public Rig(int cacheCapacity = FlowCache.DefaultCapacity)
        {
            Dp = new Datapath(flowCacheCapacity: cacheCapacity);
            Dp.AddNetwork("n1");
            foreach (var n in new[] { "a", "b", "c" })
            {
                var io = new MemoryPort(n);
                Ports[n] = (io, Dp.AddPort(io, "n1").Id);
            }
            Ctx = Dp.CreateContext(Pool);
        }

        public int? PortId(string name) => Dp.Topology.PortByName(name)?.Id;

        public void Send(string port, byte[] frame)
        {
            var (io, id) = Ports[port];
            io.Inject(frame);
            var batch = new PacketBatch();
            io.Receive(batch, Pool);
            Datapath.CountReceive(batch, Ctx, id);
            Dp.ProcessBatch(batch, Ctx, Now);
        }

        public int Took(string port)
        {
            int n = Ports[port].Io.Sent.Count;
            Ports[port].Io.Sent.Clear();
            return n;
        }
    }

    private static ulong M(int n) => TestFrames.Mac(n);

    [Fact]
    public void A_drop_rule_stops_traffic_counts_packets_and_deleting_it_restores_forwarding()
    {
        var r = new Rig();
        r.Send("b", TestFrames.Eth(M(1), M(2)));
        r.Send("a", TestFrames.Eth(M(2), M(1)));
        Assert.Equal(1, r.Took("b"));
        var rule = RuleParser.ParseRule("priority=100,in_port=a,actions=drop", r.PortId);
        r.Dp.Rules.Add(rule, r.Now);
        for (int i = 0; i < 5; i++) r.Send("a", TestFrames.Eth(M(2), M(1)));
        Assert.Equal(0, r.Took("b"));
        Assert.Equal(5, r.Dp.ReadDropCounters()[(int)DropReason.RuleDrop]);
        Assert.Equal(5, r.Dp.RuleCounters(rule).Packets);
        r.Dp.Rules.Delete(rule.Match, 100, strict: true);
        r.Send("a", TestFrames.Eth(M(2), M(1)));
        Assert.Equal(1, r.Took("b"));
        Assert.Equal(0, r.Pool.InUse);
    }

    [Fact]
    public void Cached_flows_hit_count_and_revalidate_when_the_mac_table_changes()
    {
        var r = new Rig();
        r.Send("a", TestFrames.Eth(M(2), M(1))); // unknown: flood
        Assert.Equal(1, r.Took("b"));
        Assert.Equal(1, r.Took("c"));
        for (int i = 0; i < 3; i++) r.Send("a", TestFrames.Eth(M(2), M(1)));
        Assert.Equal(3, r.Took("c")); // still flooding, from the cache
        Assert.Equal(3, r.Took("b"));
        var flow = Assert.Single(r.Ctx.FlowCache.Entries(), e => e.Key.DlDst == M(2));
        Assert.Equal(ActionKind.Flood, flow.Actions[0].Kind);
        Assert.True(r.Ctx.FlowCache.Hits >= 2);

        r.Send("b", TestFrames.Eth(M(1), M(2))); // M(2) learned on b: cached flood is stale
        r.Took("a");
        r.Send("a", TestFrames.Eth(M(2), M(1)));
        Assert.Equal(1, r.Took("b"));
        Assert.Equal(0, r.Took("c"));
        Assert.Equal(ActionKind.Output, flow.Actions[0].Kind);
        Assert.Equal(5, flow.Packets);
    }

    [Fact]
    public void Flows_idle_out_and_the_cache_evicts_least_recently_used_when_full()
    {
        var r = new Rig(cacheCapacity: 8); // one set of 8 ways
        for (int i = 0; i < 8; i++) { r.Now += 1; r.Send("a", TestFrames.Eth(M(100 + i), M(1))); }
        Assert.Equal(8, r.Ctx.FlowCache.Count);
        r.Now += 1;
        r.Send("a", TestFrames.Eth(M(200), M(1)));
        Assert.Equal(8, r.Ctx.FlowCache.Count);
        Assert.Equal(1, r.Ctx.FlowCache.Evictions);
        Assert.DoesNotContain(r.Ctx.FlowCache.Entries(), e => e.Key.DlDst == M(100)); // the oldest went
        Assert.Equal(0, r.Ctx.FlowCache.ExpireIdle(r.Now + 9_000, null));
        Assert.Equal(8, r.Ctx.FlowCache.ExpireIdle(r.Now + 11_000, null));
        Assert.Equal(0, r.Ctx.FlowCache.Count);
    }

    [Fact]
    public void Trace_names_the_normal_rule_the_learned_mac_and_the_output_port()
    {
        var r = new Rig();
        r.Send("b", TestFrames.Eth(M(1), M(2)));
        var t = Tracer.Trace(r.Dp, TestFrames.Eth(M(2), M(1)), r.Ports["a"].Id, r.Now);
        string all = string.Join("\n", t.Steps.Select(s => s.Stage + ": " + s.Detail));
        Assert.Contains("priority=0,actions=normal", all);
        Assert.Contains("02:00:00:00:00:02 learned on b", all);
        Assert.Equal("output:b", t.Actions);
        Assert.Null(t.DropReason);
        // A trace learns nothing.
        Assert.Equal(-1, r.Dp.MacTable.Lookup(1, 0, M(1), r.Now));

        var unknown = Tracer.Trace(r.Dp, TestFrames.Eth(M(77), M(1)), r.Ports["a"].Id, r.Now);
        Assert.Equal("flood", unknown.Actions);
        Assert.Contains(unknown.Steps, s => s.Detail.Contains("unknown"));
    }

    [Fact]
    public void Rule_actions_rewrite_and_output_several_ports()
    {
        var r = new Rig();
        r.Dp.Rules.Add(RuleParser.ParseRule("priority=10,in_port=a,actions=mod_dl_dst:02:00:00:00:00:99,output:b,output:c", r.PortId), 0);
        r.Send("a", TestFrames.Eth(M(2), M(1)));
        var b = Assert.Single(r.Ports["b"].Io.Sent);
        var c = Assert.Single(r.Ports["c"].Io.Sent);
        Assert.Equal(M(0x99), Wire.MacAddress.Read(b));
        Assert.Equal(b, c);
        Assert.Equal(0, r.Pool.InUse);
    }

    [Fact]
    public void Live_trace_records_the_next_matching_packets()
    {
        var r = new Rig();
        var live = new LiveTrace(RuleParser.ParseMatch("in_port=a", r.PortId).Match, 2);
        r.Dp.ArmLiveTrace(live);
        r.Send("b", TestFrames.Eth(M(1), M(2)));
        for (int i = 0; i < 3; i++) r.Send("a", TestFrames.Eth(M(2), M(1)));
        Assert.True(live.Completion.IsCompleted);
        Assert.Equal(2, live.Results.Count);
        Assert.All(live.Results, t => Assert.Equal("output:b", t.Actions));
        Assert.Null(r.Dp.LiveTrace);
    }
}
