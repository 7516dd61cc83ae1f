using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Tables.Conntrack;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// The <c>ct(commit)</c> action: enters a new connection with what the conntrack stage chose for it
/// (a backend's destination NAT, a hairpin's source NAT) and, when the slow path asked for it, a
/// masquerade: a source NAT to the host's address with a free port.
/// </summary>
public static class ConntrackCommit
{
    /// <summary>False when the packet was dropped (table full, no port left).</summary>
    public static bool Commit(Packet p, uint snatAddress, DatapathContext ctx)
    {
        var state = (CtState)p.Key.CtState;
        if ((state & CtState.New) == 0 || (state & CtState.Tracked) == 0) return true;
        var table = ctx.Datapath.Conntrack;
        long now = ctx.NowMs;
        var orig = p.Ct.Orig;
        // The stage found the connection (and translated the packet): nothing to enter.
        if (p.Ct.Index >= 0) return true;
        // Entered meanwhile, by an earlier packet of this batch or another thread: follow that entry.
        if (table.Lookup(in orig, now, out int found, out _))
        {
            p.Ct.Index = found;
            ref var known = ref table.Entry(found);
            if (known.IsNat)
            {
                var to = known.Reply.Reverse();
                PacketNat.Rewrite(p, in to);
            }
            return true;
        }
        if (ConnTuple.From(in p.Key, p.Data, out var cur) != ConnTuple.Kind.Connection) return true;
        var flags = ConnFlags.None;
        if (p.Ct.PendingDnat) flags |= ConnFlags.DstNat;
        if (p.Ct.PendingSnat) flags |= ConnFlags.SrcNat;
        if (p.Ct.PickedUp) flags |= ConnFlags.PickedUp;
        if (snatAddress != 0 && cur.Family == 4)
        {
            if (ctx.DryRun)
            {
                p.Trace?.Add("actions", $"would masquerade {cur.Format()} behind {AddressFormat.IPv4(snatAddress)}");
                return true;
            }
            // The north-south range: the host steers replies to exactly these ports back to the switch.
            var ns = ctx.Datapath.NorthSouth;
            ushort port = table.FreeSourcePort(in cur, cur.Reverse(), snatAddress, ns.PortLow, ns.PortHigh, now, reuseClosing: IsSyn(p));
            if (port == 0) { ctx.Drop(p, DropReason.NatPortsExhausted); return false; }
            var to = cur;
            to.Src = snatAddress;
            to.SrcPort = port;
            if (cur.Proto is IpProtocols.Icmp) to.DstPort = port;
            PacketNat.Rewrite(p, in to);
            cur = to;
            flags |= ConnFlags.SrcNat;
        }
        if (ctx.DryRun)
        {
            p.Trace?.Add("actions", $"would commit {orig.Format()}" + (orig.Equals(cur) ? "" : $" as {cur.Format()}"));
            return true;
        }
        var tcp = TcpConnState.None;
        long timeout;
        if (cur.Proto == IpProtocols.Tcp)
        {
            tcp = TcpTracker.Initial(p.Key.TcpFlags, out _);
            timeout = table.Timeouts.ForTcp(tcp);
        }
        else timeout = 1000L * (cur.Proto == IpProtocols.Udp ? table.Timeouts.Udp : table.Timeouts.Icmp);
        var result = table.Commit(in orig, cur.Reverse(), now, timeout, flags, tcp, p.Ct.Label, out int index, reuseClosing: IsSyn(p));
        if (result == ConntrackTable.CommitResult.Full)
        {
            p.Trace?.Add("actions", $"conntrack table full ({table.Capacity} connections): {orig.Format()} refused");
            ctx.Drop(p, DropReason.ConntrackFull);
            return false;
        }
        p.Ct.Index = index;
        if ((flags & ConnFlags.SrcNat) != 0 && !p.Ct.PendingSnat) Interlocked.Increment(ref table.Masqueraded);
        ref var e = ref table.Entry(index);
        e.PacketsOrig++;
        e.BytesOrig += p.Length;
        p.Trace?.Add("actions", $"ct(commit): {orig.Format()}" + (orig.Equals(cur) ? "" : $", translated to {cur.Format()}"));
        return true;
    }

    /// <summary>A TCP SYN (no ACK): a connection's first packet, which may reuse the tuple of one that is over.</summary>
    private static bool IsSyn(Packet p) => p.Key.NwProto == IpProtocols.Tcp && (p.Key.TcpFlags & (TcpTracker.Syn | TcpTracker.Ack)) == TcpTracker.Syn;
}
