using VSwitch.Core.Flow;

namespace VSwitch.Core.Tables.Conntrack;

/// <summary>TCP's states as netfilter tracks them (nf_conntrack_proto_tcp), simplified: no window tracking.</summary>
public enum TcpConnState : byte
{
    None, SynSent, SynRecv, Established, FinWait, CloseWait, LastAck, TimeWait, Close,
}

[Flags]
public enum ConnFlags : byte
{
    None = 0,
    /// <summary>A packet was seen in the reply direction.</summary>
    SeenReply = 1,
    /// <summary>Both directions carried data past the handshake (netfilter's ASSURED): not evicted first.</summary>
    Assured = 2,
    SrcNat = 4,
    DstNat = 8,
    /// <summary>Taken up in the middle (a TCP segment without SYN and no entry: after a restart, or a flush).</summary>
    PickedUp = 16,
    FinOrig = 32,
    FinReply = 64,
}

/// <summary>
/// One tracked connection: both directions' tuples (the reply tuple is what the answer looks like
/// after NAT), TCP state, counters and expiry. A struct in a segmented array, so that a million of them
/// cost no object headers and no GC work.
/// </summary>
public struct ConnEntry
{
    public ConnTuple Orig;
    public ConnTuple Reply;
    internal int NextOrig, NextReply;
    public long CreatedMs;
    public long LastSeenMs;
    public long ExpiresMs;
    public long PacketsOrig, BytesOrig, PacketsReply, BytesReply;
    /// <summary>The flush epoch it was made in; an older one is gone.</summary>
    internal int Epoch;
    /// <summary>Who made it, for counters: a service backend's id, a published port's (0: nobody in particular).</summary>
    public int Label;
    internal byte Live;
    public TcpConnState Tcp;
    public ConnFlags Flags;

    public readonly bool IsNat => (Flags & (ConnFlags.SrcNat | ConnFlags.DstNat)) != 0;
}

/// <summary>Timeouts in seconds, netfilter's defaults (net.netfilter.nf_conntrack_*_timeout_*).</summary>
public sealed record ConntrackTimeouts
{
    public int TcpSynSent { get; init; } = 120;
    public int TcpSynRecv { get; init; } = 60;
    public int TcpEstablished { get; init; } = 432000;
    public int TcpFinWait { get; init; } = 120;
    public int TcpCloseWait { get; init; } = 60;
    public int TcpLastAck { get; init; } = 30;
    public int TcpTimeWait { get; init; } = 120;
    public int TcpClose { get; init; } = 10;
    public int Udp { get; init; } = 30;
    /// <summary>UDP once both directions were seen (netfilter's udp_timeout_stream).</summary>
    public int UdpStream { get; init; } = 120;
    public int Icmp { get; init; } = 30;

    public static readonly ConntrackTimeouts Default = new();

    public long ForTcp(TcpConnState s) => 1000L * s switch
    {
        TcpConnState.SynSent => TcpSynSent,
        TcpConnState.SynRecv => TcpSynRecv,
        TcpConnState.Established => TcpEstablished,
        TcpConnState.FinWait => TcpFinWait,
        TcpConnState.CloseWait => TcpCloseWait,
        TcpConnState.LastAck => TcpLastAck,
        TcpConnState.TimeWait => TcpTimeWait,
        _ => TcpClose,
    };
}
