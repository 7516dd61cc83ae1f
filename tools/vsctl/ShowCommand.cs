using System.CommandLine;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary><c>vsctl show</c>: the whole switch at a glance, like <c>ovs-vsctl show</c>.</summary>
public static class ShowCommand
{
    public static Command Create(Cli cli)
    {
        var show = new Command("show", "Overview: uptime, threads, each network with its ports");
        cli.SetAction(show, async (ctx, ct) =>
        {
            var response = await ctx.Api.GetAsync("v1/show", ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var view = response.Read(ApiJson.Default.ShowView);
            // The overlay is its own resource: the endpoint and each VXLAN network's VTEPs (none from an older daemon).
            Print(ctx.Out, view, await OverlayCommands.TryGet(ctx.Api, ct));
            return Program.Ok;
        });
        return show;
    }

    /// <summary>" (gateway 10.1.0.1/24)" for a routed network: the router's address there, with the subnet's length; "" otherwise.</summary>
    public static string Gateway(NetworkView n)
    {
        if (n.Gateway is null) return "";
        int slash = n.Subnet?.IndexOf('/') ?? -1;
        return $" (gateway {n.Gateway}{(slash >= 0 ? n.Subnet![slash..] : "")})";
    }

    public static void Print(TextWriter w, ShowView s, OverlayView? overlay = null)
    {
        w.WriteLine($"vswitchd {s.Version}");
        if (overlay is not null && OverlayCommands.Endpoint(overlay) is { } endpoint)
            w.WriteLine($"    VXLAN endpoint {endpoint}");
        w.WriteLine($"    uptime: {Format.Duration(s.UptimeSeconds)}");
        w.WriteLine($"    threads: {s.Threads} (busy-poll {Format.OnOff(s.BusyPoll)})");
        w.WriteLine($"    mac entries: {s.MacEntries}");
        var ports = s.Ports.ToDictionary(p => p.Name);
        var vxlan = overlay?.Networks.ToDictionary(n => n.Network) ?? [];
        foreach (var n in s.Networks)
        {
            string vni = n.Vni is null ? "" : $", vni: {n.Vni}";
            w.WriteLine($"    Network {n.Name}{Gateway(n)}");
            w.WriteLine($"        vlan: {n.Vlan}{vni}, mac_aging: {n.MacAgingSeconds}s");
            // Routed networks are isolated from each other: say which ones this one may reach.
            if (n.ConnectedTo.Length > 0) w.WriteLine($"        connected to: {string.Join(", ", n.ConnectedTo)}");
            if (n.HostPort is { } hp)
                w.WriteLine($"        host port: {hp.Device}, address: {hp.Address}, masquerade: {Format.OnOff(hp.Masquerade)}");
            if (vxlan.TryGetValue(n.Name, out var o))
                w.WriteLine($"        vni {o.Vni}, vteps {(o.Vteps.Length == 0 ? "none" : string.Join(", ", o.Vteps))}"
                    + (o.AcceptUnknownVteps ? " (and unknown VTEPs)" : ""));
            foreach (string name in n.Ports)
            {
                w.WriteLine($"        Port {name}");
                if (!ports.TryGetValue(name, out var p)) continue;
                string where = p.Netns is not null ? $", netns: {p.Netns}" : p.Device is not null ? $", device: {p.Device}" : "";
                w.WriteLine($"            id: {p.Id}, type: {p.Type}{where}");
                // Like ovs-vsctl show's "error:" line: said only when the port is not up.
                if (p.State != "up") w.WriteLine($"            state: {p.State}{(p.StateReason is null ? "" : $" ({p.StateReason})")}");
                w.WriteLine(p.VlanMode == "trunk"
                    ? $"            vlan_mode: trunk, trunks: {(p.Trunks.Length == 0 ? "all" : string.Join(',', p.Trunks))}, native: {p.NativeVlan}"
                    : $"            vlan_mode: access, tag: {p.Vlan}");
                if (p.Mac is not null || p.Addresses.Length > 0)
                    w.WriteLine($"            mac: {p.Mac ?? "-"}, addresses: {(p.Addresses.Length == 0 ? "-" : string.Join(' ', p.Addresses))}");
            }
        }
    }
}
