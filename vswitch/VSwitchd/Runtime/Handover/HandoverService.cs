using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Net.Sockets;
using Microsoft.Extensions.Hosting.Systemd;
using VSwitch.Api;

namespace VSwitchd.Runtime.Handover;

/// <summary>
/// Predecessor side of a hitless restart (`vsctl restart`, POST /v1/restart, SIGUSR2): starts the successor (this
/// binary or another: an upgrade) with <c>--takeover PATH</c>, hands it every descriptor that carries traffic over
/// PATH (SCM_RIGHTS), stops its own datapath only once the successor's runtime is built over them, sends what the
/// datapath learned, and lets go once the successor's datapath runs. Until then nothing is lost: this process keeps
/// forwarding, and any failure (the successor missing, exiting, refusing, or silent) resumes it and is reported.
/// </summary>
public sealed class HandoverService(SwitchRuntime runtime, DaemonHandles handles, WriteGate writes, IHostApplicationLifetime lifetime,
    IServiceProvider services, ILogger<HandoverService> log) : IHostedService
{
    /// <summary>How long a successor may take to connect and to build its runtime (a cold .NET start, many ports).</summary>
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(15);

    private int _busy;
    private FdChannel? _successor;
    private PosixSignalRegistration? _sigusr2;

    /// <summary>Hands over to a new process of <paramref name="binary"/> (null: the binary this daemon runs).</summary>
    public async Task<RestartView> RestartAsync(string? binary)
    {
        binary = string.IsNullOrWhiteSpace(binary) ? Environment.ProcessPath ?? throw new HandoverException("cannot tell which binary this daemon runs: give one") : binary.Trim();
        if (!File.Exists(binary)) throw new InvalidRequestException($"binary: '{binary}' does not exist");
        if ((File.GetUnixFileMode(binary) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) == 0)
            throw new InvalidRequestException($"binary: '{binary}' is not executable");
        if (runtime.SuccessorPid is { } pid) throw new ConflictException($"this vswitchd already handed over to pid {pid}");
        if (Interlocked.CompareExchange(ref _busy, 1, 0) != 0) throw new ConflictException("a restart is already under way");
        try
        {
            return await Task.Factory.StartNew(() => HandOver(binary), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        finally
        {
            if (runtime.SuccessorPid is null) Volatile.Write(ref _busy, 0);
        }
    }

    private RestartView HandOver(string binary)
    {
        var started = Stopwatch.StartNew();
        string path = handles.State + ".handover";
        if (File.Exists(path)) File.Delete(path); // a crashed hand-over's: nobody listens on it
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite); // root's only, like the state database
        listener.Listen(1);
        if (!writes.Close(StepTimeout)) log.LogWarning("restart: API writes still running after {Seconds} s; handing over anyway", StepTimeout.TotalSeconds);
        Process? successor = null;
        FdChannel? channel = null;
        try
        {
            var psi = new ProcessStartInfo(binary) { UseShellExecute = false };
            foreach (var a in handles.CarriedArgs.Concat(["--socket", handles.Socket, "--state", handles.State, "--takeover", path])) psi.ArgumentList.Add(a);
            // systemd's watchdog names this process; the successor pings once it is the main process (MAINPID).
            psi.Environment.Remove("WATCHDOG_PID");
            try { successor = Process.Start(psi) ?? throw new HandoverException($"cannot start {binary}"); }
            catch (System.ComponentModel.Win32Exception e) { throw new HandoverException($"cannot start {binary}: {e.Message}"); }
            log.LogInformation("restart: started {Binary} as pid {Pid}; handing over to it", binary, successor.Id);

            HandoverJson.Warm();
            channel = Accept(listener, successor, binary);
            var hello = Expect<HelloMessage>(channel, "hello", StepTimeout, successor, binary);
            if (hello.Version != HandoverJson.Version)
                throw new HandoverException($"{binary} speaks hand-over version {hello.Version}, this vswitchd {HandoverJson.Version}");

            double gapMs = 0, successorGapMs = 0;
            int ports = 0;
            runtime.Exclusive(() =>
            {
                runtime.SuspendTimer();
                var fds = new List<int>();
                var offered = runtime.OpenPorts(fds, afXdp: hello.Adopts?.Contains("afxdp") == true);
                ports = offered.Length;
                int api = fds.Count;
                fds.Add(handles.ApiFd);
                int lk = fds.Count;
                fds.Add(handles.Lock.Fd);
                channel.Send(Envelope.Of("offer", new OfferMessage(HandoverJson.Version, Environment.ProcessId, offered, api, lk, fds.Count)));
                channel.SendFds(fds);
                var ready = Expect<ReadyMessage>(channel, "ready", StartTimeout, successor, binary);
                // From here the successor's runtime stands over the same descriptors. This datapath stops reading
                // before the successor's starts: frames arriving meanwhile wait in the TAP queues, socket buffers and rings.
                runtime.PauseDatapath();
                long stoppedAt = Stopwatch.GetTimestamp();
                channel.Send(Envelope.Of("learned", runtime.ExportLearned()));
                var running = Expect<RunningMessage>(channel, "running", StepTimeout, successor, binary);
                gapMs = Stopwatch.GetElapsedTime(stoppedAt).TotalMilliseconds;
                successorGapMs = running.GapMs;
                runtime.HandedOver(successor.Id);
                handles.Lock.HandedOver();
                log.LogInformation("restart: pid {Pid} adopted {Adopted} of {Ports} port(s) and forwards; this datapath was stopped {Gap:0.0} ms before it ran",
                    successor.Id, ready.AdoptedPorts, offered.Length, successorGapMs);
                return 0;
            });
            _successor = channel;
            channel = null;
            // The caller stops this host once its answer is out; should that never happen (the client went away), stop anyway.
            _ = Task.Delay(TimeSpan.FromSeconds(5)).ContinueWith(_ => lifetime.StopApplication(), TaskScheduler.Default);
            // Under systemd the service's main process is the successor from now on (the unit has NotifyAccess=all, and
            // this is the main process's own word too): this one exits 0 without systemd taking the service as stopped.
            if (services.GetService<ISystemdNotifier>() is { IsEnabled: true } notifier)
                notifier.Notify(new ServiceState($"MAINPID={successor.Id}"));
            return new RestartView(Environment.ProcessId, successor.Id, binary, ports, Math.Round(successorGapMs, 2), Math.Round(gapMs, 2),
                Math.Round(started.Elapsed.TotalMilliseconds, 1));
        }
        catch (Exception e) when (e is HandoverException or IOException or SocketException)
        {
            runtime.ResumeDatapath(); // the timer, and the threads if they were paused
            StopSuccessor(successor);
            writes.Open();
            string message = $"restart failed, this vswitchd (pid {Environment.ProcessId}) keeps running: {e.Message}";
            log.LogError("{Message}", message);
            throw new HandoverException(message);
        }
        finally
        {
            channel?.Dispose();
            successor?.Dispose();
            try { File.Delete(path); } catch (IOException) { }
        }
    }

    /// <summary>The successor's connection, or why there is none: it exited, or did not connect in time.</summary>
    private static FdChannel Accept(Socket listener, Process successor, string binary)
    {
        var deadline = DateTime.UtcNow + StartTimeout;
        while (DateTime.UtcNow < deadline)
        {
            if (listener.Poll(TimeSpan.FromMilliseconds(100), SelectMode.SelectRead)) return FdChannel.Own(listener.Accept());
            if (successor.HasExited) throw Exited(successor, binary, "before it connected");
        }
        throw new HandoverException($"{binary} (pid {successor.Id}) did not connect within {StartTimeout.TotalSeconds:0} s");
    }

    /// <summary>The next message, which must be <typeparamref name="T"/>; the successor's own failure or its exit says why not.</summary>
    private static T Expect<T>(FdChannel channel, string type, TimeSpan timeout, Process successor, string binary)
    {
        Envelope e;
        try { e = channel.Receive<Envelope>(timeout, $"the successor's '{type}'"); }
        catch (HandoverException) when (successor.WaitForExit(2000))
        {
            throw Exited(successor, binary, $"before '{type}'");
        }
        if (e.Type == "failed") throw new HandoverException($"the successor (pid {successor.Id}) failed: {e.Read<FailedMessage>().Error}");
        if (e.Type != type) throw new HandoverException($"the successor sent '{e.Type}' instead of '{type}'");
        return e.Read<T>();
    }

    private static HandoverException Exited(Process p, string binary, string when) =>
        new($"{binary} (pid {p.Id}) exited with code {p.ExitCode} {when} (its messages are in this daemon's log)");

    private void StopSuccessor(Process? p)
    {
        if (p is null) return;
        try
        {
            if (p.HasExited) return;
            log.LogWarning("restart: stopping the successor, pid {Pid}", p.Id);
            p.Kill();
            p.WaitForExit(5000);
        }
        catch (InvalidOperationException) { }
    }

    public Task StartAsync(CancellationToken ct)
    {
        // SIGUSR2 (12) as nginx and HAProxy use it: restart without loss, the same binary. SIGHUP stays free for a reload.
        _sigusr2 = PosixSignalRegistration.Create((PosixSignal)12, ctx =>
        {
            ctx.Cancel = true;
            log.LogInformation("SIGUSR2: restarting without loss");
            _ = Task.Run(async () =>
            {
                try
                {
                    await RestartAsync(null);
                    lifetime.StopApplication();
                }
                catch (Exception e) when (e is SwitchRuntimeException or HandoverException) { log.LogError("SIGUSR2: {Error}", e.Message); }
            });
        });
        return Task.CompletedTask;
    }

    /// <summary>
    /// The host stops after a hand-over with its API listener already closed (the web server stops first): the
    /// successor may now accept on the shared socket without this process taking a request it could not serve.
    /// </summary>
    public Task StopAsync(CancellationToken ct)
    {
        _sigusr2?.Dispose();
        if (Interlocked.Exchange(ref _successor, null) is { } ch)
        {
            try { ch.Send(Envelope.Of("released", new ReleasedMessage(Environment.ProcessId))); }
            catch (HandoverException e) { log.LogWarning("restart: telling the successor the API is its own: {Error}", e.Message); }
            ch.Dispose();
        }
        return Task.CompletedTask;
    }
}
