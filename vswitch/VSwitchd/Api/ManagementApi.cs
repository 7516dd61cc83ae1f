using VSwitch.Api;
using VSwitchd.Config;
using VSwitchd.Runtime;

namespace VSwitchd.Api;

/// <summary>
/// The management API: HTTP/JSON under /v1 on the daemon's Unix socket. Each endpoint binds a request
/// of the contract (VSwitch.Api), calls the runtime and returns the runtime's view; it reads no table
/// itself. A refusal is the runtime's exception, turned into a status and an <see cref="ApiErrorBody"/>
/// by <see cref="ApiErrors"/> alone.
/// </summary>
public static class ManagementApi
{
    public static void Map(WebApplication app)
    {
        var v1 = app.MapGroup("/v1");
        ApiDocs.Describe(v1);
        v1.MapGet("/show", (SwitchRuntime rt) => TypedResults.Ok(rt.Show()));

        v1.MapGet("/networks", (SwitchRuntime rt) => TypedResults.Ok(rt.ListNetworks()));
        v1.MapGet("/networks/{name}", (SwitchRuntime rt, string name) => TypedResults.Ok(rt.GetNetwork(name)));
        v1.MapPost("/networks", (SwitchRuntime rt, NetworkRequest body) =>
        {
            var n = rt.CreateNetwork(NetworkConfig.FromRequest(body));
            return TypedResults.Created($"/v1/networks/{n.Name}", n);
        });
        v1.MapPatch("/networks/{name}", (SwitchRuntime rt, string name, NetworkSettingsRequest body) => TypedResults.Ok(rt.SetNetworkSettings(name, body)));
        // Published ports (docker run -p): connections to a host address and port reach a container.
        v1.MapGet("/publish", (SwitchRuntime rt) => TypedResults.Ok(rt.ListPublishes()));
        v1.MapPost("/publish", (SwitchRuntime rt, PublishRequest body) =>
        {
            var p = rt.AddPublish(body);
            return TypedResults.Created($"/v1/publish?id={Uri.EscapeDataString(p.Id)}", p);
        });
        v1.MapDelete("/publish", (SwitchRuntime rt, string? id) =>
        {
            rt.RemovePublish(id ?? throw new InvalidRequestException("id: missing (as vsctl publish ls shows it, like *:8080/tcp)"));
            return TypedResults.NoContent();
        });
        v1.MapDelete("/networks/{name}", (SwitchRuntime rt, string name) =>
        {
            rt.RemoveNetwork(name);
            return TypedResults.NoContent();
        });

        // Isolation between networks: POST connects (both ways), DELETE isolates them again.
        v1.MapPost("/networks/{name}/connections", (SwitchRuntime rt, string name, NetworkConnectionRequest body) =>
        {
            rt.ConnectNetworks(name, body.Network ?? "");
            return TypedResults.Created($"/v1/networks/{name}/connections/{body.Network}", rt.GetNetwork(name));
        });
        v1.MapDelete("/networks/{name}/connections/{other}", (SwitchRuntime rt, string name, string other) =>
        {
            rt.DisconnectNetworks(name, other);
            return TypedResults.NoContent();
        });

        v1.MapGet("/ports", (SwitchRuntime rt, string? network) => TypedResults.Ok(rt.ListPorts(network)));
        v1.MapGet("/ports/{name}", (SwitchRuntime rt, string name) => TypedResults.Ok(rt.GetPort(name)));
        v1.MapPost("/ports", (SwitchRuntime rt, PortRequest body) =>
        {
            var p = rt.CreatePort(PortConfig.FromRequest(body));
            return TypedResults.Created($"/v1/ports/{p.Name}", p);
        });
        v1.MapPatch("/ports/{name}", (SwitchRuntime rt, string name, PortSettingsRequest body) => TypedResults.Ok(rt.SetPortSettings(name, body)));
        v1.MapDelete("/ports/{name}", (SwitchRuntime rt, string name) =>
        {
            rt.RemovePort(name);
            return TypedResults.NoContent();
        });

        v1.MapGet("/fdb", (SwitchRuntime rt, string? network, string? port) => TypedResults.Ok(rt.ListFdb(network, port)));
        // Learned entries only: static ones (remote MACs) leave one at a time, by DELETE /v1/fdb/{mac}.
        v1.MapDelete("/fdb", (SwitchRuntime rt, string? network, string? port) => TypedResults.Ok(new FlushResult(rt.FlushLearnedMacs(network, port))));

        v1.MapGet("/stats", (SwitchRuntime rt) => TypedResults.Ok(rt.GetStats()));
        v1.MapGet("/threads", (SwitchRuntime rt) => TypedResults.Ok(rt.ListThreads()));
        v1.MapPost("/threads/pin", (SwitchRuntime rt, RxQueuePinRequest body) => TypedResults.Ok(rt.PinRxQueue(body.Port, body.Queue, body.Thread)));
        v1.MapPost("/threads/rebalance", (SwitchRuntime rt, RxQueueRebalanceRequest? body) => TypedResults.Ok(rt.RebalanceRxQueues(body?.Assign)));
        RulesApi.Map(v1);
        RoutesApi.Map(v1);
        OverlayApi.Map(v1);
        FlowsApi.Map(v1);
        CaptureApi.Map(v1);
        AttachApi.Map(v1);
        ServicesApi.Map(v1);
        PolicyApi.Map(v1);
        Access.AuditApi.Map(v1);
        RestartApi.Map(v1);
        ClusterApi.Map(v1);
    }
}
