using System.Globalization;
using System.Net;
using System.Net.Sockets;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Tables.Rules;

/// <summary>A rule that does not parse; <see cref="Token"/> is the part that is wrong.</summary>
public sealed class RuleSyntaxException(string message, string token, int position) : FormatException(message)
{
    public string Token { get; } = token;
    public int Position { get; } = position;
}

/// <summary>What a rule's text parses to before it becomes a <see cref="Rule"/>.</summary>
public sealed record ParsedRule(int Priority, FlowMatch Match, FlowAction[]? Actions, ulong Cookie, int IdleTimeout, int HardTimeout, bool HasPriority)
{
    public Rule ToRule() => new(Priority, Match, Actions ?? [], Cookie, IdleTimeout, HardTimeout);
}

/// <summary>
/// Parses rules in ovs-ofctl's syntax: <c>priority=100,in_port=tap1,ip,nw_dst=10.1.0.0/24,actions=output:tap2</c>.
/// Ports are named (or numbered); <paramref name="portId"/> resolves names. Every error names the
/// token that is wrong and where it starts.
/// </summary>
public static class RuleParser
{
    public const int DefaultPriority = 32768; // OpenFlow's default, as in ovs-ofctl

    public static Rule ParseRule(string text, Func<string, int?> portId) => Parse(text, portId, requireActions: true).ToRule();

    /// <summary>A match alone (for deleting rules), with optional priority; actions are refused.</summary>
    public static ParsedRule ParseMatch(string text, Func<string, int?> portId) => Parse(text, portId, requireActions: false);

