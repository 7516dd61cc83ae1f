using VSwitchd.Runtime;

namespace VSwitchd.Api;

/// <summary>
/// /v1/attachments: containers (network namespaces) on networks, each a TAP the daemon made and
/// an address from the network's subnet. The CNI plugin and <c>vsctl attach</c> both come here.
/// </summary>
public static class AttachApi
{
    public static void Map(RouteGroupBuilder v1)
    {
        v1.MapPost("/attachments", (Attachments atts, AttachRequest body) =>
        {
            try
            {
                var a = atts.Attach(body);
                return Results.Created($"/v1/attachments/{a.Id}", View(a));
            }
            catch (AttachException e) { return Results.Json(new ApiError(e.Message), statusCode: e.Status); }
        });
        v1.MapGet("/attachments", (Attachments atts, string? network, string? containerId, string? netns, string? ifname) =>
            Results.Ok(Select(atts, network, containerId, netns, ifname).Select(View).ToArray()));
        v1.MapGet("/attachments/{id}", (Attachments atts, string id) =>
            atts.Get(id) is { } a ? Results.Ok(View(a)) : ManagementApi.NotFound($"no attachment '{id}'"));
        v1.MapGet("/attachments/{id}/check", (Attachments atts, string id) =>
        {
            if (atts.Get(id) is not { } a) return ManagementApi.NotFound($"no attachment '{id}'");
            var problems = atts.Check(a);
            return Results.Ok(new AttachmentCheckView(problems.Count == 0, problems.ToArray()));
        });
        v1.MapDelete("/attachments/{id}", (Attachments atts, string id) =>
            atts.Detach(id) ? Results.NoContent() : ManagementApi.NotFound($"no attachment '{id}'"));
        // By (containerId, ifname) as CNI's DEL knows it, or (netns, ifname) as vsctl's detach does.
        v1.MapDelete("/attachments", (Attachments atts, string? containerId, string? netns, string? ifname) =>
        {
            if (containerId is null && netns is null) return ManagementApi.BadRequest("say which: ?containerId=ID or ?netns=NS (and &ifname=, default eth0)");
            var found = Select(atts, null, containerId, netns, ifname ?? "eth0");
            if (found.Length == 0)
                return ManagementApi.NotFound($"no attachment of {(containerId is not null ? $"container '{containerId}'" : $"namespace '{netns}'")} with interface {ifname ?? "eth0"}");
            foreach (var a in found) atts.Detach(a.Id);
            return Results.NoContent();
        });
    }

    private static Attachment[] Select(Attachments atts, string? network, string? containerId, string? netns, string? ifname) =>
        atts.List().Where(a => (network is null || a.Network == network) && (containerId is null || a.ContainerId == containerId)
            && (netns is null || a.Netns == netns) && (ifname is null || a.Ifname == ifname)).ToArray();

    public static AttachmentView View(Attachment a) => new(a.Id, a.Network, a.Netns, a.ContainerId, a.Ifname, a.Port, a.Mac, a.Mtu,
        a.Address, a.Address?.Split('/')[0], a.Gateway, a.Source, a.CreatedAt);

    /// <summary>The network view with its address plan: subnet, gateway, MTU and the addresses in use.</summary>
    public static NetworkView WithAddressing(SwitchRuntime rt, NetworkView v)
    {
        var cfg = rt.NetworkConfig(v.Name);
        if (cfg is null) return v;
        Ipv4Pool? pool = null;
        try { pool = Ipv4Pool.Of(cfg.Subnet, cfg.Gateway); } catch (ArgumentException) { }
        var allocations = rt.Attachments?.Allocations(v.Name)
            .Select(x => new AllocationView(x.Address.Split('/')[0], x.Owner.Id, x.Owner.ContainerId, x.Owner.Ifname, x.Owner.Port)).ToArray() ?? [];
        return v with
        {
            Subnet = v.Subnet ?? pool?.Subnet,
            Gateway = v.Gateway ?? pool?.GatewayAddress,
            Subnet6 = cfg.Subnet6,
            Gateway6 = cfg.Gateway6,
            Allocations = allocations,
        };
    }
}
