using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using VSwitch.Api;
using VSwitch.Core.Topology;
using VSwitch.Core.Wire;
using VSwitchd.Config;
using VSwitchd.Host;

namespace VSwitchd.Runtime;

// Port security and pinned MACs: what a port's configuration asks for, turned into the datapath's
// PortSecurity (the MAC and addresses frames must come from); changed in place by PATCH /v1/ports/{name}.
public sealed partial class SwitchRuntime
{
    /// <summary>The port's MAC (configured, else the device's) and, with port security on, what it may send as.</summary>
    private static (PortSecurity? Security, ulong Mac) SecurityOf(PortConfig p)
    {
        ulong mac = 0;
        if (p.Mac is not null) mac = MacAddress.Parse(p.Mac);
        else if (p.Type == "tap" && (p.PortSecurity || p.PinMac))
        {
            try { mac = LinkProbe.Probe(p.Name, p.Netns).Mac ?? 0; }
            catch (Exception e) when (e is VSwitch.Core.Ports.Linux.PortException or IOException) { mac = 0; }
        }
        if (!p.PortSecurity) return (null, mac);
        if (mac == 0) throw new InvalidRequestException($"port '{p.Name}': port security needs the port's MAC, and it could not be read (give mac)");
        var v4 = new List<uint>();
        var v6 = new List<UInt128>();
        foreach (var cidr in p.Addresses)
        {
            if (!IPAddress.TryParse(cidr.Split('/')[0], out var ip)) continue;
            if (ip.AddressFamily == AddressFamily.InterNetwork) v4.Add(BinaryPrimitives.ReadUInt32BigEndian(ip.GetAddressBytes()));
            else v6.Add(BinaryPrimitives.ReadUInt128BigEndian(ip.GetAddressBytes()));
        }
        return (new PortSecurity(mac, v4, v6), mac);
    }

    /// <summary>Publishes the port again with the security settings of its configuration.</summary>
    internal void ApplyPortSecurity(string name)
    {
        lock (_gate)
        {
            var p = _portConfigs.GetValueOrDefault(name) ?? throw NoPort(name);
            var (security, mac) = SecurityOf(p);
            Datapath.SetPortSecurity(name, security, mac, p.PinMac);
        }
    }

    /// <summary>PATCH /v1/ports/{name}: turns port security and MAC pinning on or off; stored with the port (or its attachment).</summary>
    public PortView SetPortSettings(string name, PortSettingsRequest r)
    {
        lock (_gate)
        {
            if (DownPorts.ContainsKey(name)) throw new ConflictException($"port '{name}' is down (its device is gone): remove it or wait for it to come back");
            RequirePort(name);
            var old = _portConfigs.GetValueOrDefault(name) ?? throw NoPort(name);
            var p = old.Clone();
            if (r.PortSecurity is { } sec) p.PortSecurity = sec;
            if (r.PinMac is { } pin) p.PinMac = pin;
            if ((p.PortSecurity || p.PinMac) && p.AttachesDevice)
                throw new InvalidRequestException($"port '{name}': an {p.Type} port attaches an interface with no MAC or addresses of the switch's to enforce");
            var (security, mac) = SecurityOf(p);
            Datapath.SetPortSecurity(name, security, mac, p.PinMac);
            _portConfigs[name] = p;
            if (Attachments?.SetSecurity(name, p.PortSecurity, p.PinMac) != true) Store?.SavePort(p);
            _log.LogInformation("port {Port}: port security {Security}, pinned MAC {Pin}", name, p.PortSecurity ? "on" : "off", p.PinMac ? "on" : "off");
            return GetPort(name);
        }
    }
}

public sealed partial class SwitchRuntime
{
    /// <summary>At most this many MAC-move lines a second; the rest are summed up in one line.</summary>
    public const int MacMoveLogLines = 5;

    /// <summary>Logs the MAC moves of the last second (the tick runs once a second), rate-limited.</summary>
    private void LogMacMoves()
    {
        var moves = Datapath.MacTable.Moves.Drain(out long notQueued);
        if (moves.Count == 0 && notQueued == 0) return;
        var t = Datapath.Topology;
        int shown = Math.Min(moves.Count, MacMoveLogLines);
        for (int i = 0; i < shown; i++)
        {
            var m = moves[i];
            _log.LogWarning("MAC move: {Mac} on network {Network} vlan {Vlan} moved from port {From} to port {To}",
                MacAddress.Format(m.Mac), t.Network(m.Network)?.Name ?? $"#{m.Network}", m.Vlan,
                t.Port(m.FromPort)?.Name ?? $"#{m.FromPort}", t.Port(m.ToPort)?.Name ?? $"#{m.ToPort}");
        }
        long suppressed = moves.Count - shown + notQueued;
        if (suppressed > 0)
            _log.LogWarning("MAC move: {Suppressed} more move(s) in the last second not logged (at most {Lines} lines a second; counted per port in vsctl port show and vswitch_mac_moves_total)",
                suppressed, MacMoveLogLines);
    }
}
