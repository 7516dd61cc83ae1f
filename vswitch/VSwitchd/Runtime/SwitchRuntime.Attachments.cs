using VSwitchd.Config;

namespace VSwitchd.Runtime;

// What attachments need from the runtime: a network's configuration (subnet, gateway, MTU), and
// replacing a port's recorded configuration once the attachment configured the device itself
// (renamed, addressed) so that the port view shows what the namespace sees.
public sealed partial class SwitchRuntime
{
    /// <summary>The attachment manager, when the daemon runs one (the API's network view reads its allocations).</summary>
    public Attachments? Attachments { get; set; }

    public NetworkConfig? NetworkConfig(string name)
    {
        lock (_gate) return _networkConfigs.GetValueOrDefault(name);
    }

    public void ReplacePortConfig(PortConfig p)
    {
        lock (_gate)
            if (_portConfigs.ContainsKey(p.Name)) _portConfigs[p.Name] = p;
    }
}
