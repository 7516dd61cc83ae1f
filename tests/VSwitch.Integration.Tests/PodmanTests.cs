using System.Text.Json.Nodes;

namespace VSwitch.Integration.Tests;

/// <summary>
/// A real runtime calling the plugin: podman 4 with its CNI backend, a private containers.conf and
/// storage.conf (nothing under /etc or /var/lib/containers is used), busybox containers on a
/// vswitch network named as podman's default network (so podman never creates cni-podman0).
/// </summary>
/// <summary>Runs as root with podman, runc and busybox-static present (installed from Debian when missing); skipped with the reason otherwise.</summary>
public sealed class PodmanFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> WhyNot = new(Probe);

    public PodmanFactAttribute()
    {
        if (!RootFactAttribute.IsRoot) Skip = "needs root (podman with CNI networking, network namespaces)";
        else if (WhyNot.Value is { } why) Skip = why;
    }

    private static bool Present() => File.Exists("/usr/bin/podman") && File.Exists("/bin/busybox") && (File.Exists("/usr/sbin/runc") || File.Exists("/usr/bin/runc"));

    private static string? Probe()
    {
        if (!Present())
        {
            try
            {
                var r = Proc.Run(TimeSpan.FromSeconds(600), "apt-get", "install", "-y", "-qq", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600",
                    "podman", "runc", "containernetworking-plugins", "busybox-static");
                if (!Present()) return $"podman, runc or busybox-static missing and apt-get install failed: {r.Output.Trim().Split('\n').LastOrDefault()}";
            }
            catch (Exception e) when (e is TimeoutException or System.ComponentModel.Win32Exception)
            {
                return "podman, runc or busybox-static missing and could not be installed: " + e.Message;
            }
        }
        var v = Proc.Run(TimeSpan.FromSeconds(30), "podman", "--version");
        return v.ExitCode == 0 ? null : $"podman does not run here: {v.Output.Trim()}";
    }
}

