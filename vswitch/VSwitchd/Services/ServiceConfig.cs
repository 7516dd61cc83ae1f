using System.Globalization;
using System.Net;
using System.Net.Sockets;
using VSwitch.Api;
using VSwitch.Core.Wire;
using VSwitchd.Runtime;

namespace VSwitchd.Services;

/// <summary>One port of a service: VIP:Port/Protocol goes to backend:TargetPort (unless the backend names its own port).</summary>
public sealed record ServicePort(int Port, string Protocol, int TargetPort)
{
    public byte ProtocolNumber => Protocol == "udp" ? IpProtocols.Udp : IpProtocols.Tcp;

    /// <summary>Parses <c>80/tcp</c>, <c>80:8080/tcp</c>, <c>53/udp</c>; <c>80</c> alone is TCP.</summary>
    public static ServicePort Parse(string spec)
    {
        string s = spec.Trim().ToLowerInvariant();
        string proto = "tcp";
        int slash = s.IndexOf('/');
        if (slash >= 0)
        {
            proto = s[(slash + 1)..];
            s = s[..slash];
            if (proto is not ("tcp" or "udp")) throw new InvalidRequestException($"port '{spec}': the protocol must be tcp or udp, not '{proto}'");
        }
        int colon = s.IndexOf(':');
        string port = colon < 0 ? s : s[..colon], target = colon < 0 ? s : s[(colon + 1)..];
        if (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out int p) || p is < 1 or > 65535)
            throw new InvalidRequestException($"port '{spec}': '{port}' is not a port number (1..65535); write PORT[:TARGET]/tcp|udp, e.g. 80/tcp or 80:8080/tcp");
        if (!int.TryParse(target, NumberStyles.None, CultureInfo.InvariantCulture, out int t) || t is < 1 or > 65535)
            throw new InvalidRequestException($"port '{spec}': the target '{target}' is not a port number (1..65535)");
        return new ServicePort(p, proto, t);
    }

    public override string ToString() => Port == TargetPort ? $"{Port}/{Protocol}" : $"{Port}:{TargetPort}/{Protocol}";
}

/// <summary>A backend added by address. Port null: each service port's target port.</summary>
public sealed record StaticBackend(string Ip, int? Port, int Weight)
{
    public string Key => Port is null ? Ip : $"{Ip}:{Port}";

    /// <summary>Parses <c>IP</c> or <c>IP:PORT</c> (IPv4).</summary>
    public static (string Ip, int? Port) ParseAddress(string? text)
    {
        string s = text?.Trim() ?? "";
        if (s.Length == 0) throw new InvalidRequestException("address: must be given as IP:PORT (e.g. 10.1.0.7:8080) or IP");
        string ip = s;
        int? port = null;
        int colon = s.LastIndexOf(':');
        if (colon >= 0)
        {
            ip = s[..colon];
            if (!int.TryParse(s[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int p) || p is < 1 or > 65535)
                throw new InvalidRequestException($"backend '{s}': '{s[(colon + 1)..]}' is not a port number (1..65535)");
            port = p;
        }
        if (!IPAddress.TryParse(ip, out var a) || a.AddressFamily != AddressFamily.InterNetwork || ip.Count(c => c == '.') != 3)
            throw new InvalidRequestException($"backend '{s}': '{ip}' is not an IPv4 address");
        return (a.ToString(), port);
    }
}

/// <summary>Health checks as configured (defaults: on, every second, 500 ms timeout, out after 2 failures, back after 2 successes).</summary>
public sealed record HealthCheckConfig
{
    public bool Enabled { get; init; } = true;
    public int IntervalMs { get; init; } = 1000;
    public int TimeoutMs { get; init; } = 500;
    public int Fall { get; init; } = 2;
    public int Rise { get; init; } = 2;
    /// <summary>HTTP GET of this path (a 2xx or 3xx answer is healthy) instead of a bare TCP connect.</summary>
    public string? Path { get; init; }

