using System.Diagnostics;
using System.Net;

using VSwitch.Core.Ports.Linux;

namespace VSwitchd.Host;

/// <summary>
/// Link, address and route configuration of the host and of containers' namespaces: the daemon's
/// control path, never the datapath (Core keeps only <see cref="LinkIoctl"/>, which starts no process).
/// <para>
/// Where a plain ioctl in the caller's own namespace does the job (MAC, MTU, up) it is used directly.
/// Everything else (addresses, routes, moving a link to another namespace, acting inside another
/// namespace) runs iproute2's <c>ip</c>, for now: it is correct, widely known, and its error text
/// names the problem. Inside a namespace given by path the command runs as
/// <c>nsenter --net=PATH ip ...</c>; a namespace given by name is <c>/run/netns/NAME</c>.
/// Replacing this with rtnetlink (RTM_NEWLINK with IFLA_NET_NS_FD, RTM_NEWADDR, RTM_NEWROUTE) is a
/// contained change behind these methods.
/// </para>
/// </summary>
public static class NetConfig
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The file a namespace argument refers to: a path (it contains '/') as is, a name as
    /// <c>/run/netns/NAME</c>; null for the caller's own namespace.
    /// </summary>
    public static string? NetnsPath(string? netns)
    {
        if (string.IsNullOrEmpty(netns)) return null;
        if (netns.Contains('/')) return netns;
        if (netns is "." or ".." || netns.Length > 255)
            throw new ArgumentException($"'{netns}' is not a network namespace name", nameof(netns));
        return "/run/netns/" + netns;
    }

    /// <summary>Throws a clear error when the namespace does not exist.</summary>
    public static void CheckNetns(string netns)
    {
        var path = NetnsPath(netns)!;
        if (!File.Exists(path))
            throw new PortException($"network namespace '{netns}' does not exist ({path} not found)", NativeError.ENOENT);
    }

    // ---- iproute2-based, in any namespace ----

    /// <summary>Sets the MAC of a link, in <paramref name="netns"/> (name or path) or the caller's namespace.</summary>
    public static void SetMac(string dev, ulong mac, string? netns)
    {
        if (netns is null) LinkIoctl.SetMac(dev, mac);
        else Ip(netns, dev, "link", "set", "dev", dev, "address", VSwitch.Core.Wire.MacAddress.Format(mac));
    }

    public static void SetMtu(string dev, int mtu, string? netns)
    {
        if (netns is null) LinkIoctl.SetMtu(dev, mtu);
        else Ip(netns, dev, "link", "set", "dev", dev, "mtu", mtu.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    public static void SetUp(string dev, string? netns, bool up = true)
    {
        if (netns is null) LinkIoctl.SetUp(dev, up);
        else Ip(netns, dev, "link", "set", "dev", dev, up ? "up" : "down");
    }

    /// <summary>Adds an IPv4 or IPv6 address in CIDR form (10.0.0.2/24, fd00::2/64). IPv6 skips DAD: the link is virtual and ours.</summary>
    public static void AddAddress(string dev, string cidr, string? netns = null)
    {
        var (addr, _) = ParseCidr(cidr);
        if (addr.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6)
            Ip(netns, dev, "-6", "addr", "add", cidr, "dev", dev, "nodad");
        else
            Ip(netns, dev, "-4", "addr", "add", cidr, "dev", dev);
    }

    /// <summary>Adds a default route through <paramref name="gateway"/> out of <paramref name="dev"/>.</summary>
    public static void AddDefaultRoute(string dev, string gateway, string? netns = null)
    {
        if (!IPAddress.TryParse(gateway, out var gw))
            throw new ArgumentException($"{dev}: gateway '{gateway}' is not an IP address", nameof(gateway));
        string fam = gw.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "-6" : "-4";
        Ip(netns, dev, fam, "route", "add", "default", "via", gw.ToString(), "dev", dev);
    }

    /// <summary>
    /// Moves a link from <paramref name="fromNetns"/> (null: the caller's) into <paramref name="netns"/>,
    /// a name (/run/netns/NAME) or a path (/proc/PID/ns/net, /var/run/netns/X). Open file
    /// descriptors on the link (a TAP's) keep working.
    /// </summary>
    public static void MoveToNetns(string dev, string netns, string? fromNetns = null)
    {
        CheckNetns(netns);
        // iproute2 opens an argument containing '/' as a path and a bare word as /run/netns/NAME.
        Ip(fromNetns, dev, "link", "set", "dev", dev, "netns", NetnsPath(netns)!);
    }

    /// <summary>Renames a link; it must be down.</summary>
    public static void Rename(string dev, string newName, string? netns = null)
    {
        if (newName.Length >= SockIos.IFNAMSIZ)
            throw new ArgumentException($"interface name '{newName}' is longer than 15 characters", nameof(newName));
        Ip(netns, dev, "link", "set", "dev", dev, "name", newName);
    }

    /// <summary>True when a link of that name exists in the namespace.</summary>
    public static bool LinkExists(string dev, string? netns = null)
    {
        if (netns is null) return LinkIoctl.LinkExists(dev);
        var r = Run(netns, "ip", "link", "show", "dev", dev);
        return r.ExitCode == 0;
    }

    public static (IPAddress Address, int PrefixLength) ParseCidr(string cidr)
    {
        int slash = cidr.IndexOf('/');
        if (slash < 0 || !IPAddress.TryParse(cidr.AsSpan(0, slash), out var addr) ||
            !int.TryParse(cidr.AsSpan(slash + 1), out int len) || len < 0 ||
            len > (addr.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? 128 : 32))
            throw new ArgumentException($"'{cidr}' is not an address in CIDR form (like 10.0.0.2/24 or fd00::2/64)", nameof(cidr));
        return (addr, len);
    }

    private static void Ip(string? netns, string dev, params string[] args)
    {
        var r = Run(netns, "ip", args);
        if (r.ExitCode != 0)
            throw new PortException($"{dev}: 'ip {string.Join(' ', args)}'{(netns is null ? "" : $" in netns '{netns}'")} failed: {r.Output.Trim()}");
    }

    /// <summary>Result of a control-path command: exit code and stdout+stderr together.</summary>
    public readonly record struct CommandResult(int ExitCode, string Output);

    /// <summary>Runs a program, inside <paramref name="netns"/> through nsenter when given.</summary>
    public static CommandResult Run(string? netns, string program, params string[] args)
    {
        var psi = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var path = NetnsPath(netns);
        if (path is not null)
        {
            psi.FileName = "nsenter";
            psi.ArgumentList.Add("--net=" + path);
            psi.ArgumentList.Add(program);
        }
        else psi.FileName = program;
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new PortException($"cannot start {psi.FileName}");
        // Process.Dispose does not close redirected streams once they are read: their pipes would stay
        // open until a GC finalizes them (the soak saw fds grow by two per command).
        using var outReader = p.StandardOutput;
        using var errReader = p.StandardError;
        var stdout = outReader.ReadToEndAsync();
        var stderr = errReader.ReadToEndAsync();
        if (!p.WaitForExit(CommandTimeout))
        {
            try { p.Kill(); } catch (InvalidOperationException) { }
            throw new PortException($"'{program} {string.Join(' ', args)}' did not finish within {CommandTimeout.TotalSeconds} s");
        }
        p.WaitForExit();
        return new CommandResult(p.ExitCode, stdout.Result + stderr.Result);
    }

    /// <summary>
    /// The host set-up of a new TAP (<see cref="VSwitch.Core.Ports.TapOptions.Setup"/>): move it into
    /// <paramref name="netns"/>, add <paramref name="addresses"/>, bring it up there and add a default
    /// route through <paramref name="gateway"/>. The namespace and the addresses are checked now, so
    /// that a mistake is reported before any device exists.
    /// </summary>
    /// <param name="gateway6">The IPv6 default route's gateway (a dual-stack network's), added after the IPv4 one.</param>
    public static Action<string> TapSetup(string? netns, IEnumerable<string>? addresses = null, string? gateway = null, bool up = true,
        string? gateway6 = null)
    {
        if (netns is not null) CheckNetns(netns);
        var list = addresses?.ToArray() ?? [];
        foreach (var a in list) ParseCidr(a);
        return name =>
        {
            if (netns is not null) MoveToNetns(name, netns);
            foreach (var a in list) AddAddress(name, a, netns);
            if (up) SetUp(name, netns);
            if (gateway is not null) AddDefaultRoute(name, gateway, netns);
            if (gateway6 is not null) AddDefaultRoute(name, gateway6, netns);
        };
    }
}
