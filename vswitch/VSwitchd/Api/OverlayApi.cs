using VSwitch.Core.Pipeline;
using VSwitch.Core.Wire;
using VSwitchd.Runtime;

namespace VSwitchd.Api;

public sealed record VtepView(string Address, long RxPackets, long RxBytes, long TxPackets, long TxBytes);
public sealed record OverlayNetworkView(string Network, uint Vni, string[] Vteps, bool AcceptUnknownVteps, int Mtu);
public sealed record OverlayView(string? Local, int Port, string? TunnelPort, OverlayNetworkView[] Networks, VtepView[] Vteps);
public sealed record VtepRequest(string? Vtep);
public sealed record RemoteMacRequest(string? Network, string? Mac, string? Vtep);

/// <summary>/v1/overlay: the VXLAN endpoint, the remote VTEPs per network and counters per VTEP.</summary>
public static class OverlayApi
{
    public static void Map(RouteGroupBuilder v1)
    {
        v1.MapGet("/overlay", (SwitchRuntime rt) => Results.Ok(View(rt)));
        v1.MapPost("/networks/{name}/vteps", (SwitchRuntime rt, string name, VtepRequest body) =>
        {
            try { rt.AddVtep(name, body.Vtep ?? ""); }
            catch (KeyNotFoundException e) { return ManagementApi.NotFound(e.Message); }
            catch (ArgumentException e) when (e.Message.Contains("already")) { return ManagementApi.Conflict(e.Message); }
            catch (ArgumentException e) { return ManagementApi.BadRequest(e.Message); }
            return Results.Created($"/v1/networks/{name}/vteps", View(rt).Networks.First(n => n.Network == name));
        });
        v1.MapDelete("/networks/{name}/vteps/{vtep}", (SwitchRuntime rt, string name, string vtep) =>
        {
            try { return rt.RemoveVtep(name, vtep) ? Results.NoContent() : ManagementApi.NotFound($"vtep {vtep} is not in network '{name}'"); }
            catch (KeyNotFoundException e) { return ManagementApi.NotFound(e.Message); }
            catch (ArgumentException e) { return ManagementApi.BadRequest(e.Message); }
        });
        v1.MapPost("/fdb", (SwitchRuntime rt, RemoteMacRequest body) =>
        {
            try { rt.AddRemoteMac(body.Network ?? "", body.Mac ?? "", body.Vtep ?? ""); }
            catch (KeyNotFoundException e) { return ManagementApi.NotFound(e.Message); }
            catch (ArgumentException e) { return ManagementApi.BadRequest(e.Message); }
            return Results.Created("/v1/fdb", ManagementApi.Fdb(rt, body.Network));
        });
        v1.MapDelete("/fdb/{mac}", (SwitchRuntime rt, string mac, string? network) =>
        {
            if (string.IsNullOrEmpty(network)) return ManagementApi.BadRequest("network: required (?network=NAME): a MAC is per network");
            try { return rt.RemoveMac(network, mac) ? Results.NoContent() : ManagementApi.NotFound($"no entry for {mac} in network '{network}'"); }
            catch (KeyNotFoundException e) { return ManagementApi.NotFound(e.Message); }
            catch (ArgumentException e) { return ManagementApi.BadRequest(e.Message); }
        });
    }

    public static OverlayView View(SwitchRuntime rt)
    {
        var nets = rt.Datapath.Topology.Networks.Where(n => n.Vni is not null)
            .Select(n => new OverlayNetworkView(n.Name, n.Vni!.Value, n.Vteps.Select(AddressFormat.IPv4).ToArray(), n.AcceptUnknownVteps, n.Mtu)).ToArray();
        var vteps = rt.Tunnel?.Vteps().OrderBy(kv => kv.Key)
            .Select(kv => new VtepView(AddressFormat.IPv4(kv.Key), kv.Value.RxPackets, kv.Value.RxBytes, kv.Value.TxPackets, kv.Value.TxBytes)).ToArray() ?? [];
        return new OverlayView(rt.Overlay?.Local, rt.Overlay?.Port ?? 0, rt.Tunnel?.Name, nets, vteps);
    }
}