    public static HealthCheckConfig From(HealthCheckRequest? r)
    {
        var d = new HealthCheckConfig();
        if (r is null) return d;
        var c = new HealthCheckConfig
        {
            Enabled = r.Enabled ?? d.Enabled, IntervalMs = r.IntervalMs ?? d.IntervalMs, TimeoutMs = r.TimeoutMs ?? d.TimeoutMs,
            Fall = r.Fall ?? d.Fall, Rise = r.Rise ?? d.Rise, Path = string.IsNullOrWhiteSpace(r.Path) ? null : r.Path.Trim(),
        };
        if (c.IntervalMs is < 100 or > 3_600_000) throw new InvalidRequestException($"healthCheck.intervalMs: {c.IntervalMs} must be 100..3600000");
        if (c.TimeoutMs < 10 || c.TimeoutMs > c.IntervalMs) throw new InvalidRequestException($"healthCheck.timeoutMs: {c.TimeoutMs} must be 10..intervalMs ({c.IntervalMs})");
        if (c.Fall is < 1 or > 100) throw new InvalidRequestException($"healthCheck.fall: {c.Fall} must be 1..100");
        if (c.Rise is < 1 or > 100) throw new InvalidRequestException($"healthCheck.rise: {c.Rise} must be 1..100");
        if (c.Path is { } p && (!p.StartsWith('/') || p.Any(ch => ch <= ' ' || ch >= 127)))
            throw new InvalidRequestException($"healthCheck.path: '{p}' must start with '/' and hold no spaces or control characters");
        return c;
    }

    public HealthCheckView View() => new(Enabled, IntervalMs, TimeoutMs, Fall, Rise, Path);
}

/// <summary>A service as the state database keeps it (JSON in the services table).</summary>
public sealed record ServiceConfig
{
    public string Name { get; init; } = "";
    public string Vip { get; init; } = "";
    public List<ServicePort> Ports { get; init; } = [];
    /// <summary>"none" or "client-ip".</summary>
    public string Affinity { get; init; } = "none";
    public int AffinityTimeoutSeconds { get; init; }
    public Dictionary<string, string> Selector { get; init; } = [];
    public HealthCheckConfig HealthCheck { get; init; } = new();
    public List<StaticBackend> Backends { get; init; } = [];
    /// <summary>Backends (IP or IP:PORT keys) that take no new connection.</summary>
    public List<string> Draining { get; init; } = [];

    /// <summary>Kubernetes' default sessionAffinityConfig.clientIP.timeoutSeconds (3 h).</summary>
    public const int DefaultAffinityTimeout = 10800;

    public static ServiceConfig FromRequest(ServiceRequest r)
    {
        string name = r.Name?.Trim() ?? "";
        if (WhyNotName(name) is { } why) throw new InvalidRequestException("name: " + why);
        string vipText = r.Vip?.Trim() ?? "";
        if (!IPAddress.TryParse(vipText, out var vip) || vip.AddressFamily != AddressFamily.InterNetwork || vipText.Count(c => c == '.') != 3)
            throw new InvalidRequestException($"vip: '{vipText}' is not an IPv4 address (services take an address of the service range, e.g. 10.96.0.10)");
        if (r.Ports is not { Length: > 0 }) throw new InvalidRequestException("ports: give at least one, e.g. 80/tcp");
        var ports = r.Ports.Select(ServicePort.Parse).ToList();
        foreach (var g in ports.GroupBy(p => (p.Port, p.Protocol)))
            if (g.Count() > 1) throw new InvalidRequestException($"ports: {g.Key.Port}/{g.Key.Protocol} is given twice");
        string affinity = (r.Affinity ?? "none").Trim().ToLowerInvariant();
        if (affinity is not ("none" or "client-ip")) throw new InvalidRequestException($"affinity: '{r.Affinity}' must be none or client-ip");
        int timeout = r.AffinityTimeoutSeconds ?? (affinity == "client-ip" ? DefaultAffinityTimeout : 0);
        if (r.AffinityTimeoutSeconds is not null && affinity != "client-ip") throw new InvalidRequestException("affinityTimeoutSeconds: only with affinity client-ip");
        if ((affinity == "client-ip" && timeout < 1) || timeout is < 0 or > 86400)
            throw new InvalidRequestException($"affinityTimeoutSeconds: {timeout} must be 1..86400 (Kubernetes' bounds)");
        if (Labels.WhyNot(r.Selector) is { } badSel) throw new InvalidRequestException("selector: " + badSel);
        return new ServiceConfig
        {
            Name = name, Vip = vip.ToString(), Ports = ports, Affinity = affinity, AffinityTimeoutSeconds = timeout,
            Selector = r.Selector is null ? [] : new Dictionary<string, string>(r.Selector, StringComparer.Ordinal),
            HealthCheck = HealthCheckConfig.From(r.HealthCheck),
        };
    }

    /// <summary>A service name is a DNS label (RFC 1123, as Kubernetes' service names): it is also the name DNS answers for.</summary>
    public static string? WhyNotName(string name) =>
        name.Length is >= 1 and <= 63 && name.All(c => c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-') && name[0] != '-' && name[^1] != '-'
            ? null
            : $"'{name}' must be 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit (it is a DNS name)";
}
