using System.Net;
using System.Net.Sockets;
using System.Text;
using VSwitchd.Host;

namespace VSwitchd.Services;

/// <summary>
/// Active health checks of service backends: a TCP connect (or an HTTP GET of a path) every interval,
/// <c>fall</c> failures in a row take a backend out of its service's Maglev table, <c>rise</c> successes
/// bring it back; each change republishes the tables at once.
///
/// Where the probe runs: the daemon lives in the host namespace and has no route to containers'
/// addresses (they are reached only through the switch's own ports). The probe's socket is made in the
/// switch's services namespace (<see cref="ServiceNamespace"/>: attached to every routed network), with
/// setns on one thread for the socket() call only (<see cref="SocketInNetns"/>), then used from anywhere;
/// so the probe takes the path a client's connection takes, through the switch. Probing from inside the
/// backend's own namespace was the first idea and was dropped: a connection to one's own address goes over
/// loopback, which `ip netns add` leaves down (every backend then looked dead), and it does not see the switch.
/// A crashed server answers the connect with a reset at once, a hung one lets it time out, and a backend
/// in a switch network's subnet that no attachment or port holds (its container is gone) is unhealthy at once.
/// </summary>
public sealed class HealthChecker(LoadBalancer lb, ILogger<HealthChecker> log)
{
    /// <summary>One backend to probe, with the settings it is probed by; a change of any field restarts its probe.</summary>
    public sealed record ProbeTarget(string Service, string Key, string Ip, int Port, string Netns, string? Gone, HealthCheckConfig Config);

    private sealed class Probe
    {
        public required ProbeTarget Target;
        public required CancellationTokenSource Stop;
        public bool Up = true;
        public bool Checked;
        public int Failures, Successes;
        public string? Detail;
        public DateTime? Since;
    }

    private readonly object _gate = new();
    private readonly Dictionary<(string, string), Probe> _probes = [];

    /// <summary>Whether a backend may take new connections as far as health goes (true until probes say otherwise, and when not probed).</summary>
    public bool IsUp(string service, string key)
    {
        lock (_gate) return !_probes.TryGetValue((service, key), out var p) || p.Up;
    }

    /// <summary>healthy, unhealthy, pending (no result yet) or unchecked, with the last result.</summary>
    public (string Health, string? Detail) Describe(string service, string key, bool checksEnabled)
    {
        lock (_gate)
        {
            if (!_probes.TryGetValue((service, key), out var p))
                return ("unchecked", checksEnabled ? null : "health checks off (or a UDP-only service)");
            if (!p.Checked) return ("pending", p.Detail);
            return (p.Up ? "healthy" : "unhealthy", p.Detail);
        }
    }

    /// <summary>Starts probes for new targets, restarts changed ones, stops those no longer wanted.</summary>
    public void Sync(IReadOnlyList<ProbeTarget> targets)
    {
        lock (_gate)
        {
            var wanted = targets.ToDictionary(t => (t.Service, t.Key));
            foreach (var (k, p) in _probes.ToArray())
                if (!wanted.TryGetValue(k, out var t) || t != p.Target)
                {
                    p.Stop.Cancel();
                    if (t is null || t.Config != p.Target.Config || t.Port != p.Target.Port) _probes.Remove(k);
                    else
                    {
                        // Only where it runs changed (a container came back): keep its state, probe from the new place.
                        p.Target = t;
                        p.Stop = new CancellationTokenSource();
                        Start(p);
                    }
                }
            foreach (var (k, t) in wanted)
                if (!_probes.ContainsKey(k))
                {
                    var p = new Probe { Target = t, Stop = new CancellationTokenSource() };
                    _probes[k] = p;
                    Start(p);
                }
        }
    }

    /// <summary>Forgets a service's probes (checks turned off, or the service removed).</summary>
    public void Forget(string service)
    {
        lock (_gate)
            foreach (var (k, p) in _probes.ToArray())
                if (k.Item1 == service)
                {
                    p.Stop.Cancel();
                    _probes.Remove(k);
                }
    }

