using System.Reflection;
using NetArchTest.Rules;
using VSwitch.Core.Buffers;

namespace VSwitch.Core.Tests.Architecture;

/// <summary>
/// Keeps the dependencies pointing one way (DESIGN.md): the layers of Core, Core free of the
/// overlay, of hosting and of processes, and the clients free of the daemon.
/// </summary>
public class ArchitectureTests
{
    private static readonly Assembly Core = typeof(PacketPool).Assembly;
    private static readonly Assembly Overlay = typeof(VSwitch.Overlay.VxlanPort).Assembly;

    private static Assembly Load(string name) => Assembly.Load(new AssemblyName(name));

    [Fact]
    public void Core_layers_point_one_way()
    {
        var v = LayerRules.Violations(Core, "VSwitch.Core");
        Assert.True(v.Count == 0, "forbidden references:\n" + string.Join("\n", v));
    }

    [Fact]
    public void The_rules_catch_a_forbidden_reference()
    {
        // ArchFixture.Wire.BadHeader names ArchFixture.Pipeline: the same rules must report it.
        var v = LayerRules.Violations(typeof(ArchitectureTests).Assembly, typeof(ArchFixture.Wire.BadHeader).Namespace![..^".Wire".Length]);
        Assert.Contains(v, s => s.Contains("ArchFixture.Wire.BadHeader") && s.EndsWith(".Pipeline"));
        Assert.DoesNotContain(v, s => s.Contains("GoodHeader"));
    }

    [Fact]
    public void Core_names_no_VXLAN_and_knows_no_overlay()
    {
        var named = Core.GetTypes().Where(t => t.Name.Contains("vxlan", StringComparison.OrdinalIgnoreCase)).Select(t => t.FullName).ToList();
        Assert.True(named.Count == 0, "VXLAN belongs to the overlay: " + string.Join(", ", named));
        var r = Types.InAssembly(Core).ShouldNot().HaveDependencyOn("VSwitch.Overlay").GetResult();
        Assert.True(r.IsSuccessful, "Core must not reference the overlay: " + string.Join(", ", r.FailingTypeNames ?? []));
        Assert.DoesNotContain(Core.GetReferencedAssemblies(), a => a.Name is "VSwitch.Overlay" or "vswitchd");
    }

    [Theory]
    [InlineData("Microsoft.AspNetCore")]
    [InlineData("Microsoft.Extensions.Hosting")]
    [InlineData("Microsoft.Data.Sqlite")]
    [InlineData("System.Diagnostics.Process")]
    [InlineData("System.Diagnostics.ProcessStartInfo")]
    public void Core_and_overlay_start_no_processes_and_host_nothing(string forbidden)
    {
        foreach (var asm in new[] { Core, Overlay })
        {
            var r = Types.InAssembly(asm).ShouldNot().HaveDependencyOn(forbidden).GetResult();
            Assert.True(r.IsSuccessful, $"{asm.GetName().Name} must not use {forbidden}: " + string.Join(", ", r.FailingTypeNames ?? []));
        }
    }

    [Theory]
    [InlineData("vsctl")]
    [InlineData("vswitch-cni")]
    public void Clients_know_only_the_API_contract(string client)
    {
        var refs = Load(client).GetReferencedAssemblies().Select(a => a.Name!).ToList();
        foreach (var forbidden in new[] { "vswitchd", "VSwitch.Core", "VSwitch.Overlay" })
            Assert.DoesNotContain(forbidden, refs);
    }

    [Fact]
    public void The_API_talks_only_to_the_runtime()
    {
        var daemon = Load("vswitchd");
        var r = Types.InAssembly(daemon).That().ResideInNamespace("VSwitchd.Api")
            .ShouldNot().HaveDependencyOnAny("VSwitch.Core", "VSwitch.Overlay").GetResult();
        Assert.True(r.IsSuccessful, "the API reaches past the runtime: " + string.Join(", ", r.FailingTypeNames ?? []));
    }

    [Fact]
    public void The_contract_depends_on_nothing_of_ours()
    {
        var refs = Load("VSwitch.Api").GetReferencedAssemblies().Select(a => a.Name!).ToList();
        Assert.DoesNotContain(refs, n => n.StartsWith("VSwitch", StringComparison.Ordinal) || n == "vswitchd" || n.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal));
    }

    [Fact]
    public void The_etcd_client_lives_in_the_cluster_control_plane_and_nowhere_else()
    {
        var cluster = typeof(VSwitch.Cluster.ClusterAgent).Assembly;
        Assert.Contains(cluster.GetReferencedAssemblies(), a => a.Name == "dotnet-etcd");
        foreach (var name in new[] { "vswitchd", "VSwitch.Core", "VSwitch.Overlay", "VSwitch.Api", "vsctl", "vswitch-cni" })
        {
            var r = Types.InAssembly(Load(name)).ShouldNot().HaveDependencyOnAny("dotnet_etcd", "Etcdserverpb", "Mvccpb").GetResult();
            Assert.True(r.IsSuccessful, $"{name} uses the etcd client: " + string.Join(", ", r.FailingTypeNames ?? []));
        }
        // The control plane drives the switch through IClusterDataplane only: it knows neither the datapath nor the daemon.
        Assert.DoesNotContain(cluster.GetReferencedAssemblies(), a => a.Name is "vswitchd" or "VSwitch.Core" or "VSwitch.Overlay");
    }

    [Fact]
    public void The_overlay_does_not_reach_into_the_daemon()
    {
        Assert.DoesNotContain(Overlay.GetReferencedAssemblies(), a => a.Name == "vswitchd");
        // The daemon is the top: it may use everything, nothing of ours uses it.
        Assert.DoesNotContain(Core.GetReferencedAssemblies(), a => a.Name == "vswitchd");
    }
}
