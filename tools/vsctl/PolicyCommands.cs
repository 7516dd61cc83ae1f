using System.CommandLine;
using System.Net;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary>
/// <c>vsctl policy add|ls|inspect|del</c>: network policies over attachment labels, /v1/policies,
/// with Kubernetes NetworkPolicy's semantics. One <c>add</c> writes one rule per direction; several
/// policies add up (for more rules in one policy, POST the JSON).
/// </summary>
public static class PolicyCommands
{
    public static Command Create(Cli cli)
    {
        var policy = new Command("policy", "Network policies: who may open connections to and from labelled containers");
        var ls = new Command("ls", "List policies with what they select and the connections they allowed and denied");
        ls.Aliases.Add("list");
        Cli.ListsByDefault(policy, ls, c => ConfigureList(cli, c));
        policy.Subcommands.Add(ls);
        policy.Subcommands.Add(Add(cli));
        policy.Subcommands.Add(Inspect(cli));
        policy.Subcommands.Add(Del(cli));
        return policy;
    }

    private static Command Add(Cli cli)
    {
        var name = new Argument<string>("NAME") { Description = "The policy's name (adding it again replaces it)" };
        var selector = new Option<string[]>("--selector") { Description = "The containers it governs, by label: app=db (default: every attachment)", HelpName = "KEY=VALUE" };
        var from = new Option<string[]>("--ingress-from") { Description = "Who may connect to them: a selector (app=web), an address block (10.0.0.0/8) or '*' (anyone); repeatable", HelpName = "PEER" };
        var to = new Option<string[]>("--egress-to") { Description = "Whom they may connect to: a selector, an address block or '*'; repeatable", HelpName = "PEER" };
        var except = new Option<string[]>("--except") { Description = "Address blocks left out of the blocks given (ipBlock's except); repeatable", HelpName = "CIDR" };
        var port = new Option<string[]>("--port") { Description = "Only to these ports: 5432/tcp, 53/udp (default: every port and protocol); repeatable", HelpName = "PORT/PROTO" };
        var ingress = new Option<bool>("--ingress") { Description = "Govern incoming connections even with no --ingress-from: then none may open" };
        var egress = new Option<bool>("--egress") { Description = "Govern outgoing connections even with no --egress-to: then none may open" };
        var add = new Command("add", "Add a policy: the selected containers accept (ingress) or open (egress) only what it allows")
            { name, selector, from, to, except, port, ingress, egress };
        cli.SetAction(add, async (ctx, ct) =>
        {
            var ports = (ctx.Get(port) ?? []).Select(ParsePort).ToArray();
            var excepts = ctx.Get(except) ?? [];
            PolicyRuleSpec[]? Rules(string[]? peers, bool govern)
            {
                if (peers is null || peers.Length == 0) return govern ? [] : null;
                bool anyone = peers.Any(x => x.Trim() == "*");
                var specs = anyone ? null : peers.Select(x => Peer(x, excepts)).ToArray();
                return [new PolicyRuleSpec(specs, ports.Length == 0 ? null : ports)];
            }
            var ing = Rules(ctx.Get(from), ctx.Get(ingress));
            var egr = Rules(ctx.Get(to), ctx.Get(egress));
            if (ing is null && egr is null)
                throw new CtlException("say what the policy governs: --ingress-from, --egress-to, --ingress or --egress", kind: ErrorKind.Invalid);
            if (excepts.Length > 0 && !(ctx.Get(from) ?? []).Concat(ctx.Get(to) ?? []).Any(IsCidr))
                throw new CtlException("--except is for address blocks: give one with --ingress-from or --egress-to", kind: ErrorKind.Invalid);
            var body = new PolicyRequest(ctx.Get(name)!, AttachCommands.ParseLabels(ctx.Get(selector)) ?? [], ing, egr);
            var response = await ctx.Api.PostAsync("v1/policies", body, ApiJson.Default.PolicyRequest, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var v = response.Read(ApiJson.Default.PolicyView);
            ctx.Out.WriteLine($"policy {v.Name}: governs {string.Join(" and ", v.PolicyTypes)} of {Selector(v.Selector)} ({v.Selected.Length} selected now)");
            return Program.Ok;
        });
        return add;
    }

    private static bool IsCidr(string s) => s.Contains('/') && IPNetwork.TryParse(s.Trim(), out _);

    private static PolicyPeerSpec Peer(string text, string[] excepts)
    {
        text = text.Trim();
        if (IsCidr(text)) return new PolicyPeerSpec(null, text, excepts.Length == 0 ? null : excepts);
        try { return new PolicyPeerSpec(Labels.Parse([text]), null, null); }
        catch (FormatException e) { throw new CtlException($"peer '{text}': not an address block (10.0.0.0/8), '*' or a selector: {e.Message}", kind: ErrorKind.Invalid); }
    }

    private static PolicyPortSpec ParsePort(string text)
    {
        var parts = text.Trim().Split('/');
        if (parts.Length > 2 || !int.TryParse(parts[0], out int n) || n is < 1 or > 65535)
            throw new CtlException($"--port '{text}': write PORT/PROTO, e.g. 5432/tcp or 53/udp", kind: ErrorKind.Invalid);
        string proto = parts.Length == 2 ? parts[1].ToLowerInvariant() : "tcp";
        if (proto is not ("tcp" or "udp")) throw new CtlException($"--port '{text}': the protocol is tcp or udp", kind: ErrorKind.Invalid);
        return new PolicyPortSpec(n, proto);
    }

    private static void ConfigureList(Cli cli, Command command)
    {
        cli.SetAction(command, async (ctx, ct) =>
        {
            var response = await ctx.Api.GetAsync("v1/policies", ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var table = new TableWriter("NAME", "SELECTOR", "INGRESS", "EGRESS", "SELECTED", "ALLOWED", "DENIED").Cut("INGRESS", "EGRESS");
            foreach (var p in response.Read(ApiJson.Default.PolicyViewArray))
                table.AddRow(p.Name, Selector(p.Selector), Rules(p.Ingress, p.PolicyTypes.Contains("ingress"), "from"),
                    Rules(p.Egress, p.PolicyTypes.Contains("egress"), "to"), p.Selected.Length, p.AllowedConnections, p.DeniedConnections);
            ctx.Write(table);
            return Program.Ok;
        });
    }

    private static Command Inspect(Cli cli)
    {
        var name = new Argument<string>("NAME") { Description = "The policy" };
        var inspect = new Command("inspect", "One policy: its rules, the containers it selects, its counters") { name };
        cli.SetAction(inspect, async (ctx, ct) =>
        {
            var response = await ctx.Api.GetAsync("v1/policies/" + ApiClient.Escape(ctx.Get(name)!), ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var p = response.Read(ApiJson.Default.PolicyView);
            ctx.Out.WriteLine($"policy {p.Name}");
            ctx.Out.WriteLine($"  selects:  {Selector(p.Selector)}: {(p.Selected.Length == 0 ? "nobody now" : string.Join(", ", p.Selected))}");
            ctx.Out.WriteLine($"  ingress:  {Rules(p.Ingress, p.PolicyTypes.Contains("ingress"), "from")}");
            ctx.Out.WriteLine($"  egress:   {Rules(p.Egress, p.PolicyTypes.Contains("egress"), "to")}");
            ctx.Out.WriteLine($"  connections allowed {p.AllowedConnections}, denied {p.DeniedConnections}");
            return Program.Ok;
        });
        return inspect;
    }

    private static Command Del(Cli cli)
    {
        var name = new Argument<string>("NAME") { Description = "The policy" };
        var del = new Command("del", "Delete a policy (connections it let open go on)") { name };
        del.Aliases.Add("rm");
        cli.SetAction(del, async (ctx, ct) =>
        {
            var response = await ctx.Api.DeleteAsync("v1/policies/" + ApiClient.Escape(ctx.Get(name)!), ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            ctx.Out.WriteLine($"policy {ctx.Get(name)} deleted");
            return Program.Ok;
        });
        return del;
    }

    private static string Selector(Dictionary<string, string> s) => s.Count == 0 ? "every attachment" : Labels.Format(s);

    /// <summary>"from app=web on 5432/tcp; from 10.0.0.0/8"; "-" when the direction is not governed, "nothing" when it is with no rule.</summary>
    private static string Rules(PolicyRuleSpec[] rules, bool governed, string word)
    {
        if (!governed) return "-";
        if (rules.Length == 0) return "nothing (isolated)";
        return string.Join("; ", rules.Select(r =>
        {
            string peers = r.Peers is { Length: > 0 }
                ? string.Join(", ", r.Peers.Select(p => p.Cidr is { } c ? c + (p.Except is { Length: > 0 } ex ? " except " + string.Join(",", ex) : "") : Selector(p.Selector ?? [])))
                : "anyone";
            string ports = r.Ports is { Length: > 0 } ? " on " + string.Join(",", r.Ports.Select(p => $"{p.Port}/{p.Protocol ?? "tcp"}")) : "";
            return $"{word} {peers}{ports}";
        }));
    }
}
