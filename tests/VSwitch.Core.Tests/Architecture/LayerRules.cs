using System.Reflection;
using NetArchTest.Rules;

namespace VSwitch.Core.Tests.Architecture;

/// <summary>
/// The layers of VSwitch.Core, lowest first, and what each may not name. A layer may use the
/// layers below it and never one above: Wire &lt;- Flow &lt;- Buffers &lt;- Tables &lt;- Topology
/// &lt;- Pipeline &lt;- the Datapath (the root namespace). Ports (the device drivers) stand beside
/// Tables: they know frames, buffers and drop reasons, never tables, topology or the pipeline.
/// The rules are written against a root namespace so that the self-test can run them on a
/// fixture that breaks them.
/// </summary>
public static class LayerRules
{
    /// <summary>(layer, namespaces its types must not depend on), relative to the root.</summary>
    public static readonly (string Layer, string[] Forbidden)[] Layers =
    [
        ("Wire", ["Flow", "Buffers", "Tables", "Topology", "Pipeline", "Ports", "Datapath", "DatapathThread"]),
        ("Flow", ["Buffers", "Tables", "Topology", "Pipeline", "Ports", "Datapath", "DatapathThread"]),
        ("Buffers", ["Tables", "Topology", "Pipeline", "Ports", "Datapath", "DatapathThread"]),
        ("Tables", ["Topology", "Pipeline", "Ports", "Datapath", "DatapathThread"]),
        ("Ports", ["Tables", "Topology", "Pipeline", "Datapath", "DatapathThread"]),
        // The topology names its ports by the port interfaces, never a driver.
        ("Topology", ["Pipeline", "Datapath", "DatapathThread", "Ports.Linux", "Ports.TapPort", "Ports.AfPacketPort"]),
        // The stages see ports only through the topology's interfaces, never a driver or the threads.
        ("Pipeline", ["Ports.Linux", "Ports.TapPort", "Ports.AfPacketPort", "DatapathThread"]),
    ];

    /// <summary>Every violation in <paramref name="assembly"/>, as "Type -> forbidden namespace", for the given root.</summary>
    public static List<string> Violations(Assembly assembly, string root)
    {
        var found = new List<string>();
        foreach (var (layer, forbidden) in Layers)
        {
            foreach (var f in forbidden)
            {
                var result = Types.InAssembly(assembly)
                    .That().ResideInNamespace($"{root}.{layer}")
                    .ShouldNot().HaveDependencyOn($"{root}.{f}")
                    .GetResult();
                if (!result.IsSuccessful)
                    found.AddRange(result.FailingTypeNames.Select(t => $"{t} -> {root}.{f}"));
            }
        }
        return found;
    }
}
