using VSwitch.Api;
using VSwitchd.Services;

namespace VSwitchd.Api;

/// <summary>
/// /v1/services: load-balanced virtual IPs and their backends (README "Services"). Backends are named by
/// their address in the path, <c>IP:PORT</c> or <c>IP</c>, as <c>vsctl service backend</c> writes them.
/// </summary>
public static class ServicesApi
{
    public static void Map(RouteGroupBuilder v1)
    {
        v1.MapGet("/services", (LoadBalancer lb) => TypedResults.Ok(lb.Views()));
        v1.MapGet("/services/{name}", (LoadBalancer lb, string name) => TypedResults.Ok(lb.View(name)));
        v1.MapPost("/services", (LoadBalancer lb, ServiceRequest body) =>
        {
            var s = lb.Add(body);
            return TypedResults.Created($"/v1/services/{s.Name}", lb.View(s.Name));
        });
        v1.MapDelete("/services/{name}", (LoadBalancer lb, string name) =>
        {
            lb.Remove(name);
            return TypedResults.NoContent();
        });
        v1.MapPost("/services/{name}/backends", (LoadBalancer lb, string name, BackendRequest body) =>
        {
            lb.AddBackend(name, body);
            return TypedResults.Ok(lb.View(name));
        });
        v1.MapDelete("/services/{name}/backends/{address}", (LoadBalancer lb, string name, string address) =>
        {
            lb.RemoveBackend(name, address);
            return TypedResults.Ok(lb.View(name));
        });
        v1.MapPost("/services/{name}/backends/{address}/drain", (LoadBalancer lb, string name, string address) =>
        {
            lb.Drain(name, address, true);
            return TypedResults.Ok(lb.View(name));
        });
        v1.MapDelete("/services/{name}/backends/{address}/drain", (LoadBalancer lb, string name, string address) =>
        {
            lb.Drain(name, address, false);
            return TypedResults.Ok(lb.View(name));
        });
    }
}
