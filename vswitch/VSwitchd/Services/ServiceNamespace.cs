using System.Security.Cryptography;
using System.Text;
using VSwitch.Api;
using VSwitchd.Host;
using VSwitchd.Runtime;

namespace VSwitchd.Services;

/// <summary>
/// The switch's own foot in its networks: a network namespace the daemon owns (<c>vsd-XXXXXXXX</c>, named
/// after its state database so that two daemons never share one), attached like a container to every
/// routed network, on the highest free address of each subnet (containers get the lowest ones, so their
/// addresses do not move). Health probes of service backends start there and reach backends through
/// the switch like any client does (the daemon's host namespace has no route to containers); the DNS
/// server listens there, and the gateway's port 53 is destination-NATed to it.
/// Made when first needed (a service exists, or DNS is on), kept across restarts (its attachments are
/// stored like any other), and its loopback is up (a namespace from <c>ip netns add</c> has it down).
/// </summary>
public sealed class ServiceNamespace(SwitchRuntime rt, Attachments attachments, ILogger<ServiceNamespace> log)
{
    public const string ContainerId = "vswitchd-services";
    private readonly object _gate = new();
    private bool _made;

    /// <summary>The namespace's name under /run/netns.</summary>
    public string Name { get; } = "vsd-" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(
        Path.GetFullPath(rt.Store?.Path ?? "memory:" + Environment.ProcessId))))[..8].ToLowerInvariant();

    /// <summary>Its address on each routed network it is attached to (network -> address).</summary>
    public IReadOnlyDictionary<string, string> Addresses =>
        attachments.List().Where(a => a.ContainerId == ContainerId && a.Address is not null)
            .ToDictionary(a => a.Network, a => a.Address!.Split('/')[0]);

    /// <summary>
    /// Makes the namespace if missing and attaches it to every routed network it is not on yet. Cheap when
    /// nothing is missing (a look at the attachments); runs `ip` only when something is. Never throws: a
    /// network it cannot join is logged and tried again on the next call.
    /// </summary>
    public void Ensure()
    {
        lock (_gate)
        {
            var mine = attachments.List().Where(a => a.ContainerId == ContainerId).ToList();
            var routed = rt.NetworkConfigs.Values.Where(n => n.Subnet is not null).OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
            if (_made && routed.All(n => mine.Any(a => a.Network == n.Name))) return;
            try
            {
                if (!File.Exists("/run/netns/" + Name))
                {
                    var r = NetConfig.Run(null, "ip", "netns", "add", Name);
                    if (r.ExitCode != 0 && !File.Exists("/run/netns/" + Name)) { log.LogWarning("services namespace {Name}: {Error}", Name, r.Output.Trim()); return; }
                    log.LogInformation("services namespace {Name} made (health probes and DNS run there)", Name);
                }
                NetConfig.Run(Name, "ip", "link", "set", "lo", "up");
                _made = true;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                log.LogWarning("services namespace {Name}: {Error}", Name, e.Message);
                return;
            }
            foreach (var n in routed)
            {
                if (mine.Any(a => a.Network == n.Name)) continue;
                var id = rt.Datapath.Topology.NetworkByName(n.Name)?.Id;
                if (id is null) continue;
                try
                {
                    string? ip = HighestFree(n.Name, n.Subnet, n.Gateway);
                    if (ip is null) { log.LogWarning("services namespace: network {Network} has no free address", n.Name); continue; }
                    var a = attachments.Attach(new AttachRequest(n.Name, Name, ContainerId, $"sv{id}", ip, null, "vswitchd") { Name = ContainerId });
                    log.LogInformation("services namespace {Name} on network {Network}: {Address}", Name, n.Name, a.Address);
                }
                catch (Exception e) when (e is SwitchRuntimeException or IOException)
                {
                    log.LogWarning("services namespace {Name} cannot join network {Network}: {Error}", Name, n.Name, e.Message);
                }
            }
        }
    }

    private string? HighestFree(string network, string? subnet, string? gateway)
    {
        if (Ipv4Pool.Of(subnet, gateway) is not { } pool) return null;
        var taken = attachments.Allocations(network).Select(x => Ipv4Pool.ToUInt(System.Net.IPAddress.Parse(x.Address.Split('/')[0]))).ToHashSet();
        foreach (var (_, p) in rt.PortConfigs)
            foreach (var a in p.Addresses)
                if (System.Net.IPAddress.TryParse(a.Split('/')[0], out var ip)) taken.Add(Ipv4Pool.ToUInt(ip));
        for (uint a = pool.LastHost; a >= pool.FirstHost && a > 0; a--)
            if (a != pool.Gateway && !taken.Contains(a)) return Ipv4Pool.ToAddress(a).ToString();
        return null;
    }
}
