using System.Diagnostics;
using System.Text.Json;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;
using VSwitchd.Config;
using VSwitchd.Runtime;

namespace VSwitchd.Api;

/// <summary>
/// The management API: HTTP/JSON under /v1 on the daemon's Unix socket. It reads the same tables
/// the datapath uses; nothing here is a copy kept on the side. User errors come back as
/// <see cref="ApiError"/> with a 4xx status naming the bad value.
/// </summary>
public static class ManagementApi
{
    public static void Map(WebApplication app)
    {
        var v1 = app.MapGroup("/v1");
        v1.MapGet("/show", (SwitchRuntime rt) => Results.Ok(Show(rt)));

        v1.MapGet("/networks", (SwitchRuntime rt) => Results.Ok(Networks(rt)));
        v1.MapGet("/networks/{name}", (SwitchRuntime rt, string name) =>
            Networks(rt).FirstOrDefault(n => n.Name == name) is { } n ? Results.Ok(n) : NotFound($"no network named '{name}'"));
        v1.MapPost("/networks", (SwitchRuntime rt, NetworkConfig body) =>
        {
            // The running endpoint counts as the overlay section: a VXLAN network needs one.
            var cfg = new VSwitchConfig { Networks = [body], Overlay = rt.Overlay };
            var errors = cfg.Validate().Select(e => e.Replace("networks[0].", "")).ToList();
            if (errors.Count > 0) return BadRequest(string.Join("; ", errors));
            if (rt.Datapath.Topology.NetworkByName(body.Name) is not null) return Conflict($"network '{body.Name}' already exists");
            rt.AddNetwork(body);
            return Results.Created($"/v1/networks/{body.Name}", Networks(rt).First(n => n.Name == body.Name));
        });
        v1.MapDelete("/networks/{name}", (SwitchRuntime rt, string name) =>
        {
            if (rt.Datapath.Topology.NetworkByName(name) is null) return NotFound($"no network named '{name}'");
            try { rt.RemoveNetwork(name); }
            catch (InvalidOperationException e) { return Conflict(e.Message); }
            return Results.NoContent();
        });

        v1.MapGet("/ports", (SwitchRuntime rt) => Results.Ok(Ports(rt)));
        v1.MapGet("/ports/{name}", (SwitchRuntime rt, string name) =>
            Ports(rt).FirstOrDefault(p => p.Name == name) is { } p ? Results.Ok(p) : NotFound($"no port named '{name}'"));
        v1.MapPost("/ports", (SwitchRuntime rt, PortConfig body) =>
        {
            var cfg = new VSwitchConfig
            {
                Networks = rt.Datapath.Topology.Networks.Select(n => new NetworkConfig { Name = n.Name }).ToList(),
                Ports = [body],
            };
            var errors = cfg.Validate().Where(e => e.StartsWith("ports")).Select(e => e.Replace("ports[0].", "").Replace("ports[0]: ", "")).ToList();
            if (errors.Count > 0) return BadRequest(string.Join("; ", errors));
            if (rt.Datapath.Topology.PortByName(body.Name) is not null) return Conflict($"port '{body.Name}' already exists");
            try { rt.AddPort(body); }
            catch (Exception e) when (e is ArgumentException or KeyNotFoundException or VSwitch.Core.Ports.Linux.PortException or IOException)
            {
                return BadRequest($"port '{body.Name}': {e.Message}");
            }
            return Results.Created($"/v1/ports/{body.Name}", Ports(rt).First(p => p.Name == body.Name));
        });
        v1.MapDelete("/ports/{name}", (SwitchRuntime rt, string name) =>
        {
            if (rt.Datapath.Topology.PortByName(name) is null) return NotFound($"no port named '{name}'");
            rt.RemovePort(name);
            return Results.NoContent();
        });

        v1.MapGet("/fdb", (SwitchRuntime rt, string? network) =>
        {
            if (network is not null && rt.Datapath.Topology.NetworkByName(network) is null) return NotFound($"no network named '{network}'");
            return Results.Ok(Fdb(rt, network));
        });
        v1.MapDelete("/fdb", (SwitchRuntime rt, string? network, string? port) =>
        {
            var topo = rt.Datapath.Topology;
            var macs = rt.Datapath.MacTable;
            // Learned entries only: static ones (remote MACs) leave one at a time, by DELETE /v1/fdb/{mac}.
            if (port is not null)
                return topo.PortByName(port) is { } p ? Results.Ok(new FlushResult(macs.FlushLearned(port: p.Id))) : NotFound($"no port named '{port}'");
            if (network is not null)
                return topo.NetworkByName(network) is { } n ? Results.Ok(new FlushResult(macs.FlushLearned(network: n.Id))) : NotFound($"no network named '{network}'");
            return Results.Ok(new FlushResult(macs.FlushLearned()));
        });

        v1.MapGet("/stats", (SwitchRuntime rt) => Results.Ok(Stats(rt)));
        RulesApi.Map(v1);
        RoutesApi.Map(v1);
        OverlayApi.Map(v1);
        FlowsApi.Map(v1);
        AttachApi.Map(v1);
    }

