using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using VSwitch.Api;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace VSwitch.Cni;

/// <summary>
/// vswitch-cni: a CNI plugin (spec 1.0.0 and 1.1.0) that attaches a container to a vswitchd
/// network. The runtime runs it with CNI_COMMAND (ADD, DEL, CHECK, VERSION, STATUS, GC) and the
/// CNI_* variables, the network configuration on stdin; the result, or an error
/// {cniVersion, code, msg, details} with exit code 1, goes to stdout. The work is vswitchd's: this
/// program is one HTTP request (or a few) to /v1/attachments on its Unix socket.
/// </summary>
public static class Program
{
    public static int Main()
    {
        string stdin = Console.IsInputRedirected ? Console.In.ReadToEnd() : "";
        var env = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "");
        var (code, output) = Run(env, stdin);
        if (output is not null) Console.Out.WriteLine(output.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
        return code;
    }

    /// <summary>The plugin as a function: environment and stdin in, exit code and stdout JSON out.</summary>
    public static (int Code, JsonNode? Output) Run(IReadOnlyDictionary<string, string> env, string stdin)
    {
        string version = NetConf.PeekVersion(stdin) is { } v && NetConf.SupportedVersions.Contains(v) ? v : NetConf.SupportedVersions[^1];
        try
        {
            string command = Env(env, "CNI_COMMAND");
            return command switch
            {
                "VERSION" => (0, new JsonObject
                {
                    ["cniVersion"] = version,
                    ["supportedVersions"] = new JsonArray(NetConf.SupportedVersions.Select(s => (JsonNode)s).ToArray()),
                }),
                "ADD" => (0, Add(env, NetConf.Parse(stdin))),
                "DEL" => Done(Del(env, NetConf.Parse(stdin))),
                "CHECK" => Done(Check(env, NetConf.Parse(stdin))),
                "STATUS" => Done(Status(NetConf.Parse(stdin))),
                "GC" => Done(Gc(NetConf.Parse(stdin))),
                _ => throw new CniException(CniException.InvalidEnvironment, $"CNI_COMMAND '{command}' is not a CNI command",
                    "one of ADD, DEL, CHECK, VERSION, STATUS, GC"),
            };
        }
        catch (CniException e)
        {
            return (1, e.ToJson(version));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return (1, new CniException(CniException.Other, e.Message, e.GetType().Name).ToJson(version));
        }
    }

    private static (int, JsonNode?) Done(bool _) => (0, null);

    private static JsonNode Add(IReadOnlyDictionary<string, string> env, NetConf conf)
    {
        string containerId = ContainerId(env);
        string netns = Env(env, "CNI_NETNS");
        string ifname = Ifname(env);
        var args = CniArgs(env);
        string? ip = args.GetValueOrDefault("IP") ?? conf.Ip;
        string? mac = args.GetValueOrDefault("MAC") ?? conf.Mac;
        using var d = new Daemon(conf.Socket);
        // The name people know the container by: a pod's (K8S_POD_NAME, which podman also sets to the
        // container's name), else the daemon shortens the container id.
        string? name = args.GetValueOrDefault("K8S_POD_NAME") is { Length: > 0 } pod ? pod : null;
        var body = new AttachRequest(conf.Network, netns, containerId, ifname, ip, mac, "cni:" + conf.Name) { Mtu = conf.Mtu, Name = name, PortSecurity = conf.PortSecurity, Labels = conf.Labels };
        var r = d.Post("v1/attachments", body, ApiJson.Default.AttachRequest);
        if (!r.Ok)
        {
            if (r.Status == HttpStatusCode.NotFound)
                throw new CniException(CniException.InvalidConfig, $"vswitchd has no network '{conf.Network}'", r.Error + " (create it: vsctl network add NAME --subnet CIDR)");
            throw new CniException(CniException.Other, $"vswitchd refused to attach {netns} to '{conf.Network}': {r.Error}");
        }
        return Result(conf, r.Read(ApiJson.Default.AttachmentView), netns);
    }

