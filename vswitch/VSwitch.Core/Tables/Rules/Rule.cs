using System.Globalization;
using System.Text;
using VSwitch.Core.Flow;

namespace VSwitch.Core.Tables.Rules;

/// <summary>
/// An OpenFlow-like rule: priority, match, actions, cookie and timeouts. Its packet and byte
/// counts are those of the cached flows it produced: counted live in the flow caches, and added
/// to <see cref="RetiredPackets"/> when such a flow leaves a cache (the way OVS attributes
/// datapath flow statistics to rules).
/// </summary>
public sealed class Rule : RuleCounters
{
    public Rule(int priority, FlowMatch match, FlowAction[] actions, ulong cookie = 0, int idleTimeout = 0, int hardTimeout = 0)
    {
        Priority = priority;
        Match = match;
        Actions = actions;
        Cookie = cookie;
        IdleTimeout = idleTimeout;
        HardTimeout = hardTimeout;
    }

    public int Priority { get; }
    public FlowMatch Match { get; }
    public FlowAction[] Actions { get; }
    public ulong Cookie { get; }
    /// <summary>Seconds without a packet before the rule is removed; 0: never.</summary>
    public int IdleTimeout { get; }
    /// <summary>Seconds after installation before the rule is removed; 0: never.</summary>
    public int HardTimeout { get; }
    public long InstalledAtMs { get; internal set; }

    public override string Format(Func<int, string?>? portName = null)
    {
        var sb = new StringBuilder();
        if (Cookie != 0) sb.Append("cookie=0x").Append(Cookie.ToString("x", CultureInfo.InvariantCulture)).Append(',');
        sb.Append("priority=").Append(Priority);
        if (IdleTimeout != 0) sb.Append(",idle_timeout=").Append(IdleTimeout);
        if (HardTimeout != 0) sb.Append(",hard_timeout=").Append(HardTimeout);
        string m = Match.Format(portName);
        if (m.Length > 0) sb.Append(',').Append(m);
        sb.Append(",actions=").Append(FlowAction.Format(Actions, portName));
        return sb.ToString();
    }
}
