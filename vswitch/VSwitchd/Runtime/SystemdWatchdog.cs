using Microsoft.Extensions.Hosting.Systemd;
using VSwitch.Core;

namespace VSwitchd.Runtime;

/// <summary>
/// systemd's watchdog (WatchdogSec= in the unit, which sets WATCHDOG_USEC): sends WATCHDOG=1 through the notify
/// socket at half the interval, but only while every datapath thread is alive and has not stopped on a fault.
/// A thread that stopped on a fault no longer forwards its ports; the daemon then stops petting, and systemd kills
/// and restarts it (Restart=on-failure), which re-attaches every port from the state database. Without
/// WATCHDOG_USEC, or outside systemd (no NOTIFY_SOCKET), it does nothing.
/// </summary>
public sealed class SystemdWatchdog(SwitchRuntime runtime, IServiceProvider services, ILogger<SystemdWatchdog> log) : BackgroundService
{
    private static readonly ServiceState Watchdog = new("WATCHDOG=1");

    /// <summary>The interval systemd expects a ping within, from WATCHDOG_USEC (and WATCHDOG_PID when set: it must be this process).</summary>
    public static TimeSpan? Interval(Func<string, string?> env, int pid)
    {
        if (!long.TryParse(env("WATCHDOG_USEC"), out long usec) || usec <= 0) return null;
        string? forPid = env("WATCHDOG_PID");
        if (!string.IsNullOrEmpty(forPid) && forPid != pid.ToString(System.Globalization.CultureInfo.InvariantCulture)) return null;
        return TimeSpan.FromMicroseconds(usec);
    }

    /// <summary>True while the datapath forwards: every thread running, none stopped on a fault.</summary>
    public static bool DatapathAlive(IReadOnlyList<DatapathThread> threads, out string? why)
    {
        for (int i = 0; i < threads.Count; i++)
        {
            if (threads[i].StoppedOnFault) { why = $"datapath thread {i} stopped on a fault"; return false; }
            if (!threads[i].IsRunning) { why = $"datapath thread {i} is not running"; return false; }
        }
        why = null;
        return true;
    }

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        var notifier = services.GetService<ISystemdNotifier>();
        if (notifier is not { IsEnabled: true }) return;
        if (Interval(Environment.GetEnvironmentVariable, Environment.ProcessId) is not { } interval) return;
        var period = interval / 2;
        log.LogInformation("systemd watchdog: {Interval} s, pinged every {Period} s while the datapath threads are alive",
            interval.TotalSeconds, period.TotalSeconds);
        using var timer = new PeriodicTimer(period);
        bool petting = true;
        do
        {
            if (DatapathAlive(runtime.Threads, out string? why))
            {
                notifier.Notify(Watchdog);
                if (!petting) log.LogWarning("systemd watchdog: the datapath is alive again, pinging again");
                petting = true;
            }
            else if (petting)
            {
                petting = false;
                log.LogCritical("systemd watchdog: {Why}; no longer pinging: systemd will restart vswitchd", why);
            }
        }
        while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false) is true);
    }
}
