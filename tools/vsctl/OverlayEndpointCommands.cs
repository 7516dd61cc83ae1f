using System.CommandLine;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary>
/// <c>vsctl overlay [set|unset]</c>: this host's VXLAN endpoint at run time (PUT/DELETE /v1/overlay),
/// what the config file's "overlay" section sets at start. The remote VTEPs are <c>vsctl vtep</c>.
/// </summary>
public static class OverlayEndpointCommands
{
    public static Command Create(Cli cli)
    {
        var overlay = new Command("overlay", "This host's VXLAN endpoint: show it (no subcommand), set or move it, remove it");
        cli.SetAction(overlay, async (ctx, ct) =>
        {
            var response = await ctx.Api.GetAsync("v1/overlay", ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            Print(ctx.Out, response.Read(ApiJson.Default.OverlayView));
            return Program.Ok;
        });
        overlay.Subcommands.Add(Set(cli));
        overlay.Subcommands.Add(Unset(cli));
        return overlay;
    }

    private static void Print(TextWriter w, OverlayView o)
    {
        w.WriteLine(OverlayCommands.Endpoint(o) is { } local ? $"local VTEP: {local} (port {o.TunnelPort})" : "no VXLAN endpoint (vsctl overlay set --local ADDR)");
        if (o.Networks.Length > 0) w.WriteLine($"VXLAN networks: {string.Join(", ", o.Networks.Select(n => $"{n.Network} (vni {n.Vni})"))}");
    }

    private static Command Set(Cli cli)
    {
        var local = new Option<string>("--local") { Description = "This host's VTEP address (an IPv4 or IPv6 address of its underlay interface; the remote VTEPs are of its family)", HelpName = "ADDR", Required = true };
        var port = Cli.IntOption("--port", "UDP port (default 4789, IANA's; the Linux kernel's old default is 8472)");
        var noGso = new Option<bool>("--no-udp-gso") { Description = "Send no UDP GSO trains (for a userspace VTEP on this host that reads the underlay without virtio headers)" };
        var zeroCsum = new Option<bool>("--udp6-zero-csum-rx") { Description = "Over IPv6, take datagrams with a zero UDP checksum (from a kernel vxlan with udp6zerocsumtx); refused by default, as the kernel does" };
        var set = new Command("set", "Open the VXLAN endpoint, or move it to another address or port; VXLAN networks keep their VTEPs") { local, port, noGso, zeroCsum };
        cli.SetAction(set, async (ctx, ct) =>
        {
            var body = new OverlayRequest(ctx.Get(local), ctx.Get(port), ctx.Get(noGso) ? false : null, ctx.Get(zeroCsum) ? true : null);
            var response = await ctx.Api.PutAsync("v1/overlay", body, ApiJson.Default.OverlayRequest, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var o = response.Read(ApiJson.Default.OverlayView);
            ctx.Out.WriteLine($"overlay: local VTEP {OverlayCommands.Endpoint(o)}");
            return Program.Ok;
        });
        return set;
    }

    private static Command Unset(Cli cli)
    {
        var unset = new Command("unset", "Close the VXLAN endpoint (refused while a VXLAN network needs it)");
        cli.SetAction(unset, async (ctx, ct) =>
        {
            await ctx.Api.DeleteAsync("v1/overlay", ct);
            ctx.Out.WriteLine("overlay: VXLAN endpoint closed");
            return Program.Ok;
        });
        return unset;
    }
}
