using System.Collections.Frozen;
using System.Net;
using VSwitch.Api;
using VSwitch.Core.Pipeline.Policy;
using VSwitch.Core.Tables.Conntrack;
using VSwitchd.Runtime;

namespace VSwitchd.Policy;

/// <summary>
/// Network policies (Kubernetes NetworkPolicy's semantics over attachments' labels): kept in the
/// state database, compiled into a <see cref="PolicyEngine"/> of addresses whenever a policy or an
/// attachment changes, and published to the datapath with connection tracking on (policies are
/// stateful: established and related packets pass, new connections are checked, invalid ones
/// dropped). Port security is what makes an attachment's source address stand for its labels.
/// </summary>
public sealed class NetworkPolicies : IHostedService
{
    public const int MaxPolicies = 10_000;
    private readonly SwitchRuntime _rt;
    private readonly Attachments _attachments;
    private readonly ILogger<NetworkPolicies> _log;
    private readonly object _gate = new();
    private readonly Dictionary<string, PolicyRequest> _policies = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];
    private readonly Dictionary<string, PolicyCounters> _counters = new(StringComparer.Ordinal);
    private PolicyEngine? _engine;

    public NetworkPolicies(SwitchRuntime rt, Attachments attachments, ILogger<NetworkPolicies> log)
    {
        _rt = rt;
        _attachments = attachments;
        _log = log;
    }

    public Task StartAsync(CancellationToken ct)
    {
        lock (_gate)
        {
            foreach (var p in _rt.Store?.Policies() ?? [])
            {
                try { Normalize(p); }
                catch (InvalidRequestException e) { _log.LogError("stored policy {Name} is invalid and is left out: {Error}", p.Name, e.Message); continue; }
                _policies[p.Name] = p;
                _order.Add(p.Name);
            }
            Publish();
        }
        _attachments.Changed += OnAttachmentsChanged;
        if (_policies.Count > 0) _log.LogInformation("{Count} network policies restored", _policies.Count);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct)
    {
        _attachments.Changed -= OnAttachmentsChanged;
        return Task.CompletedTask;
    }

    private void OnAttachmentsChanged()
    {
        lock (_gate) Publish();
    }

    public PolicyView Add(PolicyRequest req)
    {
        var p = Normalize(req);
        lock (_gate)
        {
            if (!_policies.ContainsKey(p.Name) && _policies.Count >= MaxPolicies)
                throw new ConflictException($"there are {MaxPolicies} policies already: the most there may be");
            _rt.Store?.SavePolicy(p);
            if (!_policies.ContainsKey(p.Name)) _order.Add(p.Name);
            _policies[p.Name] = p;
            Publish();
            _log.LogInformation("policy {Name} added: selects {Selector}, ingress {Ingress}, egress {Egress}", p.Name,
                Labels.Format(p.Selector), p.Ingress is null ? "-" : p.Ingress.Length + " rules", p.Egress is null ? "-" : p.Egress.Length + " rules");
            return View(p);
        }
    }

    public void Remove(string name)
    {
        lock (_gate)
        {
            if (!_policies.Remove(name)) throw new NotFoundException($"no policy named '{name}'");
            _order.Remove(name);
            _counters.Remove(name);
            _rt.Store?.DeletePolicy(name);
            Publish();
            _log.LogInformation("policy {Name} deleted", name);
        }
    }

    public PolicyView[] List()
    {
        lock (_gate) return _order.Select(n => View(_policies[n])).ToArray();
    }

    public PolicyView Get(string name)
    {
        lock (_gate)
            return _policies.TryGetValue(name, out var p) ? View(p) : throw new NotFoundException($"no policy named '{name}'");
    }

    /// <summary>Compiles every policy against the attachments as they are now and publishes the result (under the gate).</summary>
    private void Publish()
    {
        var atts = _attachments.List();
        var compiled = new List<CompiledPolicy>();
        foreach (var name in _order)
        {
            var p = _policies[name];
            if (!_counters.TryGetValue(name, out var counters)) _counters[name] = counters = new PolicyCounters();
            compiled.Add(new CompiledPolicy
            {
                Name = name, Counters = counters,
                Ingress = Governs(p, "ingress"), Egress = Governs(p, "egress"),
                IngressRules = (p.Ingress ?? []).Select(r => Compile(r, atts)).ToArray(),
                EgressRules = (p.Egress ?? []).Select(r => Compile(r, atts)).ToArray(),
                Selected = Addresses(atts, p.Selector).ToFrozenSet(),
            });
        }
        if (compiled.Count == 0)
        {
            _engine = null;
            _rt.Datapath.SetAdmission(null);
            _rt.Datapath.SetConntrackPart("policy", ConntrackPart.None);
            return;
        }
        _engine = new PolicyEngine(compiled);
        // Tracking first, then the verdicts: a flow decided in between is +new and allowed, never un-tracked and cut.
        _rt.Datapath.SetConntrackPart("policy", new ConntrackPart(true, []));
        _rt.Datapath.SetAdmission(_engine);
    }

    private static bool Governs(PolicyRequest p, string direction) =>
        p.PolicyTypes is { Length: > 0 } types ? types.Contains(direction) : direction == "ingress" ? p.Ingress is not null : p.Egress is not null;

    private static PolicyRule Compile(PolicyRuleSpec r, Attachment[] atts) => new()
    {
        Peers = (r.Peers ?? []).Select(peer => peer.Cidr is { } cidr
            ? new PolicyPeer
            {
                Block = Block(cidr), Except = (peer.Except ?? []).Select(Block).ToArray(),
                Description = cidr + (peer.Except is { Length: > 0 } ex ? " except " + string.Join(",", ex) : ""),
            }
            : new PolicyPeer
            {
                Addresses = Addresses(atts, peer.Selector).ToFrozenSet(),
                Description = peer.Selector is { Count: > 0 } s ? Labels.Format(s) : "every attachment",
            }).ToArray(),
        Ports = (r.Ports ?? []).Select(pt => (Proto(pt.Protocol), (ushort)(pt.Port ?? 0))).ToArray(),
    };

    /// <summary>The addresses of the attachments whose labels include every label of the selector (an empty selector: all).</summary>
    private static IEnumerable<UInt128> Addresses(Attachment[] atts, Dictionary<string, string>? selector)
    {
        foreach (var a in atts)
        {
            if (a.Address is null) continue;
            if (selector is { Count: > 0 } && (a.Labels is null || selector.Any(kv => !a.Labels.TryGetValue(kv.Key, out var v) || v != kv.Value))) continue;
            if (IPAddress.TryParse(a.Address.Split('/')[0], out var ip)) yield return Key(ip);
        }
    }

    private static UInt128 Key(IPAddress ip) => VSwitch.Core.Wire.AddressFormat.ToKey(ip);

    private static AddressBlock Block(string cidr)
    {
        if (!IPNetwork.TryParse(cidr.Trim(), out var n)) throw new InvalidRequestException($"cidr: '{cidr}' is not an address block (e.g. 10.0.0.0/8)");
        return new AddressBlock(n.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? (byte)4 : (byte)6, Key(n.BaseAddress), n.PrefixLength);
    }

    private static byte Proto(string? p) => (p ?? "tcp").ToLowerInvariant() switch
    {
        "tcp" => 6,
        "udp" => 17,
        _ => throw new InvalidRequestException($"protocol: '{p}' is not tcp or udp"),
    };

    /// <summary>Checks a request and returns it with defaults made explicit; bad values throw naming them.</summary>
    private static PolicyRequest Normalize(PolicyRequest p)
    {
        if (string.IsNullOrWhiteSpace(p.Name) || p.Name.Length > 63 || Labels.WhyNotValue("name", p.Name) is not null)
            throw new InvalidRequestException($"name: '{p.Name}' must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit");
        if (Labels.WhyNot(p.Selector) is { } why) throw new InvalidRequestException("selector: " + why);
        foreach (var t in p.PolicyTypes ?? [])
            if (t is not ("ingress" or "egress")) throw new InvalidRequestException($"policyTypes: '{t}' is not ingress or egress");
        foreach (var (dir, rules) in new[] { ("ingress", p.Ingress), ("egress", p.Egress) })
            foreach (var r in rules ?? [])
            {
                foreach (var peer in r.Peers ?? [])
                {
                    if (peer.Cidr is not null && peer.Selector is not null)
                        throw new InvalidRequestException($"{dir}: a peer has a selector or a cidr, not both");
                    if (peer.Cidr is { } cidr)
                    {
                        var block = Block(cidr);
                        foreach (var ex in peer.Except ?? [])
                        {
                            var e = Block(ex);
                            if (e.Family != block.Family || e.PrefixLength < block.PrefixLength || !block.Contains(e.Family, e.Network))
                                throw new InvalidRequestException($"{dir}: except {ex} is not inside {cidr}");
                        }
                    }
                    else if (peer.Except is { Length: > 0 }) throw new InvalidRequestException($"{dir}: except is only for a cidr");
                    if (Labels.WhyNot(peer.Selector) is { } bad) throw new InvalidRequestException($"{dir}: selector: {bad}");
                }
                foreach (var port in r.Ports ?? [])
                {
                    if (port.Port is < 0 or > 65535) throw new InvalidRequestException($"{dir}: port {port.Port} must be 1..65535");
                    Proto(port.Protocol);
                }
            }
        return p with { Name = p.Name.Trim(), Selector = p.Selector ?? [] };
    }

    private PolicyView View(PolicyRequest p)
    {
        var atts = _attachments.List();
        var sel = Addresses(atts, p.Selector).ToHashSet();
        var selected = atts.Where(a => a.Address is not null && IPAddress.TryParse(a.Address.Split('/')[0], out var ip) && sel.Contains(Key(ip)))
            .Select(a => a.Name ?? a.Port).ToArray();
        _counters.TryGetValue(p.Name, out var c);
        var types = new List<string>();
        if (Governs(p, "ingress")) types.Add("ingress");
        if (Governs(p, "egress")) types.Add("egress");
        return new PolicyView(p.Name, p.Selector ?? [], p.Ingress ?? [], p.Egress ?? [], [.. types], selected,
            c is null ? 0 : Interlocked.Read(ref c.Allowed), c is null ? 0 : Interlocked.Read(ref c.Denied));
    }
}