    /// <summary>The CNI result of an attachment, in the configuration's version.</summary>
    private static JsonObject Result(NetConf conf, AttachmentView a, string netns)
    {
        var iface = new JsonObject { ["name"] = a.Ifname, ["mac"] = a.Mac, ["sandbox"] = netns };
        if (conf.CniVersion == "1.1.0") iface["mtu"] = a.Mtu;
        var result = new JsonObject { ["cniVersion"] = conf.CniVersion, ["interfaces"] = new JsonArray(iface) };
        string? address = a.Address, gateway = a.Gateway;
        var ips = new JsonArray();
        var routes = new JsonArray();
        if (address is not null)
        {
            var ipc = new JsonObject { ["address"] = address };
            if (gateway is not null) ipc["gateway"] = gateway;
            ipc["interface"] = 0;
            // Add(JsonNode), not the generic Add<T> (which would serialize by reflection: not trimming- or AOT-safe).
            ips.Add((JsonNode)ipc);
            // A cluster network first (Flannel's CNI names it so), then the default route; both via the gateway.
            if (gateway is not null)
                foreach (var dst in a.Routes ?? []) routes.Add((JsonNode)new JsonObject { ["dst"] = dst, ["gw"] = gateway });
            if (gateway is not null) routes.Add((JsonNode)new JsonObject { ["dst"] = "0.0.0.0/0", ["gw"] = gateway });
        }
        // A dual-stack network's IPv6 address and default route, after the IPv4 ones (as the bridge plugin lists them).
        if (a.Address6 is { } address6)
        {
            var ipc = new JsonObject { ["address"] = address6 };
            if (a.Gateway6 is { } gw6) ipc["gateway"] = gw6;
            ipc["interface"] = 0;
            ips.Add((JsonNode)ipc);
            if (a.Gateway6 is { } gw) routes.Add((JsonNode)new JsonObject { ["dst"] = "::/0", ["gw"] = gw });
        }
        result["ips"] = ips;
        result["routes"] = routes;
        if (conf.Dns is JsonObject { Count: > 0 } dns) result["dns"] = dns.DeepClone();
        // Otherwise the switch's own DNS at the gateway, when it runs one (services exist): the runtime writes the container's resolv.conf from it.
        else if (a.Dns is { } sw)
        {
            var ns = new JsonArray();
            foreach (var n in sw.Nameservers) ns.Add((JsonNode)JsonValue.Create(n));
            var search = new JsonArray();
            foreach (var d in sw.Search) search.Add((JsonNode)JsonValue.Create(d));
            result["dns"] = new JsonObject { ["nameservers"] = ns, ["search"] = search };
        }
        return result;
    }

    /// <summary>Idempotent: an attachment (or namespace) already gone is success.</summary>
    private static bool Del(IReadOnlyDictionary<string, string> env, NetConf conf)
    {
        string containerId = ContainerId(env);
        string ifname = Ifname(env);
        using var d = new Daemon(conf.Socket);
        var r = d.Delete($"v1/attachments?containerId={Uri.EscapeDataString(containerId)}&ifname={Uri.EscapeDataString(ifname)}");
        if (r.Ok || r.Status == HttpStatusCode.NotFound) return true;
        throw new CniException(CniException.Other, $"vswitchd refused to detach container {containerId} {ifname}: {r.Error}");
    }

    private static bool Check(IReadOnlyDictionary<string, string> env, NetConf conf)
    {
        string containerId = ContainerId(env);
        Env(env, "CNI_NETNS");
        string ifname = Ifname(env);
        if (conf.PrevResult is not JsonObject prev)
            throw new CniException(CniException.InvalidConfig, "CHECK needs prevResult in the network configuration");
        using var d = new Daemon(conf.Socket);
        var list = d.Get($"v1/attachments?containerId={Uri.EscapeDataString(containerId)}&ifname={Uri.EscapeDataString(ifname)}");
        if (!list.Ok) throw new CniException(CniException.Other, list.Error);
        if (list.Read(ApiJson.Default.AttachmentViewArray) is not [var a, ..])
            throw new CniException(CniException.UnknownContainer, $"container {containerId} has no {ifname} on vswitchd");
        if (a.Network != conf.Network)
            throw new CniException(CniException.Other, $"container {containerId} {ifname} is on network '{a.Network}', not '{conf.Network}'");
        string? address = a.Address;
        var prevIps = (prev["ips"] as JsonArray)?.Select(x => (string?)x?["address"]).ToList() ?? [];
        if (address is not null && !prevIps.Contains(address))
            throw new CniException(CniException.Other, $"{ifname} has {address}, the previous result says {string.Join(", ", prevIps)}");
        if (a.Address6 is { } address6 && !prevIps.Contains(address6))
            throw new CniException(CniException.Other, $"{ifname} has {address6}, the previous result says {string.Join(", ", prevIps)}");
        var check = d.Get($"v1/attachments/{Uri.EscapeDataString(a.Id)}/check");
        if (!check.Ok) throw new CniException(CniException.Other, check.Error);
        var verdict = check.Read(ApiJson.Default.AttachmentCheckView);
        if (!verdict.Ok)
            throw new CniException(CniException.Other, $"container {containerId} {ifname}: " + string.Join("; ", verdict.Problems));
        return true;
    }

