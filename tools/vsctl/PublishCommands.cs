using System.CommandLine;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary>
/// <c>vsctl publish add|ls|del</c>: published ports (/v1/publish), as <c>docker run -p</c>: connections to
/// the host's address and port reach a container on a network with a host port.
/// </summary>
public static class PublishCommands
{
    public static Command Create(Cli cli)
    {
        var publish = new Command("publish", "Published ports: a host port that reaches a container (docker run -p)");
        var ls = new Command("ls", "List published ports with their connections");
        ls.Aliases.Add("list");
        Cli.ListsByDefault(publish, ls, c => ConfigureList(cli, c));
        publish.Subcommands.Add(ls);
        publish.Subcommands.Add(Add(cli));
        publish.Subcommands.Add(Delete(cli));
        return publish;
    }

    private static void ConfigureList(Cli cli, Command command) =>
        cli.SetAction(command, async (ctx, ct) =>
        {
            var response = await ctx.Api.GetAsync("v1/publish", ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var table = new TableWriter("ID", "NETWORK", "PROTO", "HOST-PORT", "TO", "HOST-ADDRESSES", "CONNECTIONS", "OPEN").Cut("HOST-ADDRESSES");
            foreach (var p in response.Read(ApiJson.Default.PublishViewArray))
                table.AddRow(p.Id, p.Network, p.Proto, p.HostPort, p.To, string.Join(',', p.Addresses), p.Connections, p.Active);
            ctx.Write(table);
            return Program.Ok;
        });

    /// <summary>"8080/tcp" (or "8080": tcp) into port and protocol; null when it does not parse.</summary>
    private static (int Port, string Proto)? PortProto(string s)
    {
        int slash = s.IndexOf('/');
        string port = slash < 0 ? s : s[..slash], proto = slash < 0 ? "tcp" : s[(slash + 1)..];
        return int.TryParse(port, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) ? (n, proto) : null;
    }

    private static Command Add(Cli cli)
    {
        var network = new Argument<string>("NETWORK") { Description = "The container's network (it needs a host port)" };
        var hostPort = new Argument<string>("HOSTPORT/PROTO") { Description = "The host's port and protocol: 8080/tcp, 5353/udp (tcp when left out)" };
        var to = new Option<string>("--to") { Description = "The container's address and port", HelpName = "CONTAINER_IP:PORT", Required = true };
        var hostIp = new Option<string>("--host-ip") { Description = "Only this host address (default: every address of the host)", HelpName = "ADDR" };
        var add = new Command("add", "Publish a host port to a container") { network, hostPort, to, hostIp };
        add.Validators.Add(r =>
        {
            if (r.GetValue(hostPort) is { } hp && PortProto(hp) is null) r.AddError($"HOSTPORT/PROTO: '{hp}' is not PORT/PROTO (like 8080/tcp)");
        });
        cli.SetAction(add, async (ctx, ct) =>
        {
            var (port, proto) = PortProto(ctx.Get(hostPort)!)!.Value;
            var body = new PublishRequest { Network = ctx.Get(network), HostPort = port, Proto = proto, To = ctx.Get(to), HostIp = ctx.Get(hostIp) };
            var response = await ctx.Api.PostAsync("v1/publish", body, ApiJson.Default.PublishRequest, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var p = response.Read(ApiJson.Default.PublishView);
            ctx.Out.WriteLine($"published {p.Id} to {p.To} on network {p.Network} (host addresses {string.Join(", ", p.Addresses)})");
            return Program.Ok;
        });
        return add;
    }

    private static Command Delete(Cli cli)
    {
        var id = new Argument<string>("ID") { Description = "As publish ls shows it: *:8080/tcp, or 192.0.2.2:8080/tcp with --host-ip" };
        var del = new Command("del", "Remove a published port") { id };
        del.Aliases.Add("rm");
        cli.SetAction(del, async (ctx, ct) =>
        {
            string i = ctx.Get(id)!;
            var response = await ctx.Api.DeleteAsync("v1/publish?id=" + Uri.EscapeDataString(i), ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            ctx.Out.WriteLine($"published port {i} removed");
            return Program.Ok;
        });
        return del;
    }
}
