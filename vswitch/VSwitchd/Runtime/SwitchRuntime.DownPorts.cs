using VSwitch.Api;
using VSwitchd.Config;
using VSwitchd.Host;

namespace VSwitchd.Runtime;

/// <summary>
/// Ports whose device is missing: a stored port whose namespace or interface is not there at start
/// (named namespaces vanish at every reboot), or a port whose device vanished under it (its namespace
/// deleted, its veth removed). Such a port never stops the daemon from starting; it is kept, shown as
/// down with the reason, costs nothing, and comes back by itself when its device can be had again:
/// an AF_PACKET port when an interface of that name exists again, a TAP port when its namespace
/// exists again (a new TAP is created in it, addressed as configured). `vsctl port del` removes it
/// for good. Attachments are not kept down: their namespace is the container, and a container that is
/// gone is detached (Attachments).
/// </summary>
public sealed partial class SwitchRuntime
{
    private readonly Dictionary<string, (PortConfig Config, string Reason)> _down = [];
    private readonly Dictionary<string, long> _deviceLosses = [];
    private long _deviceLossesTotal;

    /// <summary>The detail counter (PortView.Details) of the times a port's device vanished under it.</summary>
    public const string DeviceLossesDetail = "device-losses";

    /// <summary>Times a port's device vanished while the port ran (namespace deleted, interface removed), since it was added.</summary>
    public long DeviceLosses(string port) { lock (_gate) return _deviceLosses.GetValueOrDefault(port); }

    /// <summary>Times any port's device vanished while it ran, since the start.</summary>
    public long DeviceLossesTotal => Interlocked.Read(ref _deviceLossesTotal);

    /// <summary>Ports kept down, by name, with why.</summary>
    public IReadOnlyDictionary<string, (PortConfig Config, string Reason)> DownPorts
    {
        get { lock (_gate) return new Dictionary<string, (PortConfig, string)>(_down); }
    }

    private void KeepDown(PortConfig p, string reason)
    {
        lock (_gate)
        {
            _down[p.Name] = (p, reason);
            _portConfigs[p.Name] = p;
        }
        _log.LogWarning("port {Port} is down: {Reason}; it comes back by itself when {When}, or 'vsctl port del {Port}' removes it",
            p.Name, reason, WhenBack(p), p.Name);
    }

    private static string WhenBack(PortConfig p) => p.AttachesDevice
        ? $"interface {p.Device ?? p.Name} exists again"
        : p.Netns is not null ? $"namespace {p.Netns} exists again" : "its TAP can be created again";

    /// <summary>Whether the device a down port needs is there again (so that trying costs nothing while it is not).</summary>
    private static bool DeviceAvailable(PortConfig p) => p.AttachesDevice
        ? Directory.Exists($"/sys/class/net/{p.Device ?? p.Name}")
        : p.Netns is null || File.Exists(NetConfig.NetnsPath(p.Netns)!);

    /// <summary>
    /// Once a second: ports whose device vanished leave the datapath and are kept down; down ports whose
    /// device is back are created again.
    /// </summary>
    private void TendDownPorts()
    {
        foreach (var port in Datapath.Topology.Ports)
        {
            if (port.Io.Fault is not { } fault || port.IsTunnel || Attachments?.IfnameOf(port.Name) is not null) continue;
            lock (_gate)
            {
                // Out of the datapath and into the down list at once: the API never sees it in neither.
                var cfg = _portConfigs.GetValueOrDefault(port.Name);
                if (cfg is null || Datapath.Topology.PortByName(port.Name) is null) continue;
                Datapath.RemovePort(port.Name);
                _deviceLosses[port.Name] = _deviceLosses.GetValueOrDefault(port.Name) + 1;
                Interlocked.Increment(ref _deviceLossesTotal);
                KeepDown(cfg, fault);
                WaitQuiescent(Datapath.Topology.Version);
                port.Io.Dispose();
            }
        }
        foreach (var (name, (cfg, reason)) in DownPorts)
        {
            if (!DeviceAvailable(cfg)) continue;
            try
            {
                lock (_gate)
                {
                    if (!_down.ContainsKey(name)) continue; // deleted meanwhile
                    AddPort(cfg, persist: false);
                    _down.Remove(name);
                }
                _log.LogInformation("port {Port} is up again: its device is back", name);
            }
            catch (Exception e) when (e is SwitchRuntimeException or VSwitch.Core.Ports.Linux.PortException or IOException or ArgumentException)
            {
                lock (_gate)
                {
                    if (_down.TryGetValue(name, out var d) && d.Reason != e.Message) _down[name] = (cfg, e.Message);
                }
            }
        }
    }

    /// <summary>A down port as the API shows it: id 0 (it has no datapath port), state down, no counters.</summary>
    private PortView DownPortView(PortConfig c, string reason) => new(
        c.Name, 0, c.Type ?? "tap", c.Network ?? "", c.VlanMode ?? "access", c.Vlan ?? 0, [.. c.Trunks], c.NativeVlan, c.Netns,
        c.AttachesDevice ? c.Device ?? c.Name : null, c.Mac, [.. c.Addresses], new CountersView(0, 0, 0, 0, 0, 0),
        DeviceLosses(c.Name) is > 0 and var lost ? new() { [DeviceLossesDetail] = lost } : null,
        "down", $"{reason} (it comes back when {WhenBack(c)})") { PortSecurity = c.PortSecurity, PinMac = c.PinMac };
}
