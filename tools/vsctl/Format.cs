using System.Globalization;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary>Small renderings shared by the command groups.</summary>
public static class Format
{
    /// <summary>3d04h05m06s, 5m06s, 42s.</summary>
    public static string Duration(double seconds)
    {
        var t = TimeSpan.FromSeconds(Math.Max(0, Math.Floor(seconds)));
        if (t.TotalDays >= 1) return $"{(int)t.TotalDays}d{t.Hours:00}h{t.Minutes:00}m{t.Seconds:00}s";
        if (t.TotalHours >= 1) return $"{t.Hours}h{t.Minutes:00}m{t.Seconds:00}s";
        if (t.TotalMinutes >= 1) return $"{t.Minutes}m{t.Seconds:00}s";
        return $"{t.Seconds}s";
    }

    /// <summary>A port's VLAN setting: "10" for access (or "-" untagged), "trunk 10,20 native 5" for a trunk.</summary>
    public static string PortVlan(PortView p)
    {
        if (p.VlanMode != "trunk") return p.Vlan == 0 ? "-" : p.Vlan.ToString(CultureInfo.InvariantCulture);
        string s = "trunk " + (p.Trunks.Length == 0 ? "all" : string.Join(',', p.Trunks));
        return p.NativeVlan == 0 ? s : $"{s} native {p.NativeVlan}";
    }

    /// <summary>Where the port lives: its netns for a tap, its device for afpacket, "-" for a tap in vswitchd's namespace.</summary>
    public static string? Where(PortView p) => p.Netns ?? p.Device;

    public static string Vni(long? vni) => vni?.ToString(CultureInfo.InvariantCulture) ?? "-";

    public static string OnOff(bool value) => value ? "on" : "off";

    /// <summary>"on", "on,pin", "pin" or "off": port security and a pinned MAC, in a table cell.</summary>
    public static string PortSecurity(PortView p) =>
        p.PortSecurity ? (p.PinMac ? "on,pin" : "on") : p.PinMac ? "pin" : "off";
}
