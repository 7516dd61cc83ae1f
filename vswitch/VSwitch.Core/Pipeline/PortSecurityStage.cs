using System.Runtime.CompilerServices;
using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// Port security, right after classify (where OVN checks its <c>port_security</c>): on every port a
/// frame whose source MAC is not a unicast address is refused (it must never be learned); on a port
/// with <see cref="SwitchPort.Security"/> the frame must come from the port's MAC and, for IPv4, IPv6,
/// ARP and neighbour discovery, from one of its addresses.
///
/// It runs on every packet, not only on a flow-cache miss: the ARP sender and ND option fields it
/// checks are partly outside the flow key, and a check per packet costs a few compares (a test holds
/// the stage to zero allocations; the benchmark in bench/RESULTS.md gives its ns per packet).
/// Policy (network policy with identities) belongs after this stage: it can trust the source addresses.
/// </summary>
public sealed class PortSecurityStage : Stage
{
    public override string Name => "port-security";

    public override IReadOnlyList<DropReason> DropReasons { get; } =
    [
        DropReason.InvalidSourceMac, DropReason.PortSecurityMac, DropReason.PortSecurityIp,
        DropReason.PortSecurityArp, DropReason.PortSecurityNd,
    ];

    private const ushort DhcpClientPort = 68, DhcpServerPort = 67;

    public override void Process(PacketBatch batch, DatapathContext ctx)
    {
        var items = batch.Items;
        int n = batch.Count, kept = 0;
        var topo = ctx.Topology;
        // A batch comes from one port's receive: look the port's settings up once per port, not per packet.
        int lastPort = -1;
        PortSecurity? sec = null;
        for (int i = 0; i < n; i++)
        {
            var p = items[i];
            ulong src = p.Key.DlSrc;
            DropReason reason;
            // A synthetic trace without dl_src has an all-zero source: it means "not given", not a bad frame.
            if (src == 0 && ctx.DryRun)
            {
                p.Trace?.Add(Name, "no source MAC given (dl_src): port security is not checked");
                if (kept != i) items[kept] = p;
                kept++;
                continue;
            }
            // All-zero, or the group bit set (multicast and broadcast): no station sends from those.
            if (src == 0 || (src & (1UL << 40)) != 0) reason = DropReason.InvalidSourceMac;
            else
            {
                if (p.InPort != lastPort)
                {
                    lastPort = p.InPort;
                    sec = topo.Port(lastPort)?.Security;
                }
                reason = sec is null ? DropReason.None : Check(p, sec);
            }
            if (p.Trace is { } t) Trace(t, p, reason, topo);
            if (reason != DropReason.None) ctx.Drop(p, reason);
            else
            {
                if (kept != i) items[kept] = p;
                kept++;
            }
        }
        Compact(batch, kept);
    }

    /// <summary>Why the frame breaks the port's security, or None.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DropReason Check(Packet p, PortSecurity sec)
    {
        ref readonly var key = ref p.Key;
        if (key.DlSrc != sec.Mac) return DropReason.PortSecurityMac;
        return key.DlType switch
        {
            EtherTypes.IPv4 => CheckIPv4(in key, sec),
            EtherTypes.IPv6 => CheckIPv6(p, sec),
            EtherTypes.Arp => CheckArp(in key, sec),
            _ => DropReason.None,
        };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static DropReason CheckIPv4(in FlowKey key, PortSecurity sec)
    {
        uint src = (uint)key.NwSrc;
        if (sec.AllowsIPv4(src)) return DropReason.None;
        // A DHCP client has no address yet: 0.0.0.0:68 to the broadcast address's port 67 (OVN allows the same).
        if (src == 0 && (uint)key.NwDst == 0xFFFF_FFFF && key.NwProto == IpProtocols.Udp && key.TpSrc == DhcpClientPort && key.TpDst == DhcpServerPort)
            return DropReason.None;
        return DropReason.PortSecurityIp;
    }

    private static DropReason CheckArp(in FlowKey key, PortSecurity sec)
    {
        if (key.ArpSha != sec.Mac) return DropReason.PortSecurityArp;
        uint spa = (uint)key.NwSrc;
        // Sender 0.0.0.0 is an ARP probe (RFC 5227 duplicate detection): it claims nothing.
        return spa == 0 || sec.AllowsIPv4(spa) ? DropReason.None : DropReason.PortSecurityArp;
    }

    private static DropReason CheckIPv6(Packet p, PortSecurity sec)
    {
        ref readonly var key = ref p.Key;
        bool icmp = key.NwProto == IpProtocols.IcmpV6 && key.NwFrag == 0;
        byte type = (byte)key.TpSrc;
        if (!sec.AllowsIPv6(key.NwSrc))
        {
            // The unspecified source belongs to duplicate address detection (NS) and the MLD reports
            // a host sends before it has an address (RFC 4862 §5.4.2, RFC 3590), all to ff02::/16.
            bool dad = key.NwSrc == UInt128.Zero && icmp && (type is 131 or IcmpV6Header.NeighborSolicitation or 143)
                && (ulong)(key.NwDst >> 112) == 0xFF02;
            if (!dad) return DropReason.PortSecurityIp;
        }
        if (icmp && type is IcmpV6Header.NeighborSolicitation or IcmpV6Header.NeighborAdvertisement) return CheckNd(p, sec, type);
        return DropReason.None;
    }

    /// <summary>
    /// ND's link-layer address options must name the port's MAC, and an advertisement may only be for
    /// one of its addresses: these fields are not in the flow key, so every ND frame is read here.
    /// </summary>
    private static DropReason CheckNd(Packet p, PortSecurity sec, byte type)
    {
        var frame = p.Data;
        if (!EthernetHeader.TryCreate(frame, out var eth, out _) || !IPv6Header.TryCreate(eth.Payload, out var ip, out _))
            return DropReason.PortSecurityNd;
        var payload = ip.Payload;
        if (!IPv6Extensions.Walk(payload, ip.NextHeader, out _, out int offset, out _)
            || !NeighborDiscovery.TryCreate(payload[offset..], out var nd))
            return DropReason.PortSecurityNd;
        if (type == IcmpV6Header.NeighborSolicitation)
            return nd.LinkLayerOptionsAre(NeighborDiscovery.SourceLinkLayerOption, sec.Mac) ? DropReason.None : DropReason.PortSecurityNd;
        return nd.LinkLayerOptionsAre(NeighborDiscovery.TargetLinkLayerOption, sec.Mac) && sec.AllowsIPv6(nd.Target)
            ? DropReason.None : DropReason.PortSecurityNd;
    }

    // Not inline: a lambda in Process would allocate its closure on every batch, traced or not.
    private void Trace(PacketTrace t, Packet p, DropReason reason, SwitchTopology topo)
    {
        var port = topo.Port(p.InPort);
        if (reason == DropReason.InvalidSourceMac)
            t.Add(Name, $"source MAC {MacAddress.Format(p.Key.DlSrc)} is not a unicast address: refused on every port");
        else if (port?.Security is not { } sec)
            t.Add(Name, $"port {port?.Name ?? p.InPort.ToString()}: port security off");
        else if (reason == DropReason.None)
            t.Add(Name, $"port {port.Name}: source {MacAddress.Format(sec.Mac)} and its addresses match the port's");
        else
            t.Add(Name, $"port {port.Name} allows only MAC {MacAddress.Format(sec.Mac)}"
                + (sec.ChecksIPv4 ? " with " + string.Join(", ", sec.IPv4.Select(AddressFormat.IPv4)) : "") + $": {reason.Name()}");
    }
}
