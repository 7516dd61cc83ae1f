using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// The router's side of neighbour discovery (RFC 4861), run by the action stage on each ND message
/// the slow path gave it (the <see cref="ActionKind.Ndp"/> action). It validates first, as §6.1 and
/// §7.1 want, and counts what it refuses: hop limit not 255 (<see cref="DropReason.NdBadHopLimit"/>),
/// a bad checksum, code, length or option (<see cref="DropReason.NdMalformed"/>). Then:
/// <list type="bullet">
/// <item>NS for one of the router's addresses: the sender is learned (STALE, §7.2.3) and answered
/// with an NA (Router, Solicited, Override); an NS for another host's address is that host's business.</item>
/// <item>NA: updates an entry the router made (§7.2.5); one for an address nobody asked about is
/// discarded and counted (<see cref="DropReason.NdUnsolicitedNa"/>): nothing is created from it.</item>
/// <item>RS: answered at once with a router advertisement, to the soliciting host.</item>
/// </list>
/// In a dry run (a synthetic trace) nothing is learned or sent; the trace says what would be.
/// </summary>
public static class NdResponder
{
    public static readonly DropReason[] Reasons = [DropReason.NdBadHopLimit, DropReason.NdMalformed, DropReason.NdUnsolicitedNa];

    private const int Eth = 14;

    public static void Handle(Packet p, DatapathContext ctx)
    {
        var topo = ctx.Topology;
        var port = topo.Port(p.InPort);
        var net = port is null ? null : topo.IngressNetwork(port, p.TunnelId);
        if (port is null || net?.Router is not { HasIPv6: true } r) { ctx.Drop(p, DropReason.NotRoutable); return; }
        var d = p.Data;
        if (!IPv6Header.TryCreate(d[Eth..], out var ip)) { ctx.Drop(p, DropReason.NdMalformed); return; }
        if (ip.HopLimit != Ndp.HopLimit) { ctx.Drop(p, DropReason.NdBadHopLimit); return; }
        UInt128 src = ip.Source, dst = ip.Destination;
        var payload = ip.Payload;
        // ND messages carry no extension headers in practice; one that does is not read (a bound on work).
        if (ip.NextHeader != IpProtocols.IcmpV6 || !IcmpV6Header.TryCreate(payload, out var icmp) || !icmp.VerifyChecksum(src, dst)
            || !NdMessage.TryCreate(payload, out var nd))
        {
            ctx.Drop(p, DropReason.NdMalformed);
            return;
        }
        ulong srcMac = MacAddress.Read(d[6..]);
        switch (nd.Type)
        {
            case Ndp.NeighborSolicitation:
                Solicitation(p, in nd, src, dst, srcMac, port, net, r, ctx);
                return;
            case Ndp.NeighborAdvertisement:
                Advertisement(p, in nd, dst, net, r, ctx);
                return;
            case Ndp.RouterSolicitation:
                RouterSolicitation(p, in nd, src, srcMac, port, net, r, ctx);
                return;
            default:
                // Another router's advertisement, a redirect: the router takes no advice from the link.
                Consume(p, ctx, "ND type " + nd.Type + " is not for the router: consumed");
                return;
        }
    }

