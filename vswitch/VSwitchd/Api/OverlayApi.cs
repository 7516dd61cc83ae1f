using VSwitch.Api;
using VSwitchd.Runtime;

namespace VSwitchd.Api;

/// <summary>/v1/overlay: the VXLAN endpoint, the remote VTEPs per network and counters per VTEP; static remote MACs in /v1/fdb.</summary>
public static class OverlayApi
{
    public static void Map(RouteGroupBuilder v1)
    {
        v1.MapGet("/overlay", (SwitchRuntime rt) => TypedResults.Ok(rt.GetOverlay()));
        v1.MapPut("/overlay", (SwitchRuntime rt, OverlayRequest body) =>
            TypedResults.Ok(rt.SetOverlay(new VSwitchd.Config.OverlayConfig { Local = body.Local, Port = body.Port ?? 4789, UdpGso = body.UdpGso ?? true, Udp6ZeroChecksumRx = body.Udp6ZeroChecksumRx ?? false })));
        v1.MapDelete("/overlay", (SwitchRuntime rt) =>
        {
            rt.RemoveOverlay();
            return TypedResults.NoContent();
        });
        v1.MapPost("/networks/{name}/vteps", (SwitchRuntime rt, string name, VtepRequest body) =>
        {
            rt.AddVtep(name, body.Vtep ?? "");
            return TypedResults.Created($"/v1/networks/{name}/vteps", rt.GetOverlayNetwork(name));
        });
        v1.MapDelete("/networks/{name}/vteps/{vtep}", (SwitchRuntime rt, string name, string vtep) =>
        {
            rt.RemoveVtep(name, vtep);
            return TypedResults.NoContent();
        });
        v1.MapPost("/fdb", (SwitchRuntime rt, RemoteMacRequest body) =>
        {
            rt.AddRemoteMac(body.Network ?? "", body.Mac ?? "", body.Vtep ?? "");
            return TypedResults.Created("/v1/fdb", rt.ListFdb(body.Network));
        });
        v1.MapDelete("/fdb/{mac}", (SwitchRuntime rt, string mac, string? network) =>
        {
            if (string.IsNullOrEmpty(network)) throw new InvalidRequestException("network: required (?network=NAME): a MAC is per network");
            rt.RemoveMac(network, mac);
            return TypedResults.NoContent();
        });
    }
}
