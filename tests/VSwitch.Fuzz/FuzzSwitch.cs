using VSwitch.Core;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports;
using VSwitch.Core.Tables.Rules;
using VSwitch.Core.Topology;

namespace VSwitch.Fuzz;

/// <summary>
/// A small switch in memory for the targets that run whole frames through the pipeline with
/// <see cref="VSwitch.Core.Pipeline.Tracer"/> (a dry run: it changes no table and sends nothing, so
/// every input meets the same switch and AFL sees stable paths). Two routed networks, a trunk, a
/// VXLAN network behind a tunnel port, a static neighbour and a few rules: enough for the bridge,
/// the router (ARP, ICMP errors), VLAN ingress and the rule actions to be reached.
/// </summary>
public sealed class FuzzSwitch
{
    public const uint Vni = 5001;
    public const uint Vtep = 0xC0A80002; // 192.168.0.2

    public Datapath Dp { get; } = new();
    public int Access { get; }
    public int Trunk { get; }
    public int Routed { get; }
    public int Overlay { get; }
    public int Tunnel { get; }

    /// <summary>Built once per process, on the first input (inside SharpFuzz's loop): the harnesses only read it.</summary>
    public static FuzzSwitch Shared => LazyShared.Value;
    private static readonly Lazy<FuzzSwitch> LazyShared = new(() => new FuzzSwitch());

    private FuzzSwitch()
    {
        Dp.AddNetwork("blue", gateway: 0x0A010001, prefixLength: 24);   // 10.1.0.1/24
        Dp.AddNetwork("green", gateway: 0x0A020001, prefixLength: 24, mtu: 1000);
        Dp.AddNetwork("ov", vni: Vni);
        Dp.SetVteps("ov", [Vtep]);
        Access = Dp.AddPort(new MemoryPort("tapa"), "blue").Id;
        Trunk = Dp.AddPort(new MemoryPort("trunk1"), "blue", VlanMode.Trunk, trunks: [10, 20], nativeVlan: 0).Id;
        Routed = Dp.AddPort(new MemoryPort("tapc"), "green").Id;
        Overlay = Dp.AddPort(new MemoryPort("tapo"), "ov").Id;
        Tunnel = Dp.AddPort(id => new SwitchPort(id, new MemoryTunnel("vx0"), Network.Underlay)).Id;
        Dp.Neighbors.AddStatic(2, 0x0A020002, 0x02_00_00_00_00_0B);
        foreach (var rule in (string[])[
            "priority=100,in_port=tapa,tcp,tp_dst=23,actions=drop",
            "priority=90,in_port=trunk1,dl_vlan=20,actions=strip_vlan,mod_dl_src:02:00:00:00:00:09,output:tapa",
            "priority=80,udp,tp_dst=53,actions=mod_vlan_vid:10,output:trunk1,normal",
            "priority=70,icmp,icmp_type=8,actions=dec_ttl,normal",
        ])
            Dp.Rules.Add(RuleParser.ParseRule(rule, PortId), 0);
    }

    public int? PortId(string name) => Dp.Topology.PortByName(name)?.Id;

    /// <summary>A tunnel port in memory: never polled here, only named as the tunnel.</summary>
    private sealed class MemoryTunnel(string name) : ITunnelPort
    {
        public string Name => name;
        public int PollFd => -1;
        public int Receive(PacketBatch batch, PacketPool pool) => 0;
        public int Transmit(PacketBatch batch)
        {
            foreach (var p in batch.AsSpan()) p.Release();
            return batch.Count;
        }
        public void Dispose() { }
    }
}