    /// <summary>1.1.0 STATUS: ready for ADDs when vswitchd answers and the network exists with a free address.</summary>
    private static bool Status(NetConf conf)
    {
        using var d = new Daemon(conf.Socket);
        Daemon.Reply r;
        try { r = d.Get("v1/networks/" + Uri.EscapeDataString(conf.Network)); }
        catch (CniException e) when (e.Code == CniException.TryAgainLater)
        {
            throw new CniException(CniException.NotAvailable, e.Message, e.Details);
        }
        if (!r.Ok) throw new CniException(CniException.NotAvailable, $"vswitchd has no network '{conf.Network}'", r.Error);
        var network = r.Read(ApiJson.Default.NetworkView);
        if (network.Subnet is { } subnet && System.Net.IPNetwork.TryParse(subnet, out var net))
        {
            long hosts = net.PrefixLength >= 31 ? (1L << (32 - net.PrefixLength)) - 1 : (1L << (32 - net.PrefixLength)) - 3;
            long used = network.Allocations.Length;
            if (used >= hosts) throw new CniException(CniException.NotAvailable, $"network '{conf.Network}': no free address left in {subnet}");
        }
        return true;
    }

    /// <summary>1.1.0 GC: detach this network's CNI attachments that are not in cni.dev/valid-attachments.</summary>
    private static bool Gc(NetConf conf)
    {
        var valid = new HashSet<(string, string)>();
        if (conf.Raw["cni.dev/valid-attachments"] is JsonArray va)
            foreach (var x in va)
                if (x is JsonObject o && (string?)o["containerID"] is { } c && (string?)o["ifname"] is { } i) valid.Add((c, i));
        using var d = new Daemon(conf.Socket);
        var r = d.Get("v1/attachments?network=" + Uri.EscapeDataString(conf.Network));
        if (!r.Ok) throw new CniException(CniException.Other, r.Error);
        var errors = new List<string>();
        foreach (var a in r.Read(ApiJson.Default.AttachmentViewArray))
        {
            if (a.Source != "cni:" + conf.Name) continue;
            if (valid.Contains((a.ContainerId, a.Ifname))) continue;
            var del = d.Delete("v1/attachments/" + Uri.EscapeDataString(a.Id));
            if (!del.Ok && del.Status != HttpStatusCode.NotFound) errors.Add(del.Error);
        }
        if (errors.Count > 0) throw new CniException(CniException.Other, "GC: " + string.Join("; ", errors));
        return true;
    }

    private static string Env(IReadOnlyDictionary<string, string> env, string name) =>
        env.TryGetValue(name, out var v) && v.Length > 0 ? v : throw new CniException(CniException.InvalidEnvironment, $"{name} is not set");

    private static string ContainerId(IReadOnlyDictionary<string, string> env)
    {
        string id = Env(env, "CNI_CONTAINERID");
        // The spec: alphanumerics, then alphanumerics, '_', '.' and '-'.
        if (!char.IsAsciiLetterOrDigit(id[0]) || id.Any(c => !char.IsAsciiLetterOrDigit(c) && c is not ('_' or '.' or '-')))
            throw new CniException(CniException.InvalidEnvironment, $"CNI_CONTAINERID '{id}' is not a container id (letters, digits, '_', '.', '-')");
        return id;
    }

    private static string Ifname(IReadOnlyDictionary<string, string> env)
    {
        string name = Env(env, "CNI_IFNAME");
        if (name.Length > 15 || name is "." or ".." || name.Any(c => c is '/' or ':' || char.IsWhiteSpace(c)))
            throw new CniException(CniException.InvalidEnvironment, $"CNI_IFNAME '{name}' is not an interface name (at most 15 characters, no '/', ':' or spaces)");
        return name;
    }

    /// <summary>CNI_ARGS "K=V;K=V": IP, MAC and K8S_POD_NAME (the name shown) are understood; anything else needs IgnoreUnknown=1.</summary>
    private static Dictionary<string, string> CniArgs(IReadOnlyDictionary<string, string> env)
    {
        var args = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!env.TryGetValue("CNI_ARGS", out var text) || text.Length == 0) return args;
        foreach (var pair in text.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=');
            if (eq <= 0) throw new CniException(CniException.InvalidEnvironment, $"CNI_ARGS: '{pair}' is not KEY=VALUE");
            args[pair[..eq]] = pair[(eq + 1)..];
        }
        bool ignoreUnknown = args.TryGetValue("IgnoreUnknown", out var ig) && (ig == "1" || ig.Equals("true", StringComparison.OrdinalIgnoreCase));
        foreach (var k in args.Keys)
            if (k is not ("IP" or "MAC" or "IgnoreUnknown" or "K8S_POD_NAME") && !ignoreUnknown)
                throw new CniException(CniException.UnsupportedField, $"CNI_ARGS: unknown key '{k}'", "vswitch-cni understands IP and MAC; add IgnoreUnknown=1 to pass others");
        return args;
    }
}
