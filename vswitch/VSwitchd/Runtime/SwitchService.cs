namespace VSwitchd.Runtime;

/// <summary>Starts the datapath threads with the host and stops them (removing TAPs) on SIGTERM or Ctrl-C.</summary>
public sealed class SwitchService(SwitchRuntime runtime, ILogger<SwitchService> log) : IHostedService
{
    public Task StartAsync(CancellationToken ct)
    {
        runtime.Start();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct)
    {
        log.LogInformation("stopping: removing ports");
        runtime.Dispose();
        return Task.CompletedTask;
    }
}
