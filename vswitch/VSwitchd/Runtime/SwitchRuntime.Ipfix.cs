using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using VSwitch.Api;
using VSwitchd.Ipfix;

namespace VSwitchd.Runtime;

/// <summary>IPFIX flow export: one exporter at most, its settings stored in the state database (meta key "ipfix").</summary>
public sealed partial class SwitchRuntime
{
    private static readonly JsonSerializerOptions IpfixJson = new(JsonSerializerDefaults.Web);
    private readonly object _ipfixGate = new();
    private IpfixExporter? _ipfix;

    /// <summary>Starts exporting to a collector, or moves the export (the old exporter sends what it has, then stops).</summary>
    public IpfixView SetIpfix(IpfixRequest r, bool persist = true)
    {
        var settings = CheckIpfix(r);
        lock (_ipfixGate)
        {
            _ipfix?.Dispose();
            _ipfix = null;
            try { _ipfix = new IpfixExporter(Datapath, settings); }
            catch (SocketException e) { throw new InvalidRequestException($"collector '{r.Collector}': {e.Message}"); }
            if (persist) Store?.SetMeta("ipfix", JsonSerializer.Serialize(r, IpfixJson));
            return _ipfix.View();
        }
    }

    public IpfixView GetIpfix()
    {
        lock (_ipfixGate)
            return _ipfix?.View() ?? new IpfixView(false, null, 1, DefaultActiveTimeout, DefaultIdleTimeout, 0, IpfixExporter.TemplateRefreshSeconds, 0, 0, 0, 0, 0, null);
    }

    /// <summary>Stops the export and forgets its settings; 404 when it was not on.</summary>
    public void DisableIpfix()
    {
        lock (_ipfixGate)
        {
            if (_ipfix is null) throw new NotFoundException("IPFIX export is not on");
            StopIpfix();
            Store?.DeleteMeta("ipfix");
        }
    }

    private void StopIpfix()
    {
        lock (_ipfixGate)
        {
            _ipfix?.Dispose();
            _ipfix = null;
        }
    }

    private void RestoreIpfix()
    {
        if (Store?.GetMeta("ipfix") is not { } json) return;
        try { SetIpfix(JsonSerializer.Deserialize<IpfixRequest>(json, IpfixJson)!, persist: false); }
        catch (Exception e) when (e is SwitchRuntimeException or JsonException)
        {
            _log.LogWarning("stored IPFIX export {Ipfix} no longer applies: {Error}", json, e.Message);
        }
    }

    private const int DefaultActiveTimeout = 60, DefaultIdleTimeout = 15;

    private static IpfixSettings CheckIpfix(IpfixRequest r)
    {
        string c = r.Collector?.Trim() ?? "";
        if (c.Length == 0) throw new InvalidRequestException("give the collector: HOST:PORT (e.g. 127.0.0.1:4739)");
        int colon = c.LastIndexOf(':');
        if (colon <= 0 || !ushort.TryParse(c[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out ushort port) || port == 0)
            throw new InvalidRequestException($"collector '{c}' must be HOST:PORT with a port 1..65535 ([ADDRESS]:PORT for IPv6)");
        string host = c[..colon].Trim('[', ']');
        IPAddress? address;
        if (!IPAddress.TryParse(host, out address))
        {
            try { address = Dns.GetHostAddresses(host).FirstOrDefault(); }
            catch (SocketException e) { throw new InvalidRequestException($"collector '{c}': cannot resolve '{host}': {e.Message}"); }
            if (address is null) throw new InvalidRequestException($"collector '{c}': '{host}' has no address");
        }
        int sampling = r.Sampling ?? 1;
        if (sampling is < 1 or > 1_000_000) throw new InvalidRequestException($"sampling {sampling} must be 1..1000000 (1: every flow)");
        int active = r.ActiveTimeoutSeconds ?? DefaultActiveTimeout, idle = r.IdleTimeoutSeconds ?? DefaultIdleTimeout;
        if (active is < 1 or > 86400) throw new InvalidRequestException($"activeTimeoutSeconds {active} must be 1..86400");
        if (idle is < 1 or > 86400) throw new InvalidRequestException($"idleTimeoutSeconds {idle} must be 1..86400");
        long domain = r.DomainId ?? 0;
        if (domain is < 0 or > uint.MaxValue) throw new InvalidRequestException($"domainId {domain} must be 0..4294967295");
        return new IpfixSettings(c, new IPEndPoint(address, port), sampling, active, idle, (uint)domain);
    }
}
