using System.CommandLine;
using System.Globalization;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary><c>vsctl mirror ls|add|del</c>: port mirrors (SPAN), /v1/mirrors, like Open vSwitch's Mirror table.</summary>
public static class MirrorCommands
{
    public static Command Create(Cli cli)
    {
        var mirror = new Command("mirror", "Port mirrors: copies of ports' frames out of another port (like OVS's Mirror table)");
        var ls = new Command("ls", "List mirrors with the copies each sent");
        ls.Aliases.Add("list");
        ls.Aliases.Add("show");
        Cli.ListsByDefault(mirror, ls, c => cli.SetAction(c, async (ctx, ct) =>
        {
            var response = await ctx.Api.GetAsync("v1/mirrors", ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var table = new TableWriter("NAME", "SOURCES", "DIRECTION", "VLAN", "OUTPUT", "PACKETS", "BYTES");
            foreach (var m in response.Read(ApiJson.Default.MirrorViewArray))
                table.AddRow(m.Name, string.Join(',', m.Sources), m.Direction, m.Vlan?.ToString(CultureInfo.InvariantCulture) ?? "any", m.Output,
                    m.Packets.ToString(CultureInfo.InvariantCulture), m.Bytes.ToString(CultureInfo.InvariantCulture));
            ctx.Write(table);
            return Program.Ok;
        }));
        mirror.Subcommands.Add(ls);
        mirror.Subcommands.Add(Add(cli));
        mirror.Subcommands.Add(Delete(cli));
        return mirror;
    }

    private static Command Add(Cli cli)
    {
        var name = new Argument<string>("NAME") { Description = "The mirror's name" };
        var src = new Option<string>("--src") { Description = "The ports whose frames are copied, separated by commas", HelpName = "PORT[,PORT]", Required = true };
        var direction = new Option<string>("--direction") { Description = "Copy the frames they receive (rx), send (tx) or both", HelpName = "rx|tx|both" };
        direction.AcceptOnlyFromAmong("rx", "tx", "both");
        var vlan = Cli.IntOption("--vlan", "Only frames of this VLAN (the switch's VLAN of the frame; default: all)");
        var output = new Option<string>("--output") { Description = "The port the copies go out of", HelpName = "PORT", Required = true };
        var add = new Command("add", "Add a mirror (stored: it survives a restart)") { name, src, direction, vlan, output };
        cli.SetAction(add, async (ctx, ct) =>
        {
            var sources = ctx.Get(src)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var body = new MirrorRequest(ctx.Get(name), sources, ctx.Get(output), ctx.Get(direction), ctx.Get(vlan));
            var response = await ctx.Api.PostAsync("v1/mirrors", body, ApiJson.Default.MirrorRequest, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var m = response.Read(ApiJson.Default.MirrorView);
            string v = m.Vlan is int n ? $", VLAN {n}" : "";
            ctx.Out.WriteLine($"mirror {m.Name} added: {string.Join(',', m.Sources)} ({m.Direction}{v}) -> {m.Output}");
            return Program.Ok;
        });
        return add;
    }

    private static Command Delete(Cli cli)
    {
        var name = new Argument<string>("NAME") { Description = "The mirror to delete" };
        var del = new Command("del", "Delete a mirror") { name };
        del.Aliases.Add("rm");
        cli.SetAction(del, async (ctx, ct) =>
        {
            string n = ctx.Get(name)!;
            await ctx.Api.DeleteAsync("v1/mirrors/" + ApiClient.Escape(n), ct);
            if (ctx.Json) return Program.Ok;
            ctx.Out.WriteLine($"mirror {n} deleted");
            return Program.Ok;
        });
        return del;
    }
}
