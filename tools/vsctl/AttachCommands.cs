using System.CommandLine;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary>
/// <c>vsctl attach NETNS --network NET</c>, <c>vsctl attach ls</c> and <c>vsctl detach NETNS|ID</c>:
/// /v1/attachments. An attachment is a TAP that vswitchd moves into the namespace and renames
/// (eth0), with an address from the network's subnet and a default route via its gateway.
/// </summary>
public static class AttachCommands
{
    public static Command Attach(Cli cli)
    {
        var netns = new Argument<string>("NETNS") { Description = "The namespace: a name under /run/netns, or a path like /proc/PID/ns/net" };
        var network = new Option<string>("--network") { Description = "The network it joins", HelpName = "NET", Required = true };
        var ifname = new Option<string>("--ifname") { Description = "The interface's name inside the namespace (default eth0)", HelpName = "NAME" };
        var ip = new Option<string>("--ip") { Description = "A static address from the network's subnet (default: the lowest free one)", HelpName = "ADDR" };
        var mac = new Option<string>("--mac") { Description = "Its MAC address (default: a random local one)", HelpName = "MAC" };
        var containerId = new Option<string>("--container-id") { Description = "The container it belongs to (default: NETNS)", HelpName = "ID" };
        var attach = new Command("attach", "Attach a network namespace (a container) to a network") { netns, network, ifname, ip, mac, containerId };
        attach.Subcommands.Add(List(cli));
        cli.SetAction(attach, async (ctx, ct) =>
        {
            var body = new AttachRequest(ctx.Get(network)!, ctx.Get(netns)!, ctx.Get(containerId), ctx.Get(ifname), ctx.Get(ip), ctx.Get(mac), "vsctl");
            var response = await ctx.Api.PostAsync("v1/attachments", body, ApiJson.Default.AttachRequest, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var a = response.Read(ApiJson.Default.AttachmentView);
            ctx.Out.WriteLine($"attached {a.Netns} {a.Ifname} to {a.Network}: {a.Address ?? "no address"}{(a.Gateway is null ? "" : $" via {a.Gateway}")}, mac {a.Mac}, mtu {a.Mtu} (attachment {a.Id}, port {a.Port})");
            return Program.Ok;
        });
        return attach;
    }

    private static Command List(Cli cli)
    {
        var network = new Option<string>("--network") { Description = "Only this network's", HelpName = "NET" };
        var ls = new Command("ls", "List attachments") { network };
        ls.Aliases.Add("list");
        cli.SetAction(ls, async (ctx, ct) =>
        {
            string q = ctx.Get(network) is { } n ? "?network=" + ApiClient.Escape(n) : "";
            var response = await ctx.Api.GetAsync("v1/attachments" + q, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var table = new TableWriter("ID", "NETWORK", "NETNS", "IFNAME", "ADDRESS", "MAC", "PORT", "CONTAINER");
            foreach (var a in response.Read(ApiJson.Default.AttachmentViewArray))
                table.AddRow(a.Id, a.Network, a.Netns, a.Ifname, a.Address, a.Mac, a.Port, a.ContainerId == a.Netns ? null : Short(a.ContainerId));
            table.Write(ctx.Out);
            return Program.Ok;
        });
        return ls;
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
                ?? throw new CtlException($"no attachment '{t}' (with interface {name}); see 'vsctl attach ls'");
            var response = await ctx.Api.DeleteAsync("v1/attachments/" + ApiClient.Escape(match.Id), ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            ctx.Out.WriteLine($"detached {match.Netns} {match.Ifname} from {match.Network}{(match.Address is null ? "" : $", {match.Ip} released")}");
            return Program.Ok;
        });
        return detach;
    }

    private static string Short(string id) => id.Length > 12 ? id[..12] : id;
}
