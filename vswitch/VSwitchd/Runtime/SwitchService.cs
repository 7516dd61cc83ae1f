namespace VSwitchd.Runtime;

/// <summary>Starts the datapath threads with the host and stops them (removing TAPs) on SIGTERM or Ctrl-C.</summary>
public sealed class SwitchService(SwitchRuntime runtime, ILogger<SwitchService> log) : IHostedService
{
    public Task StartAsync(CancellationToken ct)
    {
        // A hitless restart's successor starts its datapath only once the predecessor's has stopped (TakeoverService).
        if (runtime.Adopting is null) runtime.Start();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct)
    {
        if (runtime.SuccessorPid is { } pid) log.LogInformation("handed over to pid {Pid}: exiting", pid);
        else log.LogInformation("stopping: removing ports");
        runtime.Dispose();
        return Task.CompletedTask;
    }
}
