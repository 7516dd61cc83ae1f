using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using VSwitch.Core.Buffers;
using VSwitch.Core.Tables;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// The learning bridge (OVS's NORMAL action, the Linux bridge's forwarding path):
/// ingress VLAN rules of the port, learn the source address, look the destination up, and
/// decide: one port, flood, or drop. Frames are carried inside the switch untagged, with their
/// VLAN in <see cref="Packet.Vlan"/>; the output stage tags them again for trunk ports.
/// </summary>
public sealed class BridgeStage : Stage
{
    public override string Name => "bridge";

    public override void Process(PacketBatch batch, DatapathContext ctx)
    {
        var items = batch.Items;
        int n = batch.Count, kept = 0;
        var topo = ctx.Topology;
        var macs = ctx.Datapath.MacTable;
        long now = ctx.NowMs;
        for (int i = 0; i < n; i++)
        {
            var p = items[i];
            var reason = Forward(p, topo, macs, now, ctx.Counters);
            if (reason != DropReason.None) ctx.Drop(p, reason);
            else items[kept++] = p;
        }
        Compact(batch, kept);
    }

    /// <summary>Decides where one frame goes; sets <see cref="Packet.OutPort"/>. Also used by trace.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DropReason Forward(Packet p, SwitchTopology topo, MacTable macs, long now, ThreadCounters? counters)
    {
        var port = topo.Port(p.InPort);
        if (port is null) return DropReason.PortDown;
        var reason = Ingress(p, port);
        if (reason != DropReason.None) return reason;

        ref readonly var key = ref p.Key;
        var net = port.Network;
        // Never learn a group address as a source (IEEE 802.1D 7.8): such frames are bogus.
        if (!MacAddress.IsMulticast(key.DlSrc))
        {
            if (macs.Learn(net.Id, p.Vlan, key.DlSrc, port.Id, now, net.MacAgingMs) == LearnResult.Full && counters is not null)
                counters.Drops[(int)DropReason.MacTableFull]++; // counted, but the frame still goes on
        }
        if (MacAddress.IsMulticast(key.DlDst))
        {
            p.OutPort = Packet.OutFlood;
            return DropReason.None;
        }
        int outPort = macs.Lookup(net.Id, p.Vlan, key.DlDst, now);
        if (outPort < 0)
        {
            p.OutPort = Packet.OutFlood;
            return DropReason.None;
        }
        if (outPort == port.Id) return DropReason.OutputIsIngress;
        p.OutPort = outPort;
        return DropReason.None;
    }

    /// <summary>Applies the ingress port's VLAN mode: sets the frame's VLAN and removes its tag.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DropReason Ingress(Packet p, SwitchPort port)
    {
        ref readonly var key = ref p.Key;
        bool tagged = key.HasVlan;
        ushort vid = key.VlanId;
        if (port.Mode == VlanMode.Access)
        {
            // A priority tag (VID 0) on an access port is untagged traffic with a priority.
            if (tagged && vid != 0) return DropReason.TaggedOnAccessPort;
            p.Vlan = port.AccessVlan;
        }
        else
        {
            ushort vlan = tagged && vid != 0 ? vid : port.NativeVlan;
            if (!port.Carries(vlan)) return DropReason.VlanNotAllowed;
            p.Vlan = vlan;
        }
        if (tagged) PopTag(p);
        return DropReason.None;
    }

    /// <summary>Removes the outer 4-byte tag: moves the two addresses forward over it (12 bytes, no frame copy).</summary>
    public static void PopTag(Packet p)
    {
        var d = p.Data;
        d[..12].CopyTo(d.Slice(4, 12));
        p.TrimFront(4);
    }

    /// <summary>Inserts an 802.1Q tag after the addresses, into the headroom.</summary>
    public static void PushTag(Packet p, ushort vlan, byte pcp)
    {
        p.Prepend(4);
        var d = p.Data;
        d.Slice(4, 12).CopyTo(d[..12]);
        BinaryPrimitives.WriteUInt16BigEndian(d[12..], EtherTypes.Vlan);
        BinaryPrimitives.WriteUInt16BigEndian(d[14..], (ushort)((pcp & 7) << 13 | (vlan & 0xFFF)));
    }
}
