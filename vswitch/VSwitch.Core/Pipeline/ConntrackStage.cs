using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Tables.Conntrack;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// Connection tracking, before the flow lookup (OVS's <c>ct(nat)</c> and recirculation, done in one
/// pass): each IP packet is looked up in the shared <see cref="ConntrackTable"/>; a packet of a known
/// connection is counted, moves TCP's state on and is translated as its connection's NAT says; the
/// first packet of a connection to a frontend (a service VIP, a published port) gets its backend
/// chosen and its destination translated. The result goes into the flow key's <c>ct_state</c>, so the
/// flow cache keeps new and established packets apart and the slow path decides on them
/// (policy for +new, a <c>ct(commit)</c> to enter the connection). Nothing is committed here.
/// With no service, policy or NAT configured the stage returns at once.
/// </summary>
public sealed class ConntrackStage : Stage
{
    public override string Name => "conntrack";

    public override IReadOnlyList<DropReason> DropReasons { get; } = [DropReason.CtInvalid, DropReason.NoBackend];

    /// <summary>Entries looked at for expiry per sweep; a sweep runs at most every 100 ms per thread.</summary>
    public const int SweepBudget = 2048;

    public override void Process(PacketBatch batch, DatapathContext ctx)
    {
        var cfg = ctx.Datapath.ConntrackConfig;
        if (!cfg.Track) return;
        var table = ctx.Datapath.Conntrack;
        long now = ctx.NowMs;
        if (!ctx.DryRun && now - ctx.LastConntrackSweepMs >= 100)
        {
            ctx.LastConntrackSweepMs = now;
            table.Sweep(now, SweepBudget);
        }
        var items = batch.Items;
        int n = batch.Count, kept = 0;
        for (int i = 0; i < n; i++)
        {
            var p = items[i];
            var reason = Track(p, cfg, table, ctx, now);
            if (reason != DropReason.None) ctx.Drop(p, reason);
            else
            {
                if (kept != i) items[kept] = p;
                kept++;
            }
        }
        Compact(batch, kept);
    }

    private DropReason Track(Packet p, ConntrackConfig cfg, ConntrackTable table, DatapathContext ctx, long now)
    {
        p.Ct = default;
        p.Ct.Index = -1;
        p.Ct.TcpFlags = p.Key.TcpFlags;
        var kind = ConnTuple.From(in p.Key, p.Data, out var t);
        var trace = p.Trace;
        switch (kind)
        {
            case ConnTuple.Kind.Untracked:
                p.Key.CtState = 0;
                return DropReason.None;
            case ConnTuple.Kind.IcmpError:
                return Related(p, in t, table, now, trace);
        }
        var state = CtState.Tracked;
        bool known = table.Lookup(in t, now, out int idx, out bool reply);
        if (known && IsReuse(ref table.Entry(idx), reply, t.Proto, p.Key.TcpFlags))
        {
            // A client reusing the ports of a closed connection to a frontend opens a new one: its backend is chosen
            // again (the old one may be drained or dead), as netfilter and IPVS (conn_reuse_mode) do. The old entry goes.
            trace?.Add(Name, $"{t.Format()}: SYN on a closed connection ({table.Entry(idx).Tcp}): the old one ends, a new one starts");
            if (!ctx.DryRun) table.Remove(idx, now);
            known = false;
        }
        if (known)
        {
            ref var e = ref table.Entry(idx);
            if (!ctx.DryRun && !table.Update(idx, reply, t.Proto, p.Key.TcpFlags, p.Length, now))
            {
                p.Key.CtState = (byte)(CtState.Tracked | CtState.Invalid);
                trace?.Add(Name, $"{t.Format()}: TCP flags {p.Key.TcpFlags:x} do not fit the connection ({e.Tcp}): invalid, drop");
                return DropReason.CtInvalid;
            }
            state |= reply || (e.Flags & ConnFlags.SeenReply) != 0 ? CtState.Established : CtState.New;
            if (reply) state |= CtState.Reply;
            if ((e.Flags & ConnFlags.SrcNat) != 0) state |= CtState.SrcNat;
            if ((e.Flags & ConnFlags.DstNat) != 0) state |= CtState.DstNat;
            p.Ct.Index = idx;
            p.Ct.Reply = reply;
            p.Ct.Orig = e.Orig;
            p.Ct.Label = e.Label;
            if (e.IsNat)
            {
                var to = reply ? e.Orig.Reverse() : e.Reply.Reverse();
                PacketNat.Rewrite(p, in to);
                trace?.Add(Name, $"{(reply ? "reply of" : "packet of")} {e.Orig.Format()} ({e.Tcp}{(e.Tcp == TcpConnState.None ? "" : ", ")}{CtStates.Describe(state)}): translated to {to.Format()}");
            }
            else trace?.Add(Name, $"{(reply ? "reply of" : "packet of")} {e.Orig.Format()}: {CtStates.Describe(state)}{(t.Proto == IpProtocols.Tcp ? ", tcp " + e.Tcp : "")}");
            p.Key.CtState = (byte)state;
            return DropReason.None;
        }

        // A new connection.
        if (t.Proto == IpProtocols.Tcp)
        {
            ushort f = p.Key.TcpFlags;
            bool synAck = (f & (TcpTracker.Syn | TcpTracker.Ack)) == (TcpTracker.Syn | TcpTracker.Ack);
            if (TcpTracker.IsBogus(f) || (f & TcpTracker.Rst) != 0 || synAck)
            {
                p.Key.CtState = (byte)(CtState.Tracked | CtState.Invalid);
                trace?.Add(Name, $"{t.Format()}: no connection, and TCP flags {f:x} cannot open one: invalid, drop");
                return DropReason.CtInvalid;
            }
            p.Ct.PickedUp = (f & TcpTracker.Syn) == 0;
        }
        else if (t.Proto is IpProtocols.Icmp or IpProtocols.IcmpV6 && !IsEchoRequest(p, t.Family))
        {
            p.Key.CtState = (byte)(CtState.Tracked | CtState.Invalid);
            trace?.Add(Name, $"{t.Format()}: an echo reply with no request tracked: invalid, drop");
            return DropReason.CtInvalid;
        }
        state |= CtState.New;
        p.Ct.Orig = t;
        if (cfg.TryFrontend(t.Proto, t.Dst, t.DstPort, out var fe) && fe is not null)
        {
            if (!fe.Picker.TryPick(in t, out var addr, out ushort port, out int label, out string? note))
            {
                p.Key.CtState = (byte)state;
                trace?.Add(Name, $"{fe.Kind} {fe.Name}: {t.Format()}: no backend can take it: drop");
                return DropReason.NoBackend;
            }
            var to = t;
            to.Dst = addr;
            to.DstPort = port;
            if (addr == t.Src)
            {
                // Hairpin: a backend calling its own service; its answer must come back through the switch.
                to.Src = fe.HairpinSource != 0 ? fe.HairpinSource : fe.Address;
                p.Ct.PendingSnat = true;
                state |= CtState.SrcNat;
            }
            PacketNat.Rewrite(p, in to);
            p.Ct.PendingDnat = true;
            p.Ct.Label = label;
            state |= CtState.DstNat;
            trace?.Add(Name, $"{fe.Kind} {fe.Name}: {Endpoint(t.Dst, t.DstPort, t.Family)} -> {Endpoint(addr, port, t.Family)}"
                + (note is null ? "" : $" ({note})") + (p.Ct.PendingSnat ? $", hairpin: source {Endpoint(to.Src, to.SrcPort, t.Family)}" : ""));
        }
        else trace?.Add(Name, $"{t.Format()}: new connection{(p.Ct.PickedUp ? " (taken up mid-stream: no SYN)" : "")}");
        p.Key.CtState = (byte)state;
        return DropReason.None;
    }

