using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Topology;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// A port mirror (SPAN; Open vSwitch's Mirror table): copies of the frames its source ports receive
/// (<see cref="SelectRx"/>, OVS's select_src_port) and send (<see cref="SelectTx"/>, select_dst_port), optionally of one
/// VLAN only (select_vlan), go out of <see cref="OutputPort"/> (output_port). Immutable: the control plane publishes a
/// new set when a mirror or a port changes. Its counters are per thread, at <see cref="Slot"/> of
/// <see cref="ThreadCounters.MirrorPackets"/>.
/// </summary>
public sealed class PortMirror
{
    /// <summary>At most this many mirrors (their counter slots).</summary>
    public const int MaxMirrors = 32;

    public PortMirror(string name, int slot, IEnumerable<int> rxPorts, IEnumerable<int> txPorts, int vlan, int outputPort)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(slot);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(slot, MaxMirrors);
        Name = name;
        Slot = slot;
        foreach (int p in rxPorts) SelectRx[p] = true;
        foreach (int p in txPorts) SelectTx[p] = true;
        Vlan = vlan;
        OutputPort = outputPort;
    }

    public string Name { get; }
    public int Slot { get; }
    /// <summary>Indexed by port id: frames received on these ports are mirrored.</summary>
    public bool[] SelectRx { get; } = new bool[SwitchTopology.MaxPorts];
    /// <summary>Indexed by port id: frames sent on these ports are mirrored.</summary>
    public bool[] SelectTx { get; } = new bool[SwitchTopology.MaxPorts];
    /// <summary>Only frames of this VLAN (the switch's, after ingress); -1 for every VLAN.</summary>
    public int Vlan { get; }
    public int OutputPort { get; }
}

/// <summary>
/// Where the pipeline makes the mirrors' copies: on receive (the classify stage, once the frame is accepted and its
/// VLAN known) and on transmit (the output stage, just before the port sends). A copy comes from the packet's own pool
/// and is queued on the mirror's output port like any frame. The callers test <see cref="DatapathContext.Mirrors"/>
/// for null first: with no mirror configured that test is all it costs. A mirror's output port is never one of any
/// mirror's sources (the control plane refuses it), so copies are never copied again.
/// </summary>
public static class Mirroring
{
    public static void Received(PortMirror[] mirrors, Packet p, DatapathContext ctx)
    {
        foreach (var m in mirrors)
            if (m.SelectRx[p.InPort] && (m.Vlan < 0 || m.Vlan == p.Vlan)) Copy(m, p, ctx);
    }

    public static void Sent(PortMirror[] mirrors, PacketBatch queue, int port, DatapathContext ctx)
    {
        foreach (var m in mirrors)
        {
            if (!m.SelectTx[port]) continue;
            foreach (var p in queue.AsSpan())
                if (m.Vlan < 0 || m.Vlan == p.Vlan) Copy(m, p, ctx);
        }
    }

    private static void Copy(PortMirror m, Packet p, DatapathContext ctx)
    {
        if (ctx.Topology.Port(m.OutputPort) is not { } output) return;
        var copy = p.Pool.TryRent();
        if (copy is null) { ctx.CountDrop(DropReason.PoolExhausted); return; }
        copy.CopyFrom(p);
        copy.Trace = null;
        ctx.Counters.MirrorPackets[m.Slot]++;
        ctx.Counters.MirrorBytes[m.Slot] += copy.Length;
        ctx.Enqueue(copy, output);
    }
}