[Collection("netns")]
public class PodmanTests
{
    [PodmanFact]
    public void Podman_containers_get_vswitch_interfaces_ping_each_other_and_are_cleaned_up_by_rm()
    {
        string sfx = Names.Random("");
        string dir = Directory.CreateTempSubdirectory("vspd-").FullName;
        string net = "vspn" + sfx;
        bool hadVarLib = Directory.Exists("/var/lib/containers");
        var env = new Dictionary<string, string>
        {
            ["CONTAINERS_CONF"] = Path.Combine(dir, "containers.conf"),
            ["CONTAINERS_STORAGE_CONF"] = Path.Combine(dir, "storage.conf"),
        };
        ProcessResult Podman(params string[] args)
        {
            var psi = new System.Diagnostics.ProcessStartInfo("podman") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var (k, v) in env) psi.Environment[k] = v;
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = System.Diagnostics.Process.Start(psi)!;
            var so = p.StandardOutput.ReadToEndAsync();
            var se = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromSeconds(45))) { Proc.KillQuietly(p); throw new TimeoutException("podman " + string.Join(' ', args)); }
            p.WaitForExit();
            return new ProcessResult(p.ExitCode, so.Result, se.Result);
        }
        string[] names = ["vsc1" + sfx, "vsc2" + sfx];
        Vswitchd? d = null;
        try
        {
            string root = Path.Combine(dir, "rootfs");
            Directory.CreateDirectory(Path.Combine(root, "bin"));
            foreach (var sub in new[] { "etc", "proc", "sys", "dev", "tmp", "run" }) Directory.CreateDirectory(Path.Combine(root, sub));
            File.Copy("/bin/busybox", Path.Combine(root, "bin/busybox"));
            foreach (var applet in new[] { "sh", "ip", "ping", "sleep", "cat", "ifconfig" })
                File.CreateSymbolicLink(Path.Combine(root, "bin", applet), "busybox");
            Directory.CreateDirectory(Path.Combine(dir, "cni.d"));
            File.WriteAllText(env["CONTAINERS_CONF"], $"""
                [containers]
                netns = "private"
                default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
                [engine]
                cgroup_manager = "cgroupfs"
                events_logger = "file"
                runtime = "runc"
                tmp_dir = "{dir}/tmp"
                [network]
                network_backend = "cni"
                cni_plugin_dirs = ["{CniPlugin.Dir}", "/usr/lib/cni"]
                network_config_dir = "{dir}/cni.d"
                default_network = "{net}"
                """);
            File.WriteAllText(env["CONTAINERS_STORAGE_CONF"], $"""
                [storage]
                driver = "vfs"
                runroot = "{dir}/run"
                graphroot = "{dir}/storage"
                """);
            d = Vswitchd.Start("""{"networks":[{"name":"blue","subnet":"10.11.0.0/24","gateway":"10.11.0.1"}]}""");
            File.WriteAllText(Path.Combine(dir, "cni.d", net + ".conflist"), new JsonObject
            {
                ["cniVersion"] = "1.0.0",
                ["name"] = net,
                ["plugins"] = new JsonArray(new JsonObject { ["type"] = "vswitch-cni", ["network"] = "blue", ["socket"] = d.Socket }),
            }.ToJsonString());

            foreach (var n in names)
            {
                var run = Podman("run", "-d", "--name", n, "--network", net, "--rootfs", root, "sleep", "60");
                Assert.True(run.ExitCode == 0, $"podman run {n}: {run.Output}\n{d.Log}");
            }

            // Each container has an attachment made by the plugin (podman's container id, eth0).
            var atts = d.Get("/v1/attachments").AsArray();
            Assert.Equal(2, atts.Count);
            string Ip(string name)
            {
                string id = Podman("inspect", "--format", "{{.Id}}", name).StdOut.Trim();
                var a = atts.Single(x => (string?)x!["containerId"] == id)!;
                Assert.Equal("cni:" + net, (string)a["source"]!);
                return (string)a["ip"]!;
            }
            string ip1 = Ip(names[0]), ip2 = Ip(names[1]);
            Assert.NotEqual(ip1, ip2);
            Assert.Contains($"inet {ip1}/24", Podman("exec", names[0], "ip", "addr", "show", "eth0").StdOut);
            Assert.Equal(ip2, Podman("inspect", "--format", "{{(index .NetworkSettings.Networks \"" + net + "\").IPAddress}}", names[1]).StdOut.Trim());

            var ping = Podman("exec", names[0], "ping", "-c", "2", "-W", "2", ip2);
            Assert.True(ping.ExitCode == 0, $"ping {ip2} from {names[0]}: {ping.Output}");
            ping = Podman("exec", names[1], "ping", "-c", "2", "-W", "2", ip1);
            Assert.True(ping.ExitCode == 0, $"ping {ip1} from {names[1]}: {ping.Output}");

            var ports = AttachTests.Vsctl(d, "port", "ls").StdOut;
            foreach (var a in atts) Assert.Contains((string)a!["port"]!, ports);

            // podman rm -f: DEL through the plugin; the port goes and the address is released.
            var rm = Podman("rm", "-f", "-t", "0", names[1]);
            Assert.True(rm.ExitCode == 0, rm.Output);
            string port2 = (string)atts.Single(x => (string?)x!["ip"] == ip2)!["port"]!;
            Wait.Until(() => !d.Get("/v1/ports").AsArray().Any(p => (string?)p!["name"] == port2), TimeSpan.FromSeconds(10), $"port {port2} to go");
            Assert.DoesNotContain(d.Get("/v1/networks/blue")["allocations"]!.AsArray(), x => (string?)x!["address"] == ip2);
            Assert.Single(d.Get("/v1/attachments").AsArray());
            Assert.DoesNotContain("cni-podman0", Proc.Run("ip", "link").StdOut);
        }
        finally
        {
            foreach (var n in names) try { Podman("rm", "-f", "-t", "0", n); } catch (TimeoutException) { }
            d?.Dispose();
            // vfs layers and runroot mounts (if any) before the folder goes.
            Proc.Run("umount", "-R", Path.Combine(dir, "storage"));
            Proc.Run("umount", "-R", Path.Combine(dir, "run"));
            try { Directory.Delete(dir, true); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            if (!hadVarLib && Directory.Exists("/var/lib/containers")) Directory.Delete("/var/lib/containers", true);
        }
    }

    [PodmanFact]
    public void The_CNI_READMEs_podman_recipe_runs_as_written()
    {
        string dir = Directory.CreateTempSubdirectory("vspr-").FullName;
        bool hadVarLib = Directory.Exists("/var/lib/containers");
        using var d = Vswitchd.Start(null);
        string script = Path.Combine(dir, "recipe.sh");
        File.WriteAllText(script, Markdown.ShBlockAfter("tools/vswitch-cni/README.md", "<!-- podman-recipe"));
        var psi = new System.Diagnostics.ProcessStartInfo("bash", [script]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.Environment["VSDIR"] = Path.Combine(dir, "podman");
        psi.Environment["CNI_PLUGIN_DIR"] = CniPlugin.Dir;
        psi.Environment["VSWITCH_SOCKET"] = d.Socket;
        psi.Environment["PATH"] = Path.GetDirectoryName(Repo.Vsctl) + ":" + Environment.GetEnvironmentVariable("PATH");
        psi.WorkingDirectory = Repo.Root;
        try
        {
            using var p = System.Diagnostics.Process.Start(psi)!;
            var so = p.StandardOutput.ReadToEndAsync();
            var se = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromSeconds(180))) { Proc.KillQuietly(p); throw new TimeoutException("the podman recipe did not finish in 180 s"); }
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, $"the recipe failed (exit {p.ExitCode}):\n{so.Result}\n{se.Result}\n{d.Log}");
            string output = so.Result;
            // The first `vsctl attach ls` listed both containers by name; the second, after rm, none.
            var lines = output.Split('\n');
            Assert.Contains(lines, l => l.Contains(" web ", StringComparison.Ordinal) && l.Contains("10.1.0.2/24", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.Contains(" app ", StringComparison.Ordinal) && l.Contains("10.1.0.20/24", StringComparison.Ordinal));
            Assert.Contains("1 packets received", output);
            Assert.Empty(d.Get("/v1/attachments").AsArray());
            Assert.DoesNotContain("cni-podman0", Proc.Run("ip", "link").StdOut);
        }
        finally
        {
            var env = new Dictionary<string, string> { ["CONTAINERS_CONF"] = Path.Combine(dir, "podman/containers.conf"), ["CONTAINERS_STORAGE_CONF"] = Path.Combine(dir, "podman/storage.conf") };
            var rm = new System.Diagnostics.ProcessStartInfo("podman", ["rm", "-f", "-t", "0", "web", "app"]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var (k, v) in env) rm.Environment[k] = v;
            try { using var r = System.Diagnostics.Process.Start(rm)!; r.WaitForExit(30_000); } catch (System.ComponentModel.Win32Exception) { }
            Proc.Run("umount", "-R", Path.Combine(dir, "podman/storage"));
            Proc.Run("umount", "-R", Path.Combine(dir, "podman/run"));
            try { Directory.Delete(dir, true); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            if (!hadVarLib && Directory.Exists("/var/lib/containers")) Directory.Delete("/var/lib/containers", true);
        }
    }
}
