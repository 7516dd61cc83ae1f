using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary><c>vsctl port ls|add|set|rm</c>: /v1/ports.</summary>
public static class PortCommands
{
    public static Command Create(Cli cli)
    {
        var port = new Command("port", "Ports: tap devices vswitchd creates, or existing interfaces it attaches (afpacket, afxdp)");
        var ls = new Command("ls", "List ports with their counters");
        ls.Aliases.Add("list");
        Cli.ListsByDefault(port, ls, c => ConfigureList(cli, c));
        port.Subcommands.Add(ls);
        port.Subcommands.Add(Show(cli));
        port.Subcommands.Add(Add(cli));
        port.Subcommands.Add(Set(cli));
        port.Subcommands.Add(Remove(cli));
        return port;
    }

    private static void ConfigureList(Cli cli, Command command)
    {
        var network = new Option<string>("--network") { Description = "Only this network's ports", HelpName = "NET" };
        command.Options.Add(network);
        cli.SetAction(command, async (ctx, ct) =>
        {
            string? net = ctx.Get(network);
            var response = await ctx.Api.GetAsync("v1/ports" + (net is null ? "" : "?network=" + ApiClient.Escape(net)), ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var table = new TableWriter("NAME", "ID", "TYPE", "NETWORK", "VLAN", "NETNS/DEVICE", "STATE", "SECURITY", "RX-PKTS", "TX-PKTS", "DROPS").Cut("NETNS/DEVICE", "VLAN");
            var ports = response.Read(ApiJson.Default.PortViewArray);
            foreach (var p in ports)
                table.AddRow(p.Name, p.Id, p.Type, p.Network, Format.PortVlan(p), Format.Where(p), p.State, Format.PortSecurity(p),
                    p.Counters.RxPackets, p.Counters.TxPackets, p.Counters.RxDrops + p.Counters.TxDrops);
            ctx.Write(table);
            // How each AF_XDP port runs (native or generic XDP, copy or zero-copy), and what the kernel refused.
            foreach (var p in ports.Where(p => p.Features?.GetValueOrDefault("xdp") is not null))
                ctx.Out.WriteLine($"{p.Name}: AF_XDP {p.Features!["xdp"]}, queue {p.Features.GetValueOrDefault("queue")}"
                    + (p.Features.GetValueOrDefault("fallback") is { } fb ? $" (refused: {fb})" : ""));
            // What each port's neighbour sent that was refused, and MAC moves onto it: who did it, by reason.
            foreach (var p in ports.Where(p => p.SecurityDrops is { Count: > 0 } || p.MacMoves > 0))
                ctx.Out.WriteLine($"{p.Name}: " + string.Join(", ", (p.SecurityDrops ?? []).OrderBy(kv => kv.Key, StringComparer.Ordinal)
                    .Select(kv => $"{kv.Key} {kv.Value}").Concat(p.MacMoves > 0 ? [$"mac-moves-in {p.MacMoves}"] : [])));
            // Why a port is not up, under the table (the reason is too long for a column).
            foreach (var p in ports.Where(p => p.State != "up" && p.StateReason is not null))
                ctx.Out.WriteLine($"{p.Name}: {p.State}: {p.StateReason}"
                    + (p.Details?.GetValueOrDefault("device-losses") is > 0 and var lost ? $" (its device vanished {lost} time(s))" : ""));
            return Program.Ok;
        });
    }

    private static Command Add(Cli cli)
    {
        var name = new Argument<string>("NAME") { Description = "The port's name (the tap's interface name, at most 15 characters)" };
        var network = new Option<string>("--network") { Description = "The network it joins", HelpName = "NET", Required = true };
        var type = new Option<string>("--type") { Description = "tap: create a tap device; afpacket, afxdp: attach an existing interface", Required = true };
        type.AcceptOnlyFromAmong("tap", "afpacket", "afxdp");
        var netns = new Option<string>("--netns") { Description = "tap: move it into this network namespace (name or /proc/PID/ns/net)", HelpName = "NS" };
        var ip = new Option<string[]>("--ip") { Description = "tap: an address with prefix, e.g. 10.0.0.2/24 (repeatable)", HelpName = "CIDR" };
        var gateway = new Option<string>("--gateway") { Description = "tap: default route via this address", HelpName = "IP" };
        var mac = new Option<string>("--mac") { Description = "tap: its MAC address", HelpName = "MAC" };
        var mtu = Cli.IntOption("--mtu", "MTU (68..9000)", "N");
        var device = new Option<string>("--device") { Description = "afpacket, afxdp: the interface to attach (default: NAME)", HelpName = "IFNAME" };
        var xdpQueue = Cli.IntOption("--xdp-queue", "afxdp: the receive queue to bind (default 0)", "N");
        var xdpMode = new Option<string>("--xdp-mode") { Description = "afxdp: auto (default), zerocopy or copy", HelpName = "MODE" };
        xdpMode.AcceptOnlyFromAmong("auto", "zerocopy", "copy");
        var xdpAttach = new Option<string>("--xdp-attach") { Description = "afxdp: where the XDP program runs: auto (default), native or generic", HelpName = "WHERE" };
        xdpAttach.AcceptOnlyFromAmong("auto", "native", "generic");
        var xdpRing = Cli.IntOption("--xdp-ring-size", "afxdp: entries of each ring, a power of two 64..16384 (default 2048)", "N");
        var ringFrames = Cli.IntOption("--ring-frames", "afpacket: receive-ring slots per queue, at least 8, at most 256 MiB of ring (default 120)", "N");
        var frameSize = Cli.IntOption("--frame-size", "afpacket: bytes of a ring slot, a multiple of 16, 1600..131072 (default 69632, a 64 KiB GSO frame; "
            + "smaller needs the peer's GSO/TSO off, or big frames are truncated and dropped)", "N");
        var vlan = Cli.IntOption("--vlan", "Access VLAN (default: the network's)", "N");
        var trunks = new Option<int[]>("--trunks")
        {
            Description = "Make it a trunk carrying these VLANs, e.g. 10,20",
            HelpName = "LIST",
            CustomParser = ParseVlanList,
        };
        var nativeVlan = Cli.IntOption("--native-vlan", "Trunk: the VLAN of untagged frames", "N");
        var persistent = new Option<bool>("--persistent")
        {
            Description = "tap: keep the device (and its addresses) when vswitchd stops or crashes; the next vswitchd re-attaches it. 'port del' removes it",
        };
        var security = Cli.OnOffOption("--port-security", "tap: frames only from its MAC (--mac, or the device's) and --ip addresses (default off)");
        var pin = Cli.OnOffOption("--pin-mac", "tap: its MAC may not move to another port; default off");
        var add = new Command("add", "Add a port (an access port of the network's VLAN unless --trunks makes it a trunk)")
            { name, network, type, netns, ip, gateway, mac, mtu, device, vlan, trunks, nativeVlan, security, pin, persistent, xdpQueue, xdpMode, xdpAttach, xdpRing, ringFrames, frameSize };
        add.Validators.Add(r =>
        {
            bool trunk = r.GetResult(trunks) is not null;
            if (trunk && r.GetResult(vlan) is not null) r.AddError("--vlan sets an access port's VLAN; a trunk (--trunks) takes --native-vlan");
            if (!trunk && r.GetResult(nativeVlan) is not null) r.AddError("--native-vlan is for trunks; give --trunks too");
            bool xdpOptions = r.GetResult(xdpQueue) is not null || r.GetResult(xdpMode) is not null || r.GetResult(xdpAttach) is not null || r.GetResult(xdpRing) is not null;
            if (xdpOptions && r.GetValue(type) != "afxdp") r.AddError("--xdp-queue, --xdp-mode, --xdp-attach and --xdp-ring-size are for --type afxdp");
            if ((r.GetResult(ringFrames) is not null || r.GetResult(frameSize) is not null) && r.GetValue(type) != "afpacket")
                r.AddError("--ring-frames and --frame-size are for --type afpacket (an afxdp port has --xdp-ring-size)");
        });
        cli.SetAction(add, async (ctx, ct) =>
        {
            // An absent list option still reads as an empty array: only a given --trunks makes a trunk
            // (issue 16: every port had become a trunk of all VLANs).
            int[]? t = ctx.Parse.GetResult(trunks) is null ? null : ctx.Get(trunks);
            string[]? addresses = ctx.Get(ip);
            var body = new PortRequest
            {
                Name = ctx.Get(name)!, Type = ctx.Get(type)!, Network = ctx.Get(network)!, Netns = ctx.Get(netns),
                Addresses = addresses is { Length: > 0 } ? addresses : null, Gateway = ctx.Get(gateway), Mac = ctx.Get(mac), Mtu = ctx.Get(mtu),
                Device = ctx.Get(device), VlanMode = t is null ? "access" : "trunk", Vlan = ctx.Get(vlan), Trunks = t, NativeVlan = ctx.Get(nativeVlan),
                PortSecurity = Cli.OnOff(ctx, security), PinMac = Cli.OnOff(ctx, pin),
                Persistent = ctx.Get(persistent) ? true : null,
                Afxdp = ctx.Get(type) == "afxdp"
                    ? new AfxdpSettings { Queue = ctx.Get(xdpQueue), Mode = ctx.Get(xdpMode), Attach = ctx.Get(xdpAttach), RingSize = ctx.Get(xdpRing) }
                    : null,
                Afpacket = ctx.Get(ringFrames) is not null || ctx.Get(frameSize) is not null
                    ? new AfpacketSettings { RingFrames = ctx.Get(ringFrames), FrameSize = ctx.Get(frameSize) }
                    : null,
            };
            var response = await ctx.Api.PostAsync("v1/ports", body, ApiJson.Default.PortRequest, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var p = response.Read(ApiJson.Default.PortView);
            string where = Format.Where(p) is { } w ? $", {(p.Netns is not null ? "netns" : "device")} {w}" : "";
            ctx.Out.WriteLine($"port {p.Name} added (id {p.Id}, {p.Type}, network {p.Network}, vlan {Format.PortVlan(p)}{where})");
            return Program.Ok;
        });
        return add;
    }

    private static Command Show(Cli cli)
    {
        var name = new Argument<string>("NAME") { Description = "The port's name" };
        var show = new Command("show", "One port: where it is, how it does its I/O (an afpacket port's receive ring), and all its counters") { name };
        cli.SetAction(show, async (ctx, ct) =>
        {
            var response = await ctx.Api.GetAsync("v1/ports/" + ApiClient.Escape(ctx.Get(name)!), ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            PrintPort(ctx, response.Read(ApiJson.Default.PortView));
            return Program.Ok;
        });
        return show;
    }

    /// <summary>A port as a header line, its features (how it does its I/O) and its counters, each a two-column table.</summary>
    private static void PrintPort(Context ctx, PortView p)
    {
        string where = Format.Where(p) is { } w ? $", {(p.Netns is not null ? "netns" : "device")} {w}" : "";
        ctx.Out.WriteLine($"port {p.Name} (id {p.Id}, {p.Type}, network {p.Network}, vlan {Format.PortVlan(p)}{where}): {p.State}"
            + (p.StateReason is { } why ? $": {why}" : ""));
        if (p.Features is { Count: > 0 } features)
        {
            ctx.Out.WriteLine();
            var f = new TableWriter("FEATURE", "VALUE").Cut("VALUE");
            foreach (var kv in features) f.AddRow(kv.Key, kv.Value);
            ctx.Write(f);
        }
        ctx.Out.WriteLine();
        var c = new TableWriter("COUNTER", "VALUE");
        c.AddRow("rx-packets", p.Counters.RxPackets).AddRow("rx-bytes", p.Counters.RxBytes).AddRow("tx-packets", p.Counters.TxPackets)
            .AddRow("tx-bytes", p.Counters.TxBytes).AddRow("rx-drops", p.Counters.RxDrops).AddRow("tx-drops", p.Counters.TxDrops)
            .AddRow("rx-unsent", p.Counters.RxUnsent);
        foreach (var kv in (p.Details ?? []).OrderBy(kv => kv.Key, StringComparer.Ordinal)) c.AddRow(kv.Key, kv.Value);
        ctx.Write(c);
        // The two ways an AF_PACKET ring loses frames, with what to do about each.
        if (p.Details?.GetValueOrDefault("rx-ring-full-drops") is > 0 and var full)
            ctx.Out.WriteLine($"{p.Name}: the kernel dropped {full} frame(s) at a full receive ring (a bigger ring: --ring-frames, or more receive queues)");
        if (p.Details?.GetValueOrDefault("rx-truncated") is > 0 and var cut)
            ctx.Out.WriteLine($"{p.Name}: {cut} frame(s) were larger than a ring slot ({p.Features?.GetValueOrDefault("largest-frame") ?? "?"} bytes) and were dropped: "
                + "turn the peer's GSO/TSO off (ethtool -K DEV tso off gso off) or give a larger --frame-size");
    }

    /// <summary>"10,20" (or repeated --trunks 10 --trunks 20) into VLAN ids; anything else is a usage error.</summary>
    private static int[] ParseVlanList(ArgumentResult result)
    {
        var vlans = new List<int>();
        foreach (var token in result.Tokens)
            foreach (string part in token.Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v is < 1 or > 4094)
                {
                    result.AddError($"--trunks: '{part}' is not a VLAN id (1..4094)");
                    return [];
                }
                vlans.Add(v);
            }
        if (vlans.Count == 0) result.AddError("--trunks needs at least one VLAN id, e.g. --trunks 10,20");
        return vlans.ToArray();
    }

    private static Command Set(Cli cli)
    {
        var name = new Argument<string>("NAME") { Description = "The port's name" };
        var security = Cli.OnOffOption("--port-security", "Frames only from the port's MAC and addresses");
        var pin = Cli.OnOffOption("--pin-mac", "The port's MAC may not move to another port");
        var set = new Command("set", "Change a port's security: --port-security, --pin-mac") { name, security, pin };
        set.Validators.Add(r =>
        {
            if (r.GetResult(security) is null && r.GetResult(pin) is null) r.AddError("give --port-security on|off and/or --pin-mac on|off");
        });
        cli.SetAction(set, async (ctx, ct) =>
        {
            string n = ctx.Get(name)!;
            var body = new PortSettingsRequest { PortSecurity = Cli.OnOff(ctx, security), PinMac = Cli.OnOff(ctx, pin) };
            var response = await ctx.Api.PatchAsync("v1/ports/" + ApiClient.Escape(n), body, ApiJson.Default.PortSettingsRequest, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var p = response.Read(ApiJson.Default.PortView);
            ctx.Out.WriteLine($"port {p.Name}: port security {Format.OnOff(p.PortSecurity)}, pinned MAC {Format.OnOff(p.PinMac)}");
            return Program.Ok;
        });
        return set;
    }

    private static Command Remove(Cli cli)
    {
        var name = new Argument<string>("NAME") { Description = "The port's name" };
        var rm = new Command("rm", "Remove a port (a tap is deleted; an afpacket interface is left as it was)") { name };
        rm.Aliases.Add("remove");
        rm.Aliases.Add("del");
        cli.SetAction(rm, async (ctx, ct) =>
        {
            string n = ctx.Get(name)!;
            var response = await ctx.Api.DeleteAsync("v1/ports/" + ApiClient.Escape(n), ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            ctx.Out.WriteLine($"port {n} removed");
            return Program.Ok;
        });
        return rm;
    }
}
