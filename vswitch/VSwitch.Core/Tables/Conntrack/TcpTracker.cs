using VSwitch.Core.Flow;
namespace VSwitch.Core.Tables.Conntrack;

/// <summary>
/// TCP's state across a connection's packets, after netfilter's tcp_conntracks table, without its
/// window tracking: enough to give each state its timeout and to call a stray RST or SYN invalid.
/// </summary>
public static class TcpTracker
{
    public const ushort Fin = 0x01, Syn = 0x02, Rst = 0x04, Ack = 0x10;

    /// <summary>Flags that no connection sends: SYN with FIN or RST, or no flag at all.</summary>
    public static bool IsBogus(ushort flags) =>
        (flags & (Syn | Fin | Rst | Ack)) == 0 || (flags & Syn) != 0 && (flags & (Fin | Rst)) != 0;

    /// <summary>The state a connection starts in when its first packet has these flags.</summary>
    public static TcpConnState Initial(ushort flags, out bool pickedUp)
    {
        pickedUp = (flags & Syn) == 0;
        return pickedUp ? TcpConnState.Established : TcpConnState.SynSent;
    }

    /// <summary>Moves the state on for one packet; false when the packet cannot belong to the connection.</summary>
    public static bool Step(ref ConnEntry e, bool reply, ushort flags)
    {
        if (IsBogus(flags)) return false;
        if ((flags & Rst) != 0) { e.Tcp = TcpConnState.Close; return true; }
        switch (e.Tcp)
        {
            case TcpConnState.SynSent:
                if (reply && (flags & (Syn | Ack)) == (Syn | Ack)) e.Tcp = TcpConnState.SynRecv;
                else if (reply && (flags & Syn) != 0) e.Tcp = TcpConnState.SynRecv; // simultaneous open
                // Another answer (a challenge ACK from a TIME_WAIT that still holds the tuple, an RST handled above):
                // let it through as netfilter does, so that the SYN's retransmission can open the connection.
                return true;
            case TcpConnState.SynRecv:
                if (!reply && (flags & Ack) != 0 && (flags & Syn) == 0) e.Tcp = TcpConnState.Established;
                return true;
            case TcpConnState.TimeWait:
            case TcpConnState.Close:
                // A new SYN on the same tuple reopens it (netfilter lets TIME_WAIT be reused this way).
                if (!reply && (flags & (Syn | Ack)) == Syn)
                {
                    e.Tcp = TcpConnState.SynSent;
                    e.Flags &= ~(ConnFlags.SeenReply | ConnFlags.Assured | ConnFlags.FinOrig | ConnFlags.FinReply);
                }
                return true;
        }
        if ((flags & Fin) != 0)
        {
            e.Flags |= reply ? ConnFlags.FinReply : ConnFlags.FinOrig;
            e.Tcp = (e.Flags & (ConnFlags.FinOrig | ConnFlags.FinReply)) == (ConnFlags.FinOrig | ConnFlags.FinReply)
                ? TcpConnState.LastAck
                : e.Tcp == TcpConnState.Established ? TcpConnState.FinWait : e.Tcp;
            return true;
        }
        if ((flags & Ack) != 0)
        {
            if (e.Tcp == TcpConnState.LastAck) e.Tcp = TcpConnState.TimeWait;
            else if (e.Tcp == TcpConnState.FinWait && (e.Flags & (reply ? ConnFlags.FinOrig : ConnFlags.FinReply)) != 0)
                e.Tcp = TcpConnState.CloseWait; // the other side acknowledged the first FIN
            if (e.Tcp == TcpConnState.Established && (e.Flags & ConnFlags.SeenReply) != 0) e.Flags |= ConnFlags.Assured;
        }
        return true;
    }
}