    public void StopAll()
    {
        lock (_gate)
        {
            foreach (var p in _probes.Values) p.Stop.Cancel();
            _probes.Clear();
        }
    }

    private void Start(Probe p)
    {
        var ct = p.Stop.Token;
        _ = Task.Run(() => Loop(p, ct), ct);
    }

    private async Task Loop(Probe p, CancellationToken ct)
    {
        var t = p.Target;
        while (!ct.IsCancellationRequested)
        {
            long start = Environment.TickCount64;
            string? failure;
            try { failure = await Check(t, ct); }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            catch (Exception e) when (e is not OutOfMemoryException) { failure = e.Message; }
            bool changed;
            lock (_gate)
            {
                if (ct.IsCancellationRequested) return;
                changed = Record(p, failure);
            }
            if (changed)
            {
                log.LogWarning("service {Service}: backend {Backend} is {State} ({Detail})", t.Service, t.Key, p.Up ? "healthy again" : "unhealthy", p.Detail);
                lb.Publish();
            }
            int wait = t.Config.IntervalMs - (int)(Environment.TickCount64 - start);
            try { if (wait > 0) await Task.Delay(wait, ct); }
            catch (OperationCanceledException) { return; }
        }
    }

    /// <summary>Counts one result; true when the backend went up or down.</summary>
    private static bool Record(Probe p, string? failure)
    {
        var c = p.Target.Config;
        p.Detail = failure ?? (c.Path is null ? "tcp connect ok" : $"GET {c.Path} ok");
        if (failure is null) { p.Successes++; p.Failures = 0; }
        else { p.Failures++; p.Successes = 0; }
        bool wasUp = p.Up;
        if (!p.Checked)
        {
            // The first result decides at once: a backend added dead should not wait fall intervals, nor a live one rise.
            p.Checked = true;
            p.Up = failure is null;
        }
        else if (p.Up && p.Failures >= c.Fall) p.Up = false;
        else if (!p.Up && p.Successes >= c.Rise) p.Up = true;
        if (wasUp != p.Up) p.Since = DateTime.UtcNow;
        return wasUp != p.Up;
    }

    /// <summary>Null when healthy, else what failed.</summary>
    private static async Task<string?> Check(ProbeTarget t, CancellationToken ct)
    {
        if (t.Gone is not null) return t.Gone;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(t.Config.TimeoutMs);
        Socket s;
        try { s = SocketInNetns.Create(t.Netns, AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp); }
        catch (IOException e) { return e.Message; }
        using (s)
        {
            s.NoDelay = true;
            try
            {
                await s.ConnectAsync(new IPEndPoint(IPAddress.Parse(t.Ip), t.Port), timeout.Token);
                if (t.Config.Path is not { } path) return null;
                var request = Encoding.ASCII.GetBytes($"GET {path} HTTP/1.0\r\nHost: {t.Ip}:{t.Port}\r\nUser-Agent: vswitchd-health\r\nConnection: close\r\n\r\n");
                await s.SendAsync(request, SocketFlags.None, timeout.Token);
                var buf = new byte[64];
                int n = 0;
                while (n < 12)
                {
                    int r = await s.ReceiveAsync(buf.AsMemory(n), SocketFlags.None, timeout.Token);
                    if (r == 0) break;
                    n += r;
                }
                string status = Encoding.ASCII.GetString(buf, 0, n);
                // "HTTP/1.x NNN ...": 2xx and 3xx are healthy, as HAProxy's httpchk and Kubernetes' httpGet say.
                if (n >= 12 && status.StartsWith("HTTP/", StringComparison.Ordinal) && status[9] is '2' or '3') return null;
                return $"GET {path}: {(n == 0 ? "no answer" : status.Split('\r')[0])}";
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                return $"no answer from {t.Ip}:{t.Port} in {t.Config.TimeoutMs} ms";
            }
            catch (SocketException e)
            {
                return $"{t.Ip}:{t.Port}: {e.SocketErrorCode switch { SocketError.ConnectionRefused => "connection refused", SocketError.NetworkUnreachable => "network unreachable", SocketError.HostUnreachable => "host unreachable", _ => e.Message }}";
            }
        }
    }
}
