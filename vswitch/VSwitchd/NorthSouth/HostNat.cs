using System.Globalization;
using VSwitch.Core.Wire;
using VSwitchd.Host;

namespace VSwitchd.NorthSouth;

/// <summary>
/// The host kernel's side of a host port, so that traffic the switch masquerades or publishes behind the
/// host's own addresses comes back to the switch instead of being delivered locally (where nothing
/// listens, and the kernel would answer with a reset):
/// <list type="bullet">
/// <item>a routing table of the host port's own (<see cref="Table"/>) with a /32 route for each host
/// address, via the switch's gateway on the host port;</item>
/// <item>policy-routing rules at priority <see cref="RulePriority"/> that send to that table TCP and UDP
/// addressed to the masquerade ports (61000-65534) and to each published port;</item>
/// <item>the kernel's <c>local</c> rule moved from priority 0 to <see cref="LocalPriority"/>, since a rule
/// can only come before it if it moves (as Cilium does for its proxy);</item>
/// <item>on the host port: accept_local=1 (masqueraded packets come in with a host address as their
/// source) and rp_filter=0; net.ipv4.ip_forward=1 if it was 0.</item>
/// </list>
/// Everything is undone when the host port goes or the daemon stops: the rules, the table, and the
/// local rule and ip_forward when no other vswitchd still has rules (a marker file under /run says the
/// switch changed them; a lock file serialises daemons).
/// </summary>
public sealed class HostNat
{
    public const int RulePriority = 90, LocalPriority = 100;
    private const string LockPath = "/run/vswitch-northsouth.lock";
    private const string LocalMovedMarker = "/run/vswitch-northsouth.local-moved";
    private const string ForwardMarker = "/run/vswitch-northsouth.ip-forward-set";

    private readonly HashSet<string> _rules = new(StringComparer.Ordinal);
    private uint[] _routed = [];
    private readonly ILogger _log;

    public HostNat(string device, uint gateway, ILogger log)
    {
        Device = device;
        Gateway = gateway;
        _log = log;
        Table = TableFor(device);
    }

    public string Device { get; }
    public uint Gateway { get; }
    public int Table { get; }

    /// <summary>A routing table number of the device's own (stable across restarts, so a crash's leftovers are found and removed).</summary>
    public static int TableFor(string device)
    {
        uint h = 2166136261;
        foreach (char c in device) h = (h ^ c) * 16777619;
        return 7_600_000 + (int)(h % 100_000);
    }

    /// <summary>Prepares the host: the device's sysctls, leftovers of an earlier run removed, the local rule moved.</summary>
    public void Setup()
    {
        WriteSysctl($"net/ipv4/conf/{Device}/accept_local", "1");
        WriteSysctl($"net/ipv4/conf/{Device}/rp_filter", "0");
        WriteSysctl($"net/ipv4/conf/{Device}/forwarding", "1");
        RemoveTableAndRules();
        WithHostLock(() =>
        {
            if (File.Exists("/proc/sys/net/ipv4/ip_forward") && File.ReadAllText("/proc/sys/net/ipv4/ip_forward").Trim() == "0")
            {
                WriteSysctl("net/ipv4/ip_forward", "1");
                File.WriteAllText(ForwardMarker, "");
                _log.LogWarning("net.ipv4.ip_forward was 0: set to 1 for the host port (restored when the last host port goes)");
            }
            if (HasRule("0", "local"))
            {
                if (!HasRule(LocalPriority.ToString(CultureInfo.InvariantCulture), "local"))
                    Ip("rule", "add", "pref", LocalPriority.ToString(CultureInfo.InvariantCulture), "lookup", "local");
                Ip("rule", "del", "pref", "0", "lookup", "local");
                File.WriteAllText(LocalMovedMarker, "");
                _log.LogInformation("the host's local routing rule moved from priority 0 to {Priority}, so that the switch's rules (priority {Ours}) come first", LocalPriority, RulePriority);
            }
        });
    }

