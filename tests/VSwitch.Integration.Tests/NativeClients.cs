using System.Diagnostics;

namespace VSwitch.Integration.Tests;

/// <summary>
/// <c>VSWITCH_NATIVE_CLIENTS=DIR</c>: the vsctl, CNI and podman tests run the Native AOT <c>vsctl</c> and
/// <c>vswitch-cni</c> in DIR (tools/publish-native.sh publishes them there) instead of the managed build, so both
/// builds pass the same tests. tools/test.sh runs those classes a second time this way.
/// </summary>
public static class NativeClients
{
    public const string Variable = "VSWITCH_NATIVE_CLIENTS";

    /// <summary>The folder of the native clients, or null to test the managed build.</summary>
    public static string? Dir { get; } =
        Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } d ? Path.GetFullPath(d) : null;

    /// <summary>A native client in <see cref="Dir"/>; a managed apphost there (a .dll beside it) is refused, not silently tested.</summary>
    public static string Program(string name)
    {
        string dir = Dir ?? throw new InvalidOperationException($"{Variable} is not set");
        string path = Path.Combine(dir, name);
        Assert.True(File.Exists(path), $"{Variable}={dir}: no {name} there (tools/publish-native.sh {dir})");
        Assert.False(File.Exists(Path.Combine(dir, name + ".dll")), $"{Variable}={dir}: {name} there is a managed build ({name}.dll beside it)");
        return path;
    }

    /// <summary>Starts a native client with redirected output and without the caller's VSWITCH_SOCKET, as the harness starts the managed one.</summary>
    public static Process Start(string name, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(Program(name)) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("VSWITCH_SOCKET");
        return System.Diagnostics.Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {psi.FileName}");
    }
}

/// <summary>Which build the vsctl and CNI tests run: the one named by VSWITCH_NATIVE_CLIENTS, else the managed build.</summary>
public class VsctlNativeClientsTests
{
    [Fact]
    public void The_clients_under_test_are_the_native_ones_when_the_switch_is_set_else_the_managed_build()
    {
        if (NativeClients.Dir is not { } dir)
        {
            Assert.Equal(Path.Combine(Repo.Root, "tools/vsctl/bin", Repo.Configuration, "net10.0/vsctl"), Repo.Vsctl);
            Assert.Equal(Path.Combine(Repo.Root, "tools/vswitch-cni/bin", Repo.Configuration, "net10.0"), CniPlugin.Dir);
            return;
        }
        Assert.Equal(Path.Combine(dir, "vsctl"), Repo.Vsctl);
        Assert.Equal(dir, CniPlugin.Dir);
        foreach (string name in new[] { "vsctl", "vswitch-cni" })
        {
            Assert.False(File.Exists(Path.Combine(dir, name + ".runtimeconfig.json")), $"{name} in {dir} needs the .NET runtime: not a Native AOT build");
            // A Native AOT executable carries the runtime in itself (megabytes); a managed apphost is a ~70 KB launcher.
            long size = new FileInfo(Path.Combine(dir, name)).Length;
            Assert.True(size > 1_000_000, $"{name} is {size} bytes: not a self-contained native build");
        }
        var version = VsctlHarness.Vsctl("--version");
        Assert.True(version.ExitCode == 0, version.ToString());
    }
}
