using System.CommandLine;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary>
/// <c>vsctl vtep ls|add|del</c>: the VXLAN overlay, /v1/overlay. This host's endpoint comes from vswitchd's
/// config (overlay.local); the remote VTEPs of each VXLAN network (its head-end replication list) are set here.
/// </summary>
public static class OverlayCommands
{
    public const string NoEndpoint = "no VXLAN endpoint (set overlay.local in the config)";

    public static Command Create(Cli cli)
    {
        var vtep = new Command("vtep", "The VXLAN overlay: this host's endpoint and the remote VTEPs of each VXLAN network");
        var ls = new Command("ls", "This host's VXLAN endpoint, each VXLAN network's VTEPs and the counters per remote VTEP");
        ls.Aliases.Add("list");
        ls.Aliases.Add("show");
        Cli.ListsByDefault(vtep, ls, c => ConfigureList(cli, c));
        vtep.Subcommands.Add(ls);
        vtep.Subcommands.Add(Add(cli));
        vtep.Subcommands.Add(Delete(cli));
        return vtep;
    }

    /// <summary>"127.0.0.1:4789 (port vxlan0)", or null without an endpoint.</summary>
    public static string? Endpoint(OverlayView o) =>
        o.Local is null ? null : (o.Local.Contains(':') ? $"[{o.Local}]:{o.Port}" : $"{o.Local}:{o.Port}") + (o.TunnelPort is null ? "" : $" (port {o.TunnelPort})");

    /// <summary>GET /v1/overlay, or null when the daemon cannot say (an older daemon without it, or unreachable).</summary>
    public static async Task<OverlayView?> TryGet(ApiClient api, CancellationToken ct)
    {
        try { return (await api.GetAsync("v1/overlay", ct)).Read(ApiJson.Default.OverlayView); }
        catch (CtlException) { return null; }
        catch (System.Text.Json.JsonException) { return null; }
    }

    /// <summary>
    /// The daemon's error, and why when the cause is deeper: with no VXLAN endpoint there are no VXLAN networks
    /// (a vni needs overlay.local), so "no network named 'x'" alone would send the user looking in the wrong place.
    /// </summary>
    public static async Task<CtlException> Explain(ApiClient api, CtlException e, CancellationToken ct)
    {
        var o = await TryGet(api, ct);
        if (o is null || o.Local is not null) return e;
        return e.WithMessage($"{e.Message}; vswitchd has no VXLAN endpoint: VXLAN networks, VTEPs and remote MACs need overlay.local in its config");
    }

    private static void ConfigureList(Cli cli, Command command) =>
        cli.SetAction(command, async (ctx, ct) =>
        {
            var response = await ctx.Api.GetAsync("v1/overlay", ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var o = response.Read(ApiJson.Default.OverlayView);
            var w = ctx.Out;
            w.WriteLine(Endpoint(o) is { } local ? $"local VTEP: {local}" + (o.Udp6ZeroChecksumRx ? " (takes zero UDP checksums)" : "") : NoEndpoint);
            if (o.Local is null && o.Networks.Length == 0 && o.Vteps.Length == 0) return Program.Ok;

            w.WriteLine();
            var nets = new TableWriter("NETWORK", "VNI", "MTU", "VTEPS").Cut("VTEPS");
            foreach (var n in o.Networks)
                nets.AddRow(n.Network, n.Vni, n.Mtu, n.Vteps.Length == 0 ? null : string.Join(',', n.Vteps));
            ctx.Write(nets);
            foreach (var n in o.Networks.Where(n => n.AcceptUnknownVteps))
                w.WriteLine($"({n.Network} also accepts VTEPs not in its list, learning them from their traffic)");

            // Counters exist for the VTEPs the endpoint has exchanged packets with; a listed VTEP without any shows zeros.
            var counted = o.Vteps.ToDictionary(v => v.Address);
            var all = o.Networks.SelectMany(n => n.Vteps).Concat(counted.Keys).Distinct()
                .OrderBy(a => System.Net.IPAddress.TryParse(a, out var ip) ? Convert.ToHexString(ip.GetAddressBytes()).PadLeft(32, '0') : "~") // numeric order, IPv4 or IPv6
                .ThenBy(a => a, StringComparer.Ordinal);
            w.WriteLine();
            var vteps = new TableWriter("VTEP", "RX-PKTS", "RX-BYTES", "TX-PKTS", "TX-BYTES");
            foreach (string a in all)
            {
                var c = counted.GetValueOrDefault(a) ?? new VtepView(a, 0, 0, 0, 0);
                vteps.AddRow(a, c.RxPackets, c.RxBytes, c.TxPackets, c.TxBytes);
            }
            ctx.Write(vteps);
            return Program.Ok;
        });

    private static Command Add(Cli cli)
    {
        var network = new Argument<string>("NETWORK") { Description = "A VXLAN network (one with a vni)" };
        var ip = new Argument<string>("IP") { Description = "The remote VTEP's underlay address (IPv4 or IPv6, the family of this host's endpoint)" };
        var add = new Command("add", "Add a remote VTEP to a VXLAN network: its broadcasts and unknown unicasts go there too") { network, ip };
        cli.SetAction(add, async (ctx, ct) =>
        {
            string net = ctx.Get(network)!, vtep = ctx.Get(ip)!;
            ApiResponse response;
            try
            {
                response = await ctx.Api.PostAsync($"v1/networks/{ApiClient.Escape(net)}/vteps", new VtepRequest(vtep), ApiJson.Default.VtepRequest, ct);
            }
            catch (CtlException e) { throw await Explain(ctx.Api, e, ct); }
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var n = response.Read(ApiJson.Default.OverlayNetworkView);
            string canonical = n.Vteps.LastOrDefault() ?? vtep; // the daemon appends it, written its way
            ctx.Out.WriteLine($"vtep {canonical} added to network {n.Network} (vni {n.Vni}, {n.Vteps.Length} {(n.Vteps.Length == 1 ? "vtep" : "vteps")})");
            return Program.Ok;
        });
        return add;
    }

    private static Command Delete(Cli cli)
    {
        var network = new Argument<string>("NETWORK") { Description = "The VXLAN network" };
        var ip = new Argument<string>("IP") { Description = "The remote VTEP's address" };
        var del = new Command("del", "Remove a remote VTEP from a VXLAN network") { network, ip };
        del.Aliases.Add("delete");
        del.Aliases.Add("rm");
        cli.SetAction(del, async (ctx, ct) =>
        {
            string net = ctx.Get(network)!, vtep = ctx.Get(ip)!;
            ApiResponse response;
            try
            {
                response = await ctx.Api.DeleteAsync($"v1/networks/{ApiClient.Escape(net)}/vteps/{ApiClient.Escape(vtep)}", ct);
            }
            catch (CtlException e) { throw await Explain(ctx.Api, e, ct); }
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            ctx.Out.WriteLine($"vtep {vtep} deleted from network {net}");
            return Program.Ok;
        });
        return del;
    }
}
