using System.Net;
using VSwitch.Api;
using VSwitch.Core.Flow;
using VSwitch.Core.Tables.Conntrack;
using VSwitch.Core.Wire;

namespace VSwitchd.Runtime;

// The conntrack table as the API shows it (conntrack -L, -F).
public sealed partial class SwitchRuntime
{
    public const int DefaultConntrackListLimit = 10_000;

    public ConntrackView Conntrack(string? proto, string? src, string? dst, int? port, string? state, string? nat, int? limit)
    {
        byte? p = proto?.Trim().ToLowerInvariant() switch
        {
            null or "" => null,
            "tcp" => IpProtocols.Tcp,
            "udp" => IpProtocols.Udp,
            "icmp" => IpProtocols.Icmp,
            "icmpv6" or "icmp6" => IpProtocols.IcmpV6,
            _ => throw new InvalidRequestException($"proto: '{proto}' is not tcp, udp, icmp or icmpv6"),
        };
        UInt128? s = Address("src", src), d = Address("dst", dst);
        if (port is < 0 or > 65535) throw new InvalidRequestException($"port: {port} must be 0..65535");
        TcpConnState? st = null;
        if (!string.IsNullOrWhiteSpace(state))
        {
            if (!Enum.TryParse<TcpConnState>(state.Replace("_", ""), ignoreCase: true, out var parsed) || parsed == TcpConnState.None)
                throw new InvalidRequestException($"state: '{state}' is not a TCP state (SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE)");
            st = parsed;
        }
        ConnFlags natFlag = nat?.Trim().ToLowerInvariant() switch
        {
            null or "" => ConnFlags.None,
            "dnat" => ConnFlags.DstNat,
            "snat" => ConnFlags.SrcNat,
            _ => throw new InvalidRequestException($"nat: '{nat}' is not dnat or snat"),
        };
        int max = limit ?? DefaultConntrackListLimit;
        if (max < 1) throw new InvalidRequestException($"limit: {limit} must be at least 1");

        var dp = Datapath;
        var drops = dp.ReadDropCounters();
        bool tracking = dp.ConntrackConfig.Track;
        var table = tracking ? dp.Conntrack : null;
        long now = Environment.TickCount64;
        var list = new List<ConnectionView>();
        bool truncated = false;
        if (table is not null)
        {
            foreach (var e in table.Snapshot(now, e =>
                (p is null || e.Orig.Proto == p)
                && (s is null || e.Orig.Src == s)
                && (d is null || e.Orig.Dst == d)
                && (port is null || e.Orig.SrcPort == port || e.Orig.DstPort == port || e.Reply.SrcPort == port || e.Reply.DstPort == port)
                && (st is null || e.Tcp == st)
                && (natFlag == ConnFlags.None || (e.Flags & natFlag) != 0)))
            {
                if (list.Count >= max) { truncated = true; break; }
                list.Add(View(e, now));
            }
        }
        return new ConntrackView(tracking, table?.Count ?? 0, dp.ConntrackCapacity, table?.Created ?? 0, table?.Removed ?? 0,
            drops[(int)DropReason.ConntrackFull], drops[(int)DropReason.CtInvalid], [.. list], truncated);
    }

    /// <summary>Forgets every tracked connection (conntrack -F); the number there was.</summary>
    public int FlushConntrack()
    {
        if (!Datapath.ConntrackConfig.Track) return 0;
        var t = Datapath.Conntrack;
        int n = t.Snapshot(Environment.TickCount64).Count;
        t.Flush();
        _log.LogInformation("conntrack flushed: {Count} connections forgotten", n);
        return n;
    }

    private static UInt128? Address(string name, string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        if (!IPAddress.TryParse(text.Trim(), out var a)) throw new InvalidRequestException($"{name}: '{text}' is not an IP address");
        return AddressFormat.ToKey(a);
    }

    private static ConnectionView View(ConnEntry e, long now)
    {
        string A(UInt128 a) => e.Orig.Family == 4 ? AddressFormat.IPv4((uint)a) : AddressFormat.IPv6(a);
        string proto = e.Orig.Proto switch
        {
            IpProtocols.Tcp => "tcp", IpProtocols.Udp => "udp", IpProtocols.Icmp => "icmp", IpProtocols.IcmpV6 => "icmpv6",
            _ => e.Orig.Proto.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        var status = new List<string>();
        if ((e.Flags & ConnFlags.SeenReply) == 0) status.Add("UNREPLIED");
        if ((e.Flags & ConnFlags.Assured) != 0) status.Add("ASSURED");
        if ((e.Flags & ConnFlags.PickedUp) != 0) status.Add("PICKED_UP");
        string? nat = ((e.Flags & ConnFlags.DstNat) != 0, (e.Flags & ConnFlags.SrcNat) != 0) switch
        {
            (true, true) => "dnat,snat", (true, false) => "dnat", (false, true) => "snat", _ => null,
        };
        return new ConnectionView(proto, e.Orig.Proto == IpProtocols.Tcp ? TcpStateName(e.Tcp) : null, [.. status],
            A(e.Orig.Src), e.Orig.SrcPort, A(e.Orig.Dst), e.Orig.DstPort, A(e.Reply.Src), e.Reply.SrcPort, A(e.Reply.Dst), e.Reply.DstPort,
            nat, Math.Round((e.ExpiresMs - now) / 1000.0, 1), Math.Round((now - e.CreatedMs) / 1000.0, 1),
            e.PacketsOrig, e.BytesOrig, e.PacketsReply, e.BytesReply, e.Label);
    }

    /// <summary>netfilter's names: SYN_SENT, ESTABLISHED, TIME_WAIT...</summary>
    public static string TcpStateName(TcpConnState s) => s switch
    {
        TcpConnState.SynSent => "SYN_SENT", TcpConnState.SynRecv => "SYN_RECV", TcpConnState.Established => "ESTABLISHED",
        TcpConnState.FinWait => "FIN_WAIT", TcpConnState.CloseWait => "CLOSE_WAIT", TcpConnState.LastAck => "LAST_ACK",
        TcpConnState.TimeWait => "TIME_WAIT", TcpConnState.Close => "CLOSE", _ => "NONE",
    };
}
