using Microsoft.Extensions.Hosting.Systemd;

namespace VSwitchd.Runtime.Handover;

/// <summary>
/// Successor side of a hitless restart, started with <c>--takeover PATH</c>. Program connects and receives the
/// descriptors before anything is built (<see cref="Connect"/>); the runtime then builds its ports over them
/// (SwitchRuntime.Adopting), the attachments theirs, and this service, started after those, finishes: it says
/// ready, waits until the predecessor's datapath has stopped, loads what it learned, starts this datapath, says so,
/// and waits for the predecessor's API listener to close before the web server (which starts after the hosted
/// services) accepts. Any failure before 'running' stops this process, and the predecessor goes on forwarding.
/// </summary>
public sealed class TakeoverService(SwitchRuntime runtime, Takeover takeover, IServiceProvider services, ILogger<TakeoverService> log) : IHostedService
{
    public Task StartAsync(CancellationToken ct)
    {
        var ch = takeover.Channel;
        var inventory = takeover.Inventory;
        try
        {
            foreach (var name in inventory.CloseUntaken())
                log.LogWarning("takeover: port {Port} was handed over but is no longer stored: its descriptor is closed", name);
            runtime.PrepareDatapath();
            HandoverJson.Warm();
            ch.Send(Envelope.Of("ready", new ReadyMessage(inventory.Adopted)));
            var e = ch.Receive<Envelope>(HandoverService.StartTimeout, "the predecessor's learned state");
            if (e.Type != "learned") throw new HandoverException($"the predecessor sent '{e.Type}' instead of 'learned'");
            var learned = e.Read<LearnedMessage>();
            // For the tests of the worst failure: after the predecessor stopped its datapath (it must resume it).
            if (Environment.GetEnvironmentVariable("VSWITCHD_TEST_TAKEOVER_FAULT") == "after-learned")
                throw new HandoverException("VSWITCHD_TEST_TAKEOVER_FAULT=after-learned: failing on purpose after the predecessor stopped");
            int macs = runtime.ImportLearned(learned);
            runtime.Start();
            double gap = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - learned.StoppedAtUnixMs;
            ch.Send(Envelope.Of("running", new RunningMessage(Environment.ProcessId, gap)));
            log.LogInformation("took over from pid {Pid}: {Adopted} port(s), {Macs} MAC entries, {Neighbors} neighbour(s); no datapath read for {Gap} ms",
                inventory.Offer.Pid, inventory.Adopted, macs, learned.Neighbors.Length, gap);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            try { ch.Send(Envelope.Of("failed", new FailedMessage(ex.Message))); } catch (HandoverException) { }
            ch.Dispose();
            throw;
        }
        if (services.GetService<ISystemdNotifier>() is { IsEnabled: true } notifier)
            notifier.Notify(new ServiceState($"MAINPID={Environment.ProcessId}"));
        try
        {
            var released = ch.Receive<Envelope>(TimeSpan.FromSeconds(30), "the predecessor's release of the API socket");
            log.LogInformation("takeover: pid {Pid} let go; this vswitchd serves the API", inventory.Offer.Pid);
        }
        catch (HandoverException ex) { log.LogWarning("takeover: {Error}; serving the API anyway", ex.Message); }
        finally { ch.Dispose(); }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
}

/// <summary>The successor's hand-over connection and what came over it (Program makes it before building anything).</summary>
public sealed class Takeover(FdChannel channel, TakeoverInventory inventory)
{
    public FdChannel Channel { get; } = channel;
    public TakeoverInventory Inventory { get; } = inventory;

    /// <summary>Connects to the predecessor, says hello and receives its offer and descriptors.</summary>
    public static Takeover Connect(string path)
    {
        var ch = FdChannel.Connect(path);
        try
        {
            // The test hook plays a build that cannot take AF_XDP ports over (RestartTests, AfXdpPortTests).
            bool noXdp = Environment.GetEnvironmentVariable("VSWITCHD_TEST_TAKEOVER_FAULT") == "no-afxdp";
            ch.Send(Envelope.Of("hello", new HelloMessage(HandoverJson.Version, Environment.ProcessId) { Adopts = noXdp ? [] : ["afxdp"] }));
            var e = ch.Receive<Envelope>(TimeSpan.FromSeconds(30), "the predecessor's offer");
            if (e.Type != "offer") throw new HandoverException($"the predecessor sent '{e.Type}' instead of 'offer'");
            var offer = e.Read<OfferMessage>();
            if (offer.Version != HandoverJson.Version) throw new HandoverException($"the predecessor speaks hand-over version {offer.Version}, this vswitchd {HandoverJson.Version}");
            var fds = ch.ReceiveFds(offer.FdCount, TimeSpan.FromSeconds(30));
            return new Takeover(ch, new TakeoverInventory(offer, fds));
        }
        catch
        {
            ch.Dispose();
            throw;
        }
    }

    /// <summary>Tells the predecessor this process cannot take over (it then keeps running).</summary>
    public void Fail(string error)
    {
        try { Channel.Send(Envelope.Of("failed", new FailedMessage(error))); } catch (HandoverException) { }
        Channel.Dispose();
    }
}
