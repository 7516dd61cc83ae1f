using System.CommandLine;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary>
/// <c>vsctl attach NETNS --network NET</c>, <c>vsctl attach [ls]</c> and <c>vsctl detach NETNS|ID</c>:
/// /v1/attachments. An attachment is a TAP that vswitchd moves into the namespace and renames
/// (eth0), with an address from the network's subnet and a default route via its gateway.
/// </summary>
public static class AttachCommands
{
    public static Command Attach(Cli cli)
    {
        var netns = new Argument<string>("NETNS")
        {
            Description = "The namespace: a name under /run/netns, or a path like /proc/PID/ns/net (none: list the attachments)",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var network = new Option<string>("--network") { Description = "The network it joins (required with NETNS)", HelpName = "NET" };
        var ifname = new Option<string>("--ifname") { Description = "The interface's name inside the namespace (default eth0)", HelpName = "NAME" };
        var ip = new Option<string>("--ip") { Description = "A static address from the network's subnet (default: the lowest free one)", HelpName = "ADDR" };
        var mac = new Option<string>("--mac") { Description = "Its MAC address (default: a random local one)", HelpName = "MAC" };
        var containerId = new Option<string>("--container-id") { Description = "The container it belongs to (default: NETNS)", HelpName = "ID" };
        var security = Cli.OnOffOption("--port-security", "Frames only from its MAC and address; default on");
        var pin = Cli.OnOffOption("--pin-mac", "Its MAC may not move to another port; default on");
        var label = LabelOption("Labels, the container's identity for services and policy: app=web,tier=front (repeatable)");
        var attach = new Command("attach", "Attach a network namespace (a container) to a network; alone, it lists (as 'ls')") { netns, network, ifname, ip, mac, containerId, security, pin, label };
        attach.Subcommands.Add(List(cli));
        attach.Subcommands.Add(Label(cli));
        attach.Validators.Add(r =>
        {
            if (r.GetResult(netns) is { Tokens.Count: > 0 })
            {
                if (r.GetResult(network) is null) r.AddError("Option '--network' is required: the network NETNS joins.");
                return;
            }
            // Without NETNS, 'vsctl attach' lists, as 'vsctl attach ls' does; options of an attach make no sense there.
            if (new Option[] { network, ifname, ip, mac, containerId, security, pin, label }.FirstOrDefault(o => r.GetResult(o) is not null) is { } given)
                r.AddError($"{given.Name} is for attaching: give NETNS too (to list one network's attachments: vsctl attach ls --network NET)");
        });
        cli.SetAction(attach, async (ctx, ct) =>
        {
            if (ctx.Get(netns) is null) return await ListAsync(ctx, null, ct);
            var body = new AttachRequest(ctx.Get(network)!, ctx.Get(netns)!, ctx.Get(containerId), ctx.Get(ifname), ctx.Get(ip), ctx.Get(mac), "vsctl")
                { PortSecurity = Cli.OnOff(ctx, security), PinMac = Cli.OnOff(ctx, pin), Labels = ParseLabels(ctx.Get(label)) };
            var response = await ctx.Api.PostAsync("v1/attachments", body, ApiJson.Default.AttachRequest, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var a = response.Read(ApiJson.Default.AttachmentView);
            ctx.Out.WriteLine($"attached {a.Netns} {a.Ifname} to {a.Network}: {a.Address ?? "no address"}{(a.Gateway is null ? "" : $" via {a.Gateway}")}"
                + (a.Address6 is null ? "" : $", {a.Address6}{(a.Gateway6 is null ? "" : $" via {a.Gateway6}")}") + $", mac {a.Mac}, mtu {a.Mtu} (attachment {a.Id}, port {a.Port})"
                + (a.Labels.Count > 0 ? ", labels " + Labels.Format(a.Labels) : ""));
            return Program.Ok;
        });
        return attach;
    }

    private static Command List(Cli cli)
    {
        var network = new Option<string>("--network") { Description = "Only this network's", HelpName = "NET" };
        var ls = new Command("ls", "List attachments") { network };
        ls.Aliases.Add("list");
        cli.SetAction(ls, (ctx, ct) => ListAsync(ctx, ctx.Get(network), ct));
        return ls;
    }

    private static async Task<int> ListAsync(Context ctx, string? network, CancellationToken ct)
    {
        string q = network is not null ? "?network=" + ApiClient.Escape(network) : "";
        var response = await ctx.Api.GetAsync("v1/attachments" + q, ct);
        if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
        // NAME is what people call the container (a runtime's container name, or its short id); the
        // namespace's path is long and says little, so it is last and the first to be cut.
        var table = new TableWriter("ID", "NAME", "NETWORK", "IFNAME", "ADDRESS", "MAC", "PORT", "LABELS", "NETNS").Cut("NETNS", "LABELS", "NAME");
        foreach (var a in response.Read(ApiJson.Default.AttachmentViewArray))
            table.AddRow(a.Id, a.Name ?? (a.ContainerId == a.Netns ? a.Netns : Short(a.ContainerId)), a.Network, a.Ifname,
                a.Address6 is null ? a.Address : $"{a.Address} {a.Address6}", a.Mac, a.Port, Labels.Format(a.Labels), a.Netns);
        ctx.Write(table);
        return Program.Ok;
    }

    public static Command Detach(Cli cli)
    {
        var target = new Argument<string>("NETNS|ID") { Description = "The namespace (as attached), its container id, or the attachment's id" };
        var ifname = new Option<string>("--ifname") { Description = "Which interface of the namespace (default eth0)", HelpName = "NAME" };
        var detach = new Command("detach", "Detach a namespace from its network: the interface goes, the address is released") { target, ifname };
        cli.SetAction(detach, async (ctx, ct) =>
        {
            string t = ctx.Get(target)!;
            string name = ctx.Get(ifname) ?? "eth0";
            var all = (await ctx.Api.GetAsync("v1/attachments", ct)).Read(ApiJson.Default.AttachmentViewArray);
            var match = all.FirstOrDefault(a => a.Id == t)
                ?? all.FirstOrDefault(a => (a.Netns == t || a.ContainerId == t || a.Netns == "/run/netns/" + t) && a.Ifname == name)
                ?? throw CtlException.NotFound($"no attachment '{t}' (with interface {name}); see 'vsctl attach ls'");
            var response = await ctx.Api.DeleteAsync("v1/attachments/" + ApiClient.Escape(match.Id), ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            ctx.Out.WriteLine($"detached {match.Netns} {match.Ifname} from {match.Network}{(match.Address is null ? "" : $", {match.Ip} released")}");
            return Program.Ok;
        });
        return detach;
    }

    private static string Short(string id) => id.Length > 12 ? id[..12] : id;

    internal static Option<string[]> LabelOption(string description) => new("--label")
    {
        Description = description, HelpName = "KEY=VALUE", AllowMultipleArgumentsPerToken = false,
    };

    /// <summary>--label values as a map; a bad one is a usage error naming it.</summary>
    internal static Dictionary<string, string>? ParseLabels(string[]? specs)
    {
        if (specs is null || specs.Length == 0) return null;
        try { return Labels.Parse(specs); }
        catch (FormatException e) { throw new CtlException(e.Message, kind: ErrorKind.Invalid); }
    }

    /// <summary><c>vsctl attach label ID|NETNS KEY=VALUE...</c>: replace an attachment's labels (none given: remove them).</summary>
    private static Command Label(Cli cli)
    {
        var target = new Argument<string>("ID|NETNS") { Description = "The attachment's id, its namespace or its container id" };
        var labels = new Argument<string[]>("KEY=VALUE") { Description = "The new labels (they replace the old ones; none: remove all)", Arity = ArgumentArity.ZeroOrMore };
        var ifname = new Option<string>("--ifname") { Description = "Which interface of the namespace (default eth0)", HelpName = "NAME" };
        var cmd = new Command("label", "Replace an attachment's labels: policy and services follow at once") { target, labels, ifname };
        cli.SetAction(cmd, async (ctx, ct) =>
        {
            var map = ParseLabels(ctx.Get(labels)) ?? [];
            string t = ctx.Get(target)!, name = ctx.Get(ifname) ?? "eth0";
            var all = (await ctx.Api.GetAsync("v1/attachments", ct)).Read(ApiJson.Default.AttachmentViewArray);
            var match = all.FirstOrDefault(a => a.Id == t)
                ?? all.FirstOrDefault(a => (a.Netns == t || a.ContainerId == t || a.Netns == "/run/netns/" + t) && a.Ifname == name)
                ?? throw CtlException.NotFound($"no attachment '{t}' (with interface {name}); see 'vsctl attach ls'");
            var response = await ctx.Api.PatchAsync("v1/attachments/" + ApiClient.Escape(match.Id), new AttachmentLabelsRequest(map),
                ApiJson.Default.AttachmentLabelsRequest, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var a = response.Read(ApiJson.Default.AttachmentView);
            ctx.Out.WriteLine($"{a.Name ?? a.Id} ({a.Port}): labels {(a.Labels.Count == 0 ? "none" : Labels.Format(a.Labels))}");
            return Program.Ok;
        });
        return cmd;
    }
}