    public static ParsedRule Parse(string text, Func<string, int?> portId, bool requireActions)
    {
        var m = new FlowMatch();
        int priority = DefaultPriority;
        bool hasPriority = false;
        ulong cookie = 0;
        int idle = 0, hard = 0;
        FlowAction[]? actions = null;
        var needs = new List<(string Field, string Token, int Pos, Func<bool> Ok, string What)>();

        int pos = 0;
        string s = text.Trim();
        while (pos < s.Length)
        {
            int comma = s.IndexOf(',', pos);
            string tok = (comma < 0 ? s[pos..] : s[pos..comma]).Trim();
            int tokPos = pos;
            int eq = tok.IndexOf('=');
            string name = (eq < 0 ? tok : tok[..eq]).Trim().ToLowerInvariant();
            string val = eq < 0 ? "" : tok[(eq + 1)..].Trim();
            if (name == "actions")
            {
                if (!requireActions) throw Error("actions are not allowed here (give only a match)", tok, tokPos);
                string rest = s[(tokPos + tok.IndexOf('=') + 1)..];
                actions = ParseActions(rest, portId, tokPos + tok.IndexOf('=') + 1);
                break;
            }
            if (tok.Length == 0) throw Error("empty field (two commas in a row?)", tok, tokPos);
            pos = comma < 0 ? s.Length : comma + 1;

            if (eq < 0)
            {
                // A keyword's dl_type can conflict with an earlier one ("ip,arp"): a syntax error at this token too.
                try
                {
                    switch (name)
                    {
                        case "ip": SetType(m, EtherTypes.IPv4); break;
                        case "ipv6": SetType(m, EtherTypes.IPv6); break;
                        case "arp": SetType(m, EtherTypes.Arp); break;
                        case "tcp": SetType(m, EtherTypes.IPv4); SetProto(m, IpProtocols.Tcp); break;
                        case "udp": SetType(m, EtherTypes.IPv4); SetProto(m, IpProtocols.Udp); break;
                        case "icmp": SetType(m, EtherTypes.IPv4); SetProto(m, IpProtocols.Icmp); break;
                        case "tcp6": SetType(m, EtherTypes.IPv6); SetProto(m, IpProtocols.Tcp); break;
                        case "udp6": SetType(m, EtherTypes.IPv6); SetProto(m, IpProtocols.Udp); break;
                        case "icmp6": SetType(m, EtherTypes.IPv6); SetProto(m, IpProtocols.IcmpV6); break;
                        default: throw Error($"unknown field '{tok}' (expected name=value or one of ip, ipv6, arp, tcp, udp, icmp, tcp6, udp6, icmp6)", tok, tokPos);
                    }
                }
                catch (FormatException e) when (e is not RuleSyntaxException)
                {
                    throw Error($"'{tok}' {e.Message}", tok, tokPos);
                }
                continue;
            }
            if (val.Length == 0) throw Error($"'{name}' needs a value", tok, tokPos);
            try
            {
                switch (name)
                {
                    case "priority": priority = Int(val, 0, 65535); hasPriority = true; break;
                    case "cookie": cookie = ULong(val); break;
                    case "idle_timeout": idle = Int(val, 0, 65535); break;
                    case "hard_timeout": hard = Int(val, 0, 65535); break;
                    case "in_port":
                        m.Value.InPort = (ushort)Port(val, portId);
                        m.Mask.InPort = 0xFFFF;
                        break;
                    case "dl_src": (m.Value.DlSrc, m.Mask.DlSrc) = MacMasked(val); break;
                    case "dl_dst": (m.Value.DlDst, m.Mask.DlDst) = MacMasked(val); break;
                    case "dl_vlan":
                        if (val is "none" or "0xffff") { m.Mask.VlanPcp |= FlowKey.VlanPresentBit; m.Value.VlanPcp &= 0x7F; }
                        else
                        {
                            m.Value.VlanId = (ushort)Int(val, 0, 4095);
                            m.Mask.VlanId = 0xFFF;
                            m.Value.VlanPcp |= FlowKey.VlanPresentBit;
                            m.Mask.VlanPcp |= FlowKey.VlanPresentBit;
                        }
                        break;
                    case "dl_vlan_pcp":
                        m.Value.VlanPcp = (byte)((m.Value.VlanPcp & 0xF8) | Int(val, 0, 7));
                        m.Mask.VlanPcp |= 7;
                        break;
                    case "dl_type": SetType(m, (ushort)Int(val, 0, 0xFFFF)); break;
                    case "nw_src" or "arp_spa":
                        (m.Value.NwSrc, m.Mask.NwSrc) = IPv4Prefix(val);
                        needs.Add((name, tok, tokPos, () => IsType(m, EtherTypes.IPv4) || IsType(m, EtherTypes.Arp), "ip or arp"));
                        break;
                    case "nw_dst" or "arp_tpa":
                        (m.Value.NwDst, m.Mask.NwDst) = IPv4Prefix(val);
                        needs.Add((name, tok, tokPos, () => IsType(m, EtherTypes.IPv4) || IsType(m, EtherTypes.Arp), "ip or arp"));
                        break;
                    case "ipv6_src":
                        (m.Value.NwSrc, m.Mask.NwSrc) = IPv6Prefix(val);
                        needs.Add((name, tok, tokPos, () => IsType(m, EtherTypes.IPv6), "ipv6"));
                        break;
                    case "ipv6_dst":
                        (m.Value.NwDst, m.Mask.NwDst) = IPv6Prefix(val);
                        needs.Add((name, tok, tokPos, () => IsType(m, EtherTypes.IPv6), "ipv6"));
                        break;
                    case "nw_proto" or "arp_op":
                        SetProto(m, (byte)Int(val, 0, 255));
                        break;
                    case "nw_tos": m.Value.NwTos = (byte)(Int(val, 0, 255) & 0xFC); m.Mask.NwTos = 0xFC; break;
                    case "nw_ttl": m.Value.NwTtl = (byte)Int(val, 0, 255); m.Mask.NwTtl = 0xFF; break;
                    case "tp_src" or "icmp_type":
                        m.Value.TpSrc = (ushort)Int(val, 0, 65535); m.Mask.TpSrc = 0xFFFF;
                        needs.Add((name, tok, tokPos, () => m.Mask.NwProto == 0xFF, "tcp, udp, icmp or nw_proto"));
                        break;
                    case "tp_dst" or "icmp_code":
                        m.Value.TpDst = (ushort)Int(val, 0, 65535); m.Mask.TpDst = 0xFFFF;
                        needs.Add((name, tok, tokPos, () => m.Mask.NwProto == 0xFF, "tcp, udp, icmp or nw_proto"));
                        break;
                    case "tcp_flags":
                        (m.Value.TcpFlags, m.Mask.TcpFlags) = TcpFlagsMasked(val);
                        needs.Add((name, tok, tokPos, () => m.Mask.NwProto == 0xFF && m.Value.NwProto == IpProtocols.Tcp, "tcp or tcp6"));
                        break;
                    case "tun_id": m.Value.TunId = (uint)Int(val, 0, 0xFFFFFF); m.Mask.TunId = 0xFFFFFFFF; break;
                    case "tun_src":
                    {
                        // The remote tunnel endpoint a frame came from (OVS's tun_src): an IPv4 address or prefix,
                        // or one IPv6 address (matched by its handle, so no prefix: handles are not ordered by address).
                        if (val.Contains(':'))
                        {
                            if (!System.Net.IPAddress.TryParse(val, out var ip6) || ip6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
                                throw Error($"tun_src: '{val}' is not an IPv4 prefix or an IPv6 address", tok, tokPos);
                            try { m.Value.TunRemote = VtepRemote.FromAddress(ip6); }
                            catch (ArgumentException e) { throw Error("tun_src: " + e.Message, tok, tokPos); }
                            m.Mask.TunRemote = uint.MaxValue;
                            break;
                        }
                        var (v4, mask4) = IPv4Prefix(val);
                        m.Value.TunRemote = (uint)v4; m.Mask.TunRemote = (uint)mask4;
                        break;
                    }
                    case "arp_sha": m.Value.ArpSha = MacAddress.Parse(val); m.Mask.ArpSha = MacAddress.Mask; break;
                    case "arp_tha": m.Value.ArpTha = MacAddress.Parse(val); m.Mask.ArpTha = MacAddress.Mask; break;
                    default: throw Error($"unknown field '{name}'", tok, tokPos);
                }
            }
            catch (FormatException e) when (e is not RuleSyntaxException)
            {
                throw Error($"bad value for {name}: {e.Message}", tok, tokPos);
            }
        }
        foreach (var n in needs)
            if (!n.Ok()) throw Error($"'{n.Field}' needs {n.What} in the match (e.g. 'ip,{n.Token}')", n.Token, n.Pos);
        if (requireActions && actions is null) throw Error("the rule has no actions (add ',actions=...')", s, 0);
        return new ParsedRule(priority, m, actions, cookie, idle, hard, hasPriority);
    }

    private static FlowAction[] ParseActions(string text, Func<string, int?> portId, int offset)
    {
        var list = new List<FlowAction>();
        int pos = 0;
        foreach (var raw in text.Split(','))
        {
            string tok = raw.Trim();
            int at = offset + pos;
            pos += raw.Length + 1;
            if (tok.Length == 0) throw Error("empty action", tok, at);
            int sep = tok.IndexOfAny([':', '=']);
            string name = (sep < 0 ? tok : tok[..sep]).ToLowerInvariant();
            string arg = sep < 0 ? "" : tok[(sep + 1)..];
            try
            {
                list.Add(name switch
                {
                    "output" when arg.Length > 0 => FlowAction.Output(Port(arg, portId)),
                    "normal" => FlowAction.Normal,
                    "flood" or "all" => FlowAction.Flood,
                    "in_port" => new FlowAction(ActionKind.InPort),
                    "drop" => FlowAction.Drop(DropReason.RuleDrop),
                    "mod_dl_src" when arg.Length > 0 => new FlowAction(ActionKind.SetDlSrc, Value: MacAddress.Parse(arg)),
                    "mod_dl_dst" when arg.Length > 0 => new FlowAction(ActionKind.SetDlDst, Value: MacAddress.Parse(arg)),
                    "mod_vlan_vid" when arg.Length > 0 => new FlowAction(ActionKind.SetVlan, Value: (ulong)Int(arg, 1, 4094)),
                    "strip_vlan" or "pop_vlan" => new FlowAction(ActionKind.StripVlan),
                    "dec_ttl" => new FlowAction(ActionKind.DecTtl),
                    "set_tunnel" when arg.Length > 0 => new FlowAction(ActionKind.SetTunnel, Value: (ulong)Int(arg, 0, 0xFFFFFF)),
                    "output" or "mod_dl_src" or "mod_dl_dst" or "mod_vlan_vid" or "set_tunnel" => throw Error($"action '{name}' needs an argument (e.g. {name}:VALUE)", tok, at),
                    _ => throw Error($"unknown action '{tok}' (known: output:PORT, normal, flood, in_port, drop, mod_dl_src:MAC, mod_dl_dst:MAC, mod_vlan_vid:N, strip_vlan, dec_ttl, set_tunnel:VNI)", tok, at),
                });
            }
            catch (FormatException e) when (e is not RuleSyntaxException)
            {
                throw Error($"bad argument for {name}: {e.Message}", tok, at);
            }
        }
        if (list.Count > 1 && list.Exists(a => a.Kind == ActionKind.Drop))
            throw Error("'drop' must be the only action", text, offset);
        if (list.Count > 32) throw Error("too many actions (at most 32)", text, offset);
        return list.Count == 1 && list[0].Kind == ActionKind.Drop ? [] : list.ToArray();
    }

    private static RuleSyntaxException Error(string message, string token, int pos) =>
        new($"{message} (at position {pos + 1}: '{token}')", token, pos);

    private static bool IsType(FlowMatch m, ushort type) => m.Mask.DlType == 0xFFFF && m.Value.DlType == type;

    private static void SetType(FlowMatch m, ushort type)
    {
        if (m.Mask.DlType == 0xFFFF && m.Value.DlType != type)
            throw new FormatException($"conflicts with an earlier dl_type 0x{m.Value.DlType:x4}");
        m.Value.DlType = type;
        m.Mask.DlType = 0xFFFF;
    }

    private static void SetProto(FlowMatch m, byte proto)
    {
        m.Value.NwProto = proto;
        m.Mask.NwProto = 0xFF;
    }

    private static int Port(string v, Func<string, int?> portId)
    {
        if (portId(v) is int id) return id;
        if (int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n is > 0 and < 65536) return n;
        throw new FormatException($"no port named '{v}'");
    }

    private static int Int(string v, int min, int max)
    {
        long n;
        bool ok = v.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? long.TryParse(v[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out n)
            : long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out n);
        if (!ok) throw new FormatException($"'{v}' is not a number");
        if (n < min || n > max) throw new FormatException($"{v} is out of range {min}..{max}");
        return (int)n;
    }

    private static readonly (string Name, ushort Bit)[] TcpFlagNames =
        [("fin", 0x001), ("syn", 0x002), ("rst", 0x004), ("psh", 0x008), ("ack", 0x010), ("urg", 0x020), ("ece", 0x040), ("cwr", 0x080), ("ns", 0x100)];

    /// <summary>OVS's two spellings: VALUE[/MASK] in numbers (0x002/0x012), or flags +syn-ack (set, unset; the rest don't care).</summary>
    private static (ushort Value, ushort Mask) TcpFlagsMasked(string v)
    {
        if (v.Length > 0 && (v[0] == '+' || v[0] == '-'))
        {
            ushort value = 0, mask = 0;
            int i = 0;
            while (i < v.Length)
            {
                char sign = v[i];
                if (sign is not ('+' or '-')) throw new FormatException($"'{v}': write flags as +syn-ack");
                int j = i + 1;
                while (j < v.Length && v[j] is not ('+' or '-')) j++;
                string flag = v[(i + 1)..j];
                ushort bit = 0;
                foreach (var (n, b) in TcpFlagNames) if (n == flag) bit = b;
                if (bit == 0) throw new FormatException($"'{flag}' is not a TCP flag (fin, syn, rst, psh, ack, urg, ece, cwr, ns)");
                mask |= bit;
                if (sign == '+') value |= bit;
                i = j;
            }
            return (value, mask);
        }
        int slash = v.IndexOf('/');
        int val = Int(slash < 0 ? v : v[..slash], 0, 0xFFF);
        int msk = slash < 0 ? 0xFFF : Int(v[(slash + 1)..], 0, 0xFFF);
        return ((ushort)(val & msk), (ushort)msk);
    }

    private static ulong ULong(string v)
    {
        bool ok = v.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(v[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong n)
            : ulong.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out n);
        return ok ? n : throw new FormatException($"'{v}' is not a number");
    }

    private static (ulong, ulong) MacMasked(string v)
    {
        int slash = v.IndexOf('/');
        if (slash < 0) return (MacAddress.Parse(v), MacAddress.Mask);
        ulong mask = MacAddress.Parse(v[(slash + 1)..]);
        return (MacAddress.Parse(v[..slash]) & mask, mask);
    }

    private static (UInt128, UInt128) IPv4Prefix(string v)
    {
        int slash = v.IndexOf('/');
        string a = slash < 0 ? v : v[..slash];
        if (!IPAddress.TryParse(a, out var ip) || ip.AddressFamily != AddressFamily.InterNetwork || a.Count(c => c == '.') != 3)
            throw new FormatException($"'{a}' is not an IPv4 address");
        int len = slash < 0 ? 32 : Int(v[(slash + 1)..], 0, 32);
        uint addr = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(ip.GetAddressBytes());
        uint mask = len == 0 ? 0 : uint.MaxValue << (32 - len);
        return (addr & mask, mask);
    }

    private static (UInt128, UInt128) IPv6Prefix(string v)
    {
        int slash = v.IndexOf('/');
        string a = slash < 0 ? v : v[..slash];
        if (!IPAddress.TryParse(a, out var ip) || ip.AddressFamily != AddressFamily.InterNetworkV6)
            throw new FormatException($"'{a}' is not an IPv6 address");
        int len = slash < 0 ? 128 : Int(v[(slash + 1)..], 0, 128);
        UInt128 addr = System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(ip.GetAddressBytes());
        UInt128 mask = len == 0 ? UInt128.Zero : UInt128.MaxValue << (128 - len);
        return (addr & mask, mask);
    }
}