    private static void Solicitation(Packet p, in NdMessage nd, UInt128 src, UInt128 dst, ulong srcMac, SwitchPort port, Network net,
        RouterInterface r, DatapathContext ctx)
    {
        UInt128 target = nd.Target;
        bool dad = src == UInt128.Zero;
        // §7.1.1: no multicast target; from the unspecified address only to a solicited-node group and without a link-layer option.
        if (Ndp.IsMulticast(target) || (dad && (!Ndp.IsLinkLocalMulticast(dst) || nd.LinkLayer != 0)))
        {
            ctx.Drop(p, DropReason.NdMalformed);
            return;
        }
        if (!r.Owns6(target))
        {
            Consume(p, ctx, $"NS for {AddressFormat.IPv6(target)}, not the router's: left to its owner");
            return;
        }
        if (ctx.DryRun)
        {
            Consume(p, ctx, $"NS for the router's {AddressFormat.IPv6(target)}: would learn {AddressFormat.IPv6(src)} and answer with an NA");
            return;
        }
        if (!dad && nd.LinkLayer != 0) ctx.Datapath.Neighbors6.OnSolicitation(net.Id, src, nd.LinkLayer, ctx.NowMs);
        var reply = ctx.Pool.TryRent();
        if (reply is null) { ctx.Drop(p, DropReason.PoolExhausted); return; }
        // A duplicate address detection probe is answered to all nodes, unsolicited (§7.2.4).
        Router6Packets.NeighborAdvertisement(reply, r, target, dad ? Ndp.AllNodes : src,
            dad ? Ndp.MulticastMac(Ndp.AllNodes) : (nd.LinkLayer != 0 ? nd.LinkLayer : srcMac), solicited: !dad);
        reply.CopyMetadataFrom(p);
        Consume(p, ctx, $"NS for {AddressFormat.IPv6(target)} from {AddressFormat.IPv6(src)}: learned, NA sent");
        ActionStage.Send(reply, port, ctx);
    }

    private static void Advertisement(Packet p, in NdMessage nd, UInt128 dst, Network net, RouterInterface r, DatapathContext ctx)
    {
        UInt128 target = nd.Target;
        // §7.1.2: no multicast target; a solicited NA is never sent to a group.
        if (Ndp.IsMulticast(target) || (nd.Solicited && Ndp.IsMulticast(dst)))
        {
            ctx.Drop(p, DropReason.NdMalformed);
            return;
        }
        if (ctx.DryRun)
        {
            Consume(p, ctx, $"NA for {AddressFormat.IPv6(target)}: would update the neighbour if the router asked for it");
            return;
        }
        // An NA for the router's own address (someone claims it), or for an address the router never
        // asked about, teaches nothing: the table holds only what the router resolved or was asked by.
        if (r.Owns6(target) || !ctx.Datapath.Neighbors6.OnAdvertisement(net.Id, target, nd.LinkLayer, nd.Solicited, nd.Override, ctx.NowMs))
        {
            ctx.Drop(p, DropReason.NdUnsolicitedNa);
            return;
        }
        Consume(p, ctx, $"NA for {AddressFormat.IPv6(target)} ({MacAddress.Format(nd.LinkLayer)}): neighbour updated");
    }

    private static void RouterSolicitation(Packet p, in NdMessage nd, UInt128 src, ulong srcMac, SwitchPort port, Network net,
        RouterInterface r, DatapathContext ctx)
    {
        bool unspecified = src == UInt128.Zero;
        if (unspecified && nd.LinkLayer != 0) { ctx.Drop(p, DropReason.NdMalformed); return; }
        if (ctx.DryRun)
        {
            Consume(p, ctx, "RS: would answer with a router advertisement");
            return;
        }
        // §6.2.6: the sender's link-layer address may be learned (STALE), as from an NS.
        if (!unspecified && nd.LinkLayer != 0) ctx.Datapath.Neighbors6.OnSolicitation(net.Id, src, nd.LinkLayer, ctx.NowMs);
        var ra = ctx.Pool.TryRent();
        if (ra is null) { ctx.Drop(p, DropReason.PoolExhausted); return; }
        // Unicast to the asker when it has an address (§6.2.6 allows it), else to all nodes; out of its port only.
        Router6Packets.RouterAdvertisement(ra, r, net.Mtu, unspecified ? Ndp.AllNodes : src,
            unspecified ? Ndp.MulticastMac(Ndp.AllNodes) : (nd.LinkLayer != 0 ? nd.LinkLayer : srcMac));
        ra.CopyMetadataFrom(p);
        Consume(p, ctx, "RS: router advertisement sent");
        ActionStage.Send(ra, port, ctx);
    }

    private static void Consume(Packet p, DatapathContext ctx, string what)
    {
        ctx.CountDrop(DropReason.RouterConsumed);
        p.Trace?.Add("actions", what);
        p.Release();
    }
}
