using System.CommandLine;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary>
/// <c>vsctl network ls|add|inspect|rm|connect|disconnect</c>: /v1/networks (with a network's subnet and gateway when it is
/// routed, and the networks it is connected to: routed networks are isolated from each other until connected).
/// </summary>
public static class NetworkCommands
{
    public static Command Create(Cli cli)
    {
        var network = new Command("network", "Networks: isolated L2 segments that ports join");
        var ls = new Command("ls", "List networks");
        ls.Aliases.Add("list");
        Cli.ListsByDefault(network, ls, c => ConfigureList(cli, c));
        network.Subcommands.Add(ls);
        network.Subcommands.Add(Add(cli));
        network.Subcommands.Add(Inspect(cli));
        network.Subcommands.Add(Remove(cli));
        network.Subcommands.Add(Connect(cli));
        network.Subcommands.Add(Disconnect(cli));
        network.Subcommands.Add(HostPort(cli));
        network.Subcommands.Add(Masquerade(cli));
        return network;
    }

    private static void ConfigureList(Cli cli, Command command) =>
        cli.SetAction(command, async (ctx, ct) =>
        {
            var response = await ctx.Api.GetAsync("v1/networks", ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var networks = response.Read(ApiJson.Default.NetworkViewArray);
            // SUBNET and GATEWAY only when some network is routed (a pure L2 switch keeps its narrow table).
            bool routed = networks.Any(n => n.Subnet is not null);
            // SUBNET6 only when some network is dual-stack.
            bool dual = networks.Any(n => n.Subnet6 is not null);
            var table = dual
                ? new TableWriter("NAME", "VLAN", "VNI", "SUBNET", "GATEWAY", "SUBNET6", "AGING", "PORTS", "CONNECTED").Cut("CONNECTED")
                : routed
                ? new TableWriter("NAME", "VLAN", "VNI", "SUBNET", "GATEWAY", "AGING", "PORTS", "CONNECTED").Cut("CONNECTED")
                : new TableWriter("NAME", "VLAN", "VNI", "AGING", "PORTS");
            foreach (var n in networks)
            {
                if (dual) table.AddRow(n.Name, n.Vlan, n.Vni, n.Subnet, n.Gateway, n.Subnet6, n.MacAgingSeconds, n.Ports.Length, Connected(n));
                else if (routed) table.AddRow(n.Name, n.Vlan, n.Vni, n.Subnet, n.Gateway, n.MacAgingSeconds, n.Ports.Length, Connected(n));
                else table.AddRow(n.Name, n.Vlan, n.Vni, n.MacAgingSeconds, n.Ports.Length);
            }
            ctx.Write(table);
            return Program.Ok;
        });

    private static Command Add(Cli cli)
    {
        var name = new Argument<string>("NAME") { Description = "The network's name" };
        var vlan = Cli.IntOption("--vlan", "VLAN id of its access ports (0..4094, default 0: untagged)", "N");
        var vni = Cli.IntOption("--vni", "VXLAN network identifier (1..16777215)", "N");
        var aging = Cli.IntOption("--mac-aging", "Seconds a learned MAC stays without traffic (default 300)", "SECONDS");
        var subnet = new Option<string>("--subnet") { Description = "IPv4 subnet (e.g. 10.1.0.0/24): the router gets an interface on it", HelpName = "CIDR" };
        var gateway = new Option<string>("--gateway") { Description = "The router's address in --subnet (default: its first host address)", HelpName = "IP" };
        var mtu = Cli.IntOption("--mtu", "MTU of its TAPs and its router interface (68..9000; default 1500, 1450 with --vni)", "N");
        var hostPort = new Option<bool>("--host-port") { Description = "Give the host an interface on the network (vsh-NAME), the way out to the world (needs --subnet)" };
        var hostAddress = new Option<string>("--host-address") { Description = "The host's address there (default: the subnet's last host address)", HelpName = "IP" };
        var masquerade = Cli.OnOffOption("--masquerade", "Source NAT to the host's address for connections leaving through the host port (default on)");
        var subnet6 = new Option<string>("--subnet6") { Description = "IPv6 subnet (e.g. fd00:1::/64) of a dual-stack network (with --subnet): routed, with neighbour discovery and router advertisements", HelpName = "CIDR" };
        var gateway6 = new Option<string>("--gateway6") { Description = "The router's IPv6 address in --subnet6 (default: the subnet's ::1)", HelpName = "IP" };
        var noSlaac = new Option<bool>("--no-slaac") { Description = "Router advertisements do not let hosts form addresses from --subnet6 (autonomous flag off)" };
        var add = new Command("add", "Create a network") { name, vlan, vni, aging, subnet, gateway, mtu, subnet6, gateway6, noSlaac, hostPort, hostAddress, masquerade };
        add.Validators.Add(r =>
        {
            if (r.GetResult(gateway) is not null && r.GetResult(subnet) is null) r.AddError("--gateway needs --subnet (the gateway is an address in it)");
            if (r.GetResult(gateway6) is not null && r.GetResult(subnet6) is null) r.AddError("--gateway6 needs --subnet6 (the gateway is an address in it)");
            if (r.GetResult(noSlaac) is not null && r.GetResult(subnet6) is null) r.AddError("--no-slaac needs --subnet6 (it is about the IPv6 prefix's advertisements)");
            if (r.GetResult(hostPort) is null && (r.GetResult(hostAddress) is not null || r.GetResult(masquerade) is not null))
                r.AddError("--host-address and --masquerade need --host-port");
        });
        cli.SetAction(add, async (ctx, ct) =>
        {
            var body = new NetworkRequest
            {
                Name = ctx.Get(name)!, Vlan = ctx.Get(vlan), Vni = ctx.Get(vni), MacAgingSeconds = ctx.Get(aging),
                Subnet = ctx.Get(subnet), Gateway = ctx.Get(gateway), Mtu = ctx.Get(mtu),
                HostPort = ctx.Get(hostPort) ? true : null, HostAddress = ctx.Get(hostAddress), Masquerade = Cli.OnOff(ctx, masquerade),
                Subnet6 = ctx.Get(subnet6), Gateway6 = ctx.Get(gateway6), Slaac = ctx.Get(noSlaac) ? false : null,
            };
            var response = await ctx.Api.PostAsync("v1/networks", body, ApiJson.Default.NetworkRequest, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var n = response.Read(ApiJson.Default.NetworkView);
            string routed = n.Subnet is null ? "" : $", subnet {n.Subnet}, gateway {n.Gateway ?? "-"}"
                + (n.Subnet6 is null ? "" : $", subnet6 {n.Subnet6}, gateway6 {n.Gateway6 ?? "-"}");
            ctx.Out.WriteLine($"network {n.Name} added (id {n.Id}, vlan {n.Vlan}, vni {Format.Vni(n.Vni)}, mac aging {n.MacAgingSeconds}s{routed}{HostPortText(n)})");
            return Program.Ok;
        });
        return add;
    }

    private static Command Inspect(Cli cli)
    {
        var name = new Argument<string>("NAME") { Description = "The network's name" };
        var inspect = new Command("inspect", "Show one network and its ports") { name };
        cli.SetAction(inspect, async (ctx, ct) =>
        {
            var response = await ctx.Api.GetAsync("v1/networks/" + ApiClient.Escape(ctx.Get(name)!), ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var n = response.Read(ApiJson.Default.NetworkView);
            var w = ctx.Out;
            w.WriteLine($"name:       {n.Name}");
            w.WriteLine($"id:         {n.Id}");
            w.WriteLine($"vlan:       {n.Vlan}");
            w.WriteLine($"vni:        {Format.Vni(n.Vni)}");
            w.WriteLine($"mac aging:  {n.MacAgingSeconds}s");
            w.WriteLine($"subnet:     {n.Subnet ?? "-"}");
            w.WriteLine($"gateway:    {n.Gateway ?? "-"}");
            if (n.Subnet6 is not null)
            {
                w.WriteLine($"subnet6:    {n.Subnet6}");
                w.WriteLine($"gateway6:   {n.Gateway6 ?? "-"}");
                w.WriteLine($"link-local: {n.LinkLocal6 ?? "-"}");
                w.WriteLine($"slaac:      {(n.Slaac == false ? "off" : "on")}");
            }
            w.WriteLine($"router mac: {n.RouterMac ?? "-"}");
            w.WriteLine($"mtu:        {n.Mtu.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
            if (n.DockerId is not null) w.WriteLine($"docker:     {n.DockerName ?? "?"} ({(n.DockerId.Length > 12 ? n.DockerId[..12] : n.DockerId)})");
            if (n.Subnet is not null) w.WriteLine($"connected:  {Connected(n)}");
            if (n.Subnet is not null) w.WriteLine($"host port:  {(n.HostPort is { } hp ? $"{hp.Device} {hp.Address}, masquerade {Format.OnOff(hp.Masquerade)}" : "-")}");
            if (n.Subnet is not null)
                w.WriteLine($"addresses:  {(n.Allocations is { Length: > 0 } al ? string.Join(' ', al.Select(x => $"{x.Address}({(x.Ifname.Length > 0 ? x.Ifname : "-")}@{x.Name ?? x.Attachment})")) : "none in use")}");
            w.WriteLine($"ports:      {n.Ports.Length}");
            if (n.Ports.Length == 0) return Program.Ok;
            var ports = (await ctx.Api.GetAsync("v1/ports", ct)).Read(ApiJson.Default.PortViewArray).ToDictionary(p => p.Name);
            // Which container each port is (its attachment's name: Docker's container name, a pod's name).
            var containers = (await ctx.Api.GetAsync("v1/attachments?network=" + ApiClient.Escape(n.Name), ct)).Read(ApiJson.Default.AttachmentViewArray)
                .GroupBy(a => a.Port).ToDictionary(g => g.Key, g => g.First().Name);
            var table = new TableWriter("NAME", "ID", "TYPE", "VLAN", "CONTAINER", "NETNS/DEVICE", "MAC", "ADDRESSES").Cut("NETNS/DEVICE", "ADDRESSES");
            foreach (string p in n.Ports)
            {
                if (ports.TryGetValue(p, out var v))
                    table.AddRow(v.Name, v.Id, v.Type, Format.PortVlan(v), containers.GetValueOrDefault(p), Format.Where(v), v.Mac, string.Join(' ', v.Addresses));
                else
                    table.AddRow(p, null, null, null, null, null, null, null); // removed between the two requests
            }
            w.WriteLine();
            ctx.Write(table);
            return Program.Ok;
        });
        return inspect;
    }

    private static Command Remove(Cli cli)
    {
        var name = new Argument<string>("NAME") { Description = "The network's name (it must have no ports)" };
        var rm = new Command("rm", "Delete a network") { name };
        rm.Aliases.Add("remove");
        rm.Aliases.Add("del");
        cli.SetAction(rm, async (ctx, ct) =>
        {
            string n = ctx.Get(name)!;
            var response = await ctx.Api.DeleteAsync("v1/networks/" + ApiClient.Escape(n), ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            ctx.Out.WriteLine($"network {n} removed");
            return Program.Ok;
        });
        return rm;
    }

    /// <summary>", host port vsh-blue 10.1.0.254/24, masquerade on", or "".</summary>
    public static string HostPortText(NetworkView n) =>
        n.HostPort is { } hp ? $", host port {hp.Device} {hp.Address}, masquerade {Format.OnOff(hp.Masquerade)}" : "";

    private static Command HostPort(Cli cli)
    {
        var name = new Argument<string>("NAME") { Description = "A routed network" };
        var onOff = new Argument<string>("on|off") { Description = "on: give the host an interface on the network (vsh-NAME); off: remove it" };
        onOff.AcceptOnlyFromAmong("on", "off");
        var address = new Option<string>("--address") { Description = "The host's address there (default: the subnet's last host address)", HelpName = "IP" };
        var masquerade = Cli.OnOffOption("--masquerade", "Source NAT to the host's address for connections leaving (default on)");
        var cmd = new Command("host-port", "Give the host an interface on a network, or take it away (the way in and out of the switch)") { name, onOff, address, masquerade };
        cli.SetAction(cmd, async (ctx, ct) =>
        {
            bool on = ctx.Get(onOff) == "on";
            var body = new NetworkSettingsRequest { HostPort = on, HostAddress = ctx.Get(address), Masquerade = Cli.OnOff(ctx, masquerade) };
            var response = await ctx.Api.PatchAsync("v1/networks/" + ApiClient.Escape(ctx.Get(name)!), body, ApiJson.Default.NetworkSettingsRequest, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var n = response.Read(ApiJson.Default.NetworkView);
            ctx.Out.WriteLine(n.HostPort is null ? $"network {n.Name}: no host port" : $"network {n.Name}{HostPortText(n)}");
            return Program.Ok;
        });
        return cmd;
    }

    private static Command Masquerade(Cli cli)
    {
        var name = new Argument<string>("NAME") { Description = "A network with a host port" };
        var onOff = new Argument<string>("on|off") { Description = "on: connections leaving through the host port take the host's address; off: they keep their own" };
        onOff.AcceptOnlyFromAmong("on", "off");
        var cmd = new Command("masquerade", "Turn source NAT to the host's address on or off for a network's connections leaving through the host") { name, onOff };
        cli.SetAction(cmd, async (ctx, ct) =>
        {
            var body = new NetworkSettingsRequest { Masquerade = ctx.Get(onOff) == "on" };
            var response = await ctx.Api.PatchAsync("v1/networks/" + ApiClient.Escape(ctx.Get(name)!), body, ApiJson.Default.NetworkSettingsRequest, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var n = response.Read(ApiJson.Default.NetworkView);
            ctx.Out.WriteLine($"network {n.Name}{HostPortText(n)}");
            return Program.Ok;
        });
        return cmd;
    }

    /// <summary>The networks a routed network is connected to; "-" when none (isolated from every other).</summary>
    private static string Connected(NetworkView n) => n.ConnectedTo.Length == 0 ? "-" : string.Join(',', n.ConnectedTo);

    private static (Argument<string> A, Argument<string> B) Pair() =>
        (new Argument<string>("NETWORK") { Description = "A routed network" }, new Argument<string>("OTHER") { Description = "Another routed network" });

    private static Command Connect(Cli cli)
    {
        var (a, b) = Pair();
        var connect = new Command("connect", "Let the router route between two networks, both ways (routed networks are isolated from each other by default)") { a, b };
        cli.SetAction(connect, async (ctx, ct) =>
        {
            string na = ctx.Get(a)!, nb = ctx.Get(b)!;
            var response = await ctx.Api.PostAsync("v1/networks/" + ApiClient.Escape(na) + "/connections",
                new NetworkConnectionRequest(nb), ApiJson.Default.NetworkConnectionRequest, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            ctx.Out.WriteLine($"networks {na} and {nb} connected");
            return Program.Ok;
        });
        return connect;
    }

    private static Command Disconnect(Cli cli)
    {
        var (a, b) = Pair();
        var disconnect = new Command("disconnect", "Isolate two connected networks again (flows between them stop at their next packet)") { a, b };
        cli.SetAction(disconnect, async (ctx, ct) =>
        {
            string na = ctx.Get(a)!, nb = ctx.Get(b)!;
            var response = await ctx.Api.DeleteAsync("v1/networks/" + ApiClient.Escape(na) + "/connections/" + ApiClient.Escape(nb), ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            ctx.Out.WriteLine($"networks {na} and {nb} disconnected");
            return Program.Ok;
        });
        return disconnect;
    }
}
