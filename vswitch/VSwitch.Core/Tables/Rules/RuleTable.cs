using VSwitch.Core.Flow;

namespace VSwitch.Core.Tables.Rules;

/// <summary>
/// The rule table, published as an immutable array sorted by priority (highest first, then
/// oldest first): the datapath's slow path scans it without a lock; the control plane replaces
/// it on every change and bumps <see cref="Version"/>, which makes cached flows revalidate.
/// The default table holds one rule: priority 0, match everything, normal.
/// </summary>
public sealed class RuleTable
{
    private readonly object _gate = new();
    private Rule[] _rules;
    private long _version;

    public RuleTable()
    {
        _rules = [DefaultRule()];
    }

    public static Rule DefaultRule() => new(0, FlowMatch.Any(), [FlowAction.Normal]) { InstalledAtMs = Environment.TickCount64, LastUsedMs = Environment.TickCount64 };

    public IReadOnlyList<Rule> Rules => Volatile.Read(ref _rules);
    public long Version => Volatile.Read(ref _version);

    /// <summary>
    /// Whether some rule matches on TCP flags. When none does, the flow stage leaves the flags out of
    /// the cached key (as an OVS megaflow leaves out what no rule looked at): a connection's SYN, data
    /// and FIN share one flow instead of one each.
    /// </summary>
    public bool UsesTcpFlags => Volatile.Read(ref _usesTcpFlags);
    private bool _usesTcpFlags;

    /// <summary>The highest-priority rule that matches, or null (a table miss: drop).</summary>
    public Rule? Lookup(in FlowKey key)
    {
        foreach (var r in Volatile.Read(ref _rules))
            if (r.Match.Matches(key)) return r;
        return null;
    }

    /// <summary>Adds a rule; one with the same priority and match is replaced (OpenFlow add semantics). Returns the one replaced.</summary>
    public Rule? Add(Rule rule, long nowMs)
    {
        lock (_gate)
        {
            rule.InstalledAtMs = nowMs;
            rule.LastUsedMs = nowMs;
            var list = new List<Rule>(_rules);
            int same = list.FindIndex(r => r.Priority == rule.Priority && r.Match.SameAs(rule.Match));
            Rule? replaced = null;
            if (same >= 0) { replaced = list[same]; list.RemoveAt(same); }
            int at = list.FindIndex(r => r.Priority < rule.Priority);
            list.Insert(at < 0 ? list.Count : at, rule);
            Publish(list);
            return replaced;
        }
    }

    /// <summary>
    /// Deletes rules. Strict: same priority (when given) and the same match. Otherwise every rule
    /// whose match is at least as specific as <paramref name="match"/> (ovs-ofctl del-flows).
    /// </summary>
    public List<Rule> Delete(FlowMatch match, int? priority, bool strict)
    {
        lock (_gate)
        {
            var removed = new List<Rule>();
            var keep = new List<Rule>();
            foreach (var r in _rules)
            {
                bool hit = strict
                    ? r.Match.SameAs(match) && (priority is null || r.Priority == priority)
                    : r.Match.IsCoveredBy(match) && (priority is null || r.Priority == priority);
                (hit ? removed : keep).Add(r);
            }
            if (removed.Count > 0) Publish(keep);
            return removed;
        }
    }

    public bool Remove(Rule rule)
    {
        lock (_gate)
        {
            var list = _rules.Where(r => !ReferenceEquals(r, rule)).ToList();
            if (list.Count == _rules.Length) return false;
            Publish(list);
            return true;
        }
    }

    /// <summary>Puts back exactly the default table.</summary>
    public void Reset()
    {
        lock (_gate) Publish([DefaultRule()]);
    }

    /// <summary>Rules whose idle or hard timeout has passed (the control plane removes them).</summary>
    public List<Rule> Expired(long nowMs)
    {
        var list = new List<Rule>();
        foreach (var r in Rules)
        {
            if (r.HardTimeout > 0 && nowMs - r.InstalledAtMs >= r.HardTimeout * 1000L) list.Add(r);
            else if (r.IdleTimeout > 0 && nowMs - Volatile.Read(ref r.LastUsedMs) >= r.IdleTimeout * 1000L) list.Add(r);
        }
        return list;
    }

    private void Publish(List<Rule> rules)
    {
        bool flags = false;
        foreach (var r in rules) flags |= r.Match.Mask.TcpFlags != 0;
        // The flag before the rules: a flow decided in between keeps its flags, which is never wrong.
        Volatile.Write(ref _usesTcpFlags, flags);
        Volatile.Write(ref _rules, rules.ToArray());
        Interlocked.Increment(ref _version);
    }
}