    public static IResult BadRequest(string message) => Results.Json(new ApiError(message), statusCode: 400);
    public static IResult NotFound(string message) => Results.Json(new ApiError(message), statusCode: 404);
    public static IResult Conflict(string message) => Results.Json(new ApiError(message), statusCode: 409);

    private static ShowView Show(SwitchRuntime rt) => new(
        typeof(ManagementApi).Assembly.GetName().Version?.ToString() ?? "0",
        (DateTime.UtcNow - rt.StartedAt).TotalSeconds, rt.Options.Threads, rt.Options.BusyPoll,
        Networks(rt), Ports(rt), rt.Datapath.MacTable.Count);

    public static NetworkView[] Networks(SwitchRuntime rt)
    {
        var t = rt.Datapath.Topology;
        return t.Networks.Select(n => AttachApi.WithAddressing(rt, new NetworkView(n.Name, n.Id, n.Vlan, n.Vni, (int)(n.MacAgingMs / 1000),
            t.Members(n.Id).Select(p => p.Name).ToArray(),
            n.Router is { } r ? SwitchRuntime.FormatPrefix(r.Subnet, r.PrefixLength) : null,
            n.Router is { } g ? VSwitch.Core.Wire.AddressFormat.IPv4(g.Address) : null,
            n.Router is { } m ? MacAddress.Format(m.Mac) : null, n.Mtu))).ToArray();
    }

    public static PortView[] Ports(SwitchRuntime rt)
    {
        var cfgs = rt.PortConfigs;
        return rt.Datapath.Topology.Ports.OrderBy(p => p.Id).Select(p => PortView(rt, p, cfgs.GetValueOrDefault(p.Name))).ToArray();
    }

    private static PortView PortView(SwitchRuntime rt, SwitchPort p, PortConfig? c)
    {
        var k = rt.Datapath.ReadPortCounters(p.Id);
        return new PortView(p.Name, p.Id, c?.Type ?? p.Io.GetType().Name, p.Network.Name,
            p.Mode == VlanMode.Trunk ? "trunk" : "access", p.AccessVlan, p.Trunks.Select(v => (int)v).ToArray(), p.NativeVlan,
            c?.Netns, c?.Type == "afpacket" ? c.Device ?? c.Name : null, c?.Mac, c?.Addresses.ToArray() ?? [],
            new CountersView(k.RxPackets, k.RxBytes, k.TxPackets, k.TxBytes, k.RxDrops, k.TxDrops),
            p.Io is VSwitch.Core.Ports.IPortDiagnostics d ? d.Diagnostics().ToDictionary(kv => kv.Key, kv => kv.Value) : null);
    }

    public static FdbEntryView[] Fdb(SwitchRuntime rt, string? network)
    {
        var t = rt.Datapath.Topology;
        var nets = t.Networks.ToDictionary(n => n.Id, n => n.Name);
        return rt.Datapath.MacTable.Entries(Environment.TickCount64)
            .Select(e => new FdbEntryView(nets.GetValueOrDefault(e.Network, $"#{e.Network}"), e.Vlan, MacAddress.Format(e.Mac),
                t.Port(e.Port)?.Name ?? $"#{e.Port}", Math.Round(e.AgeMs / 1000.0, 1), e.IsStatic,
                e.Remote != 0 ? VSwitch.Core.Wire.AddressFormat.IPv4(e.Remote) : null))
            .Where(e => network is null || e.Network == network)
            .OrderBy(e => e.Network).ThenBy(e => e.Vlan).ThenBy(e => e.Port).ThenBy(e => e.Mac)
            .ToArray();
    }

    public static StatsView Stats(SwitchRuntime rt)
    {
        var drops = rt.Datapath.ReadDropCounters();
        var stages = rt.Datapath.ReadStageCounters();
        return new StatsView(
            Ports(rt),
            Enumerable.Range(1, drops.Length - 1).Where(i => drops[i] > 0 && i != (int)DropReason.Count)
                .Select(i => new DropView(((DropReason)i).Name(), drops[i])).ToArray(),
            stages.Select((s, i) => new StageView(rt.Datapath.Stages[i].Name, s.Calls, s.Packets,
                Math.Round(s.NsPerPacket, 1),
                s.Calls == 0 ? 0 : Math.Round((double)s.Packets / s.Calls, 1))).ToArray(),
            rt.Datapath.MacTable.Count, rt.Datapath.MacTable.Capacity, FlowsApi.CacheStats(rt));
    }
}