    /// <summary>Routes the host's <paramref name="addresses"/> to the switch in the device's table (for the rules' traffic only).</summary>
    public void SyncRoutes(uint[] addresses)
    {
        if (addresses.AsSpan().SequenceEqual(_routed)) return;
        foreach (var a in _routed)
            if (Array.IndexOf(addresses, a) < 0)
                NetConfig.Run(null, "ip", "route", "del", AddressFormat.IPv4(a), "table", TableArg);
        foreach (var a in addresses)
            Ip("route", "replace", AddressFormat.IPv4(a), "via", AddressFormat.IPv4(Gateway), "dev", Device, "table", TableArg);
        _routed = addresses;
    }

    /// <summary>Makes the device's rules exactly <paramref name="selectors"/> (each like "ipproto tcp dport 8080").</summary>
    public void SyncRules(IReadOnlyCollection<string> selectors)
    {
        foreach (var s in _rules.ToArray())
            if (!selectors.Contains(s))
            {
                NetConfig.Run(null, "ip", ["rule", "del", "pref", Pref, .. s.Split(' '), "lookup", TableArg]);
                _rules.Remove(s);
            }
        foreach (var s in selectors)
            if (_rules.Add(s)) Ip(["rule", "add", "pref", Pref, .. s.Split(' '), "lookup", TableArg]);
    }

    /// <summary>The rule that brings masquerade replies back: a protocol's masquerade ports.</summary>
    public static string MasqueradeSelector(string proto, ushort low, ushort high) => $"ipproto {proto} dport {low}-{high}";

    /// <summary>The rule that brings a published port's connections to the switch.</summary>
    public static string PublishSelector(string proto, int port, string? hostIp) =>
        (hostIp is null ? "" : $"to {hostIp} ") + $"ipproto {proto} dport {port}";

    /// <summary>Undoes everything: this device's rules and table, then the host-wide changes if no other switch still has rules.</summary>
    public void Teardown()
    {
        _rules.Clear();
        _routed = [];
        RemoveTableAndRules();
        WithHostLock(() =>
        {
            if (RulesAt(Pref) > 0) return; // another vswitchd's host port still needs them
            if (File.Exists(LocalMovedMarker))
            {
                if (!HasRule("0", "local")) Ip("rule", "add", "pref", "0", "lookup", "local");
                NetConfig.Run(null, "ip", "rule", "del", "pref", LocalPriority.ToString(CultureInfo.InvariantCulture), "lookup", "local");
                File.Delete(LocalMovedMarker);
                _log.LogInformation("the host's local routing rule is back at priority 0");
            }
            if (File.Exists(ForwardMarker))
            {
                WriteSysctl("net/ipv4/ip_forward", "0");
                File.Delete(ForwardMarker);
                _log.LogInformation("net.ipv4.ip_forward restored to 0");
            }
        });
    }

    private string Pref => RulePriority.ToString(CultureInfo.InvariantCulture);
    private string TableArg => Table.ToString(CultureInfo.InvariantCulture);

    private void RemoveTableAndRules()
    {
        // "ip rule del" removes the first rule that matches; at most as many as there can be.
        for (int i = 0; i < 1000 && NetConfig.Run(null, "ip", "rule", "del", "lookup", TableArg).ExitCode == 0; i++) { }
        NetConfig.Run(null, "ip", "route", "flush", "table", TableArg);
    }

    private static bool HasRule(string pref, string table) =>
        NetConfig.Run(null, "ip", "rule", "show", "pref", pref).Output.Contains("lookup " + table, StringComparison.Ordinal);

    private static int RulesAt(string pref) =>
        NetConfig.Run(null, "ip", "rule", "show", "pref", pref).Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;

    private static void Ip(params string[] args)
    {
        var r = NetConfig.Run(null, "ip", args);
        if (r.ExitCode != 0) throw new IOException($"'ip {string.Join(' ', args)}' failed: {r.Output.Trim()}");
    }

    private static void WriteSysctl(string key, string value) => File.WriteAllText("/proc/sys/" + key, value);

    /// <summary>Runs <paramref name="action"/> holding the host-wide lock that every vswitchd takes for the shared rules (a few seconds at most).</summary>
    private static void WithHostLock(Action action)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            FileStream? f = null;
            try { f = new FileStream(LockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
            catch (IOException) when (DateTime.UtcNow < deadline) { Thread.Sleep(20); continue; }
            using (f) action();
            return;
        }
    }
}