    /// <summary>A bare SYN from the client of a destination-NATed connection that is closed (TIME_WAIT, CLOSE).</summary>
    private static bool IsReuse(ref ConnEntry e, bool reply, byte proto, ushort flags) =>
        !reply && proto == IpProtocols.Tcp && (flags & (TcpTracker.Syn | TcpTracker.Ack)) == TcpTracker.Syn
        && e.Tcp is TcpConnState.TimeWait or TcpConnState.Close && (e.Flags & ConnFlags.DstNat) != 0;

    /// <summary>An ICMP error: related to the connection whose packet it quotes, translated with it; invalid when none.</summary>
    private DropReason Related(Packet p, in ConnTuple quoted, ConntrackTable table, long now, Flow.PacketTrace? trace)
    {
        // The quoted packet went the other way: its reverse is one of the connection's tuples.
        var back = quoted.Reverse();
        if (!table.Lookup(in back, now, out int idx, out bool dirReply))
        {
            p.Key.CtState = (byte)(CtState.Tracked | CtState.Invalid);
            trace?.Add(Name, $"ICMP error about {quoted.Format()}: no such connection: invalid, drop");
            return DropReason.CtInvalid;
        }
        ref var e = ref table.Entry(idx);
        var state = CtState.Tracked | CtState.Related | (dirReply ? CtState.Reply : 0);
        p.Ct.Index = idx;
        p.Ct.Reply = dirReply;
        p.Ct.Orig = e.Orig;
        if (e.IsNat)
        {
            // The quoted packet becomes what its sender sent; the error goes to that sender.
            var x = dirReply ? e.Orig : e.Reply;
            var natSide = dirReply ? e.Reply.Src : e.Orig.Src;
            var outer = new ConnTuple { Family = 4, Proto = IpProtocols.Icmp, Src = p.Key.NwSrc == natSide ? x.Dst : p.Key.NwSrc, Dst = x.Src };
            PacketNat.RewriteIcmpError(p, in outer, in x);
            trace?.Add(Name, $"ICMP error about {e.Orig.Format()}: related, translated to {x.Format()}");
        }
        else trace?.Add(Name, $"ICMP error about {e.Orig.Format()}: related");
        p.Key.CtState = (byte)state;
        return DropReason.None;
    }

    private static bool IsEchoRequest(Packet p, byte family)
    {
        var d = p.Data;
        int l4 = ConnTuple.L4Offset(in p.Key, d);
        return l4 >= 0 && d.Length > l4 && d[l4] == (family == 4 ? 8 : 128);
    }

    private static string Endpoint(UInt128 a, ushort port, byte family) =>
        family == 4 ? $"{AddressFormat.IPv4((uint)a)}:{port}" : $"[{AddressFormat.IPv6(a)}]:{port}";
}
