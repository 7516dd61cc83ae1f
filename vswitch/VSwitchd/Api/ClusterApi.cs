using VSwitch.Api;
using VSwitchd.Runtime;

namespace VSwitchd.Api;

/// <summary>/v1/cluster: cluster mode's state, read only (the store is where hosts are added and removed).</summary>
public static class ClusterApi
{
    public static void Map(RouteGroupBuilder v1)
    {
        v1.MapGet("/cluster", (SwitchRuntime rt) => TypedResults.Ok(rt.GetCluster()));
        v1.MapGet("/cluster/hosts", (SwitchRuntime rt) => TypedResults.Ok(rt.ListClusterHosts()));
    }
}
