using VSwitch.Cluster;
using VSwitchd.Config;

namespace VSwitchd.Runtime;

/// <summary>
/// Runs the cluster agent with the daemon. On stop it gives the lease back (a graceful leave: the other hosts remove
/// this one at once), except when handing over to a successor, which takes the same lease back.
/// </summary>
public sealed class ClusterService(SwitchRuntime runtime, ClusterConfig settings, IClusterStore store, ILogger<ClusterAgent> log) : IHostedService
{
    private ClusterAgent? _agent;

    public Task StartAsync(CancellationToken ct)
    {
        Ipv4Prefix? previous = runtime.Store?.GetMeta("cluster.subnet") is { } s && Ipv4Prefix.TryParse(s, out var p) ? p : null;
        var options = new ClusterOptions(settings.PublicIp!, TimeSpan.FromSeconds(settings.LeaseTtlSeconds), previous);
        _agent = new ClusterAgent(options, store, new ClusterDataplane(runtime, settings), log);
        runtime.ClusterSettings = settings;
        runtime.Cluster = _agent;
        log.LogInformation("cluster mode: store {Store}, public IP {PublicIp}, network '{Network}'", store.Describe, settings.PublicIp, settings.Network);
        _agent.Start();
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken ct)
    {
        if (_agent is null) return;
        await _agent.StopAsync(revoke: runtime.SuccessorPid is null);
        await store.DisposeAsync();
    }
}
