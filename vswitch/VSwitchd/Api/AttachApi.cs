using VSwitch.Api;
using VSwitchd.Runtime;
using VSwitchd.Services;

namespace VSwitchd.Api;

/// <summary>
/// /v1/attachments: containers (network namespaces) on networks, each a TAP the daemon made and
/// an address from the network's subnet. The CNI plugin and <c>vsctl attach</c> both come here.
/// </summary>
public static class AttachApi
{
    public static void Map(RouteGroupBuilder v1)
    {
        v1.MapPost("/attachments", (Attachments atts, SwitchRuntime rt, LoadBalancer lb, AttachRequest body) =>
        {
            var a = atts.Attach(body);
            return TypedResults.Created($"/v1/attachments/{a.Id}", View(a, rt) with { Dns = lb.DnsFor(a) });
        });
        v1.MapGet("/attachments", (Attachments atts, SwitchRuntime rt, LoadBalancer lb, string? network, string? containerId, string? netns, string? ifname) =>
            TypedResults.Ok(atts.Find(network, containerId, netns, ifname).Select(a => View(a, rt) with { Dns = lb.DnsFor(a) }).ToArray()));
        v1.MapGet("/attachments/{id}", (Attachments atts, SwitchRuntime rt, LoadBalancer lb, string id) =>
        {
            var a = atts.Get(id);
            return TypedResults.Ok(View(a, rt) with { Dns = lb.DnsFor(a) });
        });
        v1.MapGet("/attachments/{id}/check", (Attachments atts, string id) =>
        {
            var problems = atts.Check(atts.Get(id));
            return TypedResults.Ok(new AttachmentCheckView(problems.Count == 0, problems.ToArray()));
        });
        v1.MapPatch("/attachments/{id}", (Attachments atts, SwitchRuntime rt, string id, AttachmentLabelsRequest body) =>
            TypedResults.Ok(View(atts.SetLabels(id, body.Labels), rt)));
        v1.MapDelete("/attachments/{id}", (Attachments atts, string id) =>
        {
            atts.Remove(id);
            return TypedResults.NoContent();
        });
        // By (containerId, ifname) as CNI's DEL knows it, or (netns, ifname) as vsctl's detach does.
        v1.MapDelete("/attachments", (Attachments atts, string? containerId, string? netns, string? ifname) =>
        {
            if (containerId is null && netns is null) throw new InvalidRequestException("say which: ?containerId=ID or ?netns=NS (and &ifname=, default eth0)");
            atts.Remove(containerId, netns, ifname ?? "eth0");
            return TypedResults.NoContent();
        });
    }

    private static AttachmentView View(Attachment a, SwitchRuntime rt) => new(a.Id, a.Network, a.Netns, a.ContainerId, a.Ifname, a.Port, a.Mac, a.Mtu,
        a.Address, a.Address?.Split('/')[0], a.Gateway, a.Source, a.CreatedAt, a.Name ?? Attachments.DisplayName(null, a.ContainerId, a.Netns))
    { PortSecurity = a.PortSecurity, PinMac = a.PinMac, Labels = a.Labels ?? [], Address6 = a.Address6, Ip6 = a.Address6?.Split('/')[0], Gateway6 = a.Gateway6,
      Routes = a.Gateway is null ? null : rt.ClusterRoutes(a.Network) };
}
