using System.Diagnostics;

namespace VSwitch.Integration.Tests;

/// <summary>
/// tools/install.sh builds (dotnet publish), and the managed tests run the projects' builds: this collection runs
/// alone, after the others, so that no test starts a program while a publish may rewrite it.
/// </summary>
[CollectionDefinition("install", DisableParallelization = true)]
public sealed class InstallCollection;

/// <summary>Runs as root with clang-14 present (tools/test.sh installs it); skipped with the reason otherwise.</summary>
public sealed class InstallFactAttribute : FactAttribute
{
    public InstallFactAttribute()
    {
        if (!RootFactAttribute.IsRoot) Skip = "needs root (tools/install.sh installs the Debian packages it needs)";
        else if (!Directory.Exists("/usr/lib/llvm-14") || !File.Exists("/usr/bin/clang-14"))
            Skip = "clang-14 is not installed (Native AOT links with it; tools/test.sh installs it, or says why it could not)";
    }
}

/// <summary>tools/install.sh into a temporary prefix: every file where the README says, each of them working.</summary>
[Collection("install")]
public class InstallTests
{
    private static readonly string[] Files =
    [
        "bin/vswitchd", "bin/vsctl", "lib/cni/vswitch-cni",
        "share/bash-completion/completions/vsctl", "share/zsh/site-functions/_vsctl",
        "share/man/man1/vsctl.1", "share/man/man8/vswitchd.8", "lib/vswitch/install-manifest",
        "lib/systemd/system/vswitchd.service", "etc/vswitch/config.json",
    ];

    [InstallFact]
    public void Install_script_installs_working_programs_completions_and_manual_pages_and_uninstall_removes_them()
    {
        string prefix = Directory.CreateTempSubdirectory("vsi-").FullName;
        // The API's role groups: the install creates the missing ones, and uninstall removes only those (README: "Access control and audit").
        string[] roleGroups = ["vswitch-admin", "vswitch-read"];
        var groupsBefore = roleGroups.Where(GroupExists).ToList();
        try
        {
            var install = Proc.Run(TimeSpan.FromMinutes(10), "bash", Path.Combine(Repo.Root, "tools/install.sh"), "--prefix", prefix);
            Assert.True(install.ExitCode == 0, install.Output);
            foreach (string f in Files) Assert.True(File.Exists(Path.Combine(prefix, f)), $"{f} missing under {prefix}:\n{install.Output}");
            foreach (string g in roleGroups)
            {
                Assert.True(GroupExists(g), $"group {g} missing after install:\n{install.Output}");
                if (!groupsBefore.Contains(g)) Assert.Contains($"created the group {g}", install.Output);
            }

            // The programs run from there: vsctl and the plugin with no .NET at all (Native AOT), vswitchd through its link.
            var help = Run(Path.Combine(prefix, "bin/vsctl"), ["--help"], new() { ["DOTNET_ROOT"] = "/nonexistent" });
            Assert.True(help.ExitCode == 0, help.Output);
            Assert.Contains("Usage:", help.StdOut);
            Assert.Contains("attach", help.StdOut);
            var version = Run(Path.Combine(prefix, "lib/cni/vswitch-cni"), [], new() { ["CNI_COMMAND"] = "VERSION" }, "{\"cniVersion\":\"1.0.0\"}");
            Assert.True(version.ExitCode == 0, version.Output);
            Assert.Contains("supportedVersions", version.StdOut);
            var daemon = Run(Path.Combine(prefix, "bin/vswitchd"), ["--help"]);
            Assert.True(daemon.ExitCode == 0, daemon.Output);
            Assert.Contains("--state PATH", daemon.StdOut);

            // The completion scripts parse, and bash's completes subcommands and the values the parser knows.
            string bash = Path.Combine(prefix, "share/bash-completion/completions/vsctl");
            var syntax = Run("bash", ["-n", bash]);
            Assert.True(syntax.ExitCode == 0, syntax.Output);
            Assert.Equal("ls show add set rm", Complete(bash, "vsctl", "port", ""));
            // An afpacket port's ring flags, as the parser has them.
            var portFlags = Complete(bash, "vsctl", "port", "add", "p1", "--").Split(' ');
            Assert.Contains("--ring-frames", portFlags);
            Assert.Contains("--frame-size", portFlags);
            Assert.Equal("afpacket afxdp tap", Complete(bash, "vsctl", "--socket", "/tmp/x.sock", "port", "add", "p1", "--type", ""));
            Assert.Contains("--subnet", Complete(bash, "vsctl", "network", "add", "blue", "--").Split(' '));
            if (File.Exists("/usr/bin/zsh") || File.Exists("/bin/zsh"))
            {
                var zsh = Run("zsh", ["-n", Path.Combine(prefix, "share/zsh/site-functions/_vsctl")]);
                Assert.True(zsh.ExitCode == 0, zsh.Output);
            }

            // The manual pages render, without a warning from groff.
            foreach (var (page, name, expected) in new[] { ("share/man/man1/vsctl.1", "VSCTL(1)", "network add"), ("share/man/man8/vswitchd.8", "VSWITCHD(8)", "--config FILE") })
            {
                var man = Run("man", ["--warnings", "-l", Path.Combine(prefix, page)], new() { ["MANWIDTH"] = "100", ["MANPAGER"] = "cat", ["PAGER"] = "cat" });
                Assert.True(man.ExitCode == 0, man.Output);
                Assert.StartsWith(name, man.StdOut.TrimStart());
                Assert.Contains(expected, man.StdOut);
                Assert.Contains("SEE ALSO", man.StdOut);
                Assert.True(man.StdErr.Trim().Length == 0, $"man {page}: {man.StdErr}");
            }

            // The unit, with this prefix's paths, passes systemd-analyze verify (its manual pages found through MANPATH).
            string unit = File.ReadAllText(Path.Combine(prefix, "lib/systemd/system/vswitchd.service"));
            Assert.Contains($"ExecStart={prefix}/bin/vswitchd --config {prefix}/etc/vswitch/config.json --socket /run/vswitch/vswitchd.sock --state {prefix}/var/lib/vswitch/state.db", unit);
            Assert.Equal("{}", File.ReadAllText(Path.Combine(prefix, "etc/vswitch/config.json")).Trim());
            if (SystemdVswitchdTests.Which("systemd-analyze") is not null)
            {
                var verify = Run("systemd-analyze", ["verify", Path.Combine(prefix, "lib/systemd/system/vswitchd.service")], new() { ["MANPATH"] = Path.Combine(prefix, "share/man") + ":" });
                Assert.True(verify.ExitCode == 0 && verify.Output.Trim().Length == 0, $"systemd-analyze verify: exit {verify.ExitCode}\n{verify.Output}");
            }

            // The installed daemon with the unit's configuration and state database (its own socket), under a stand-in
            // for systemd: READY=1; it leaves a state database behind.
            string state = Path.Combine(prefix, "var/lib/vswitch/state.db");
            if (SystemdVswitchdTests.Which("python3") is not null)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(state)!);
                string sock = Path.Combine(Path.GetTempPath(), $"vsi-{Environment.ProcessId}.sock");
                var notify = Proc.Run(TimeSpan.FromSeconds(60), "python3", Path.Combine(Repo.Root, "tools/notify-listen.py"), "--until", "READY=1", "--seconds", "20", "--",
                    Path.Combine(prefix, "bin/vswitchd"), "--config", Path.Combine(prefix, "etc/vswitch/config.json"), "--socket", sock, "--state", state);
                Assert.True(notify.ExitCode == 0, notify.Output);
                Assert.Contains("READY=1", notify.StdOut);
            }
            else
            {
                Directory.CreateDirectory(Path.GetDirectoryName(state)!);
                File.WriteAllText(state, "");
            }
            Assert.True(File.Exists(state));

            // Again: the same files (idempotent). A changed configuration and the state database outlive tools/uninstall.sh;
            // everything else goes, folders included.
            var again = Proc.Run(TimeSpan.FromMinutes(10), "bash", Path.Combine(Repo.Root, "tools/install.sh"), "--prefix", prefix, "--no-build");
            Assert.True(again.ExitCode == 0, again.Output);
            File.WriteAllText(Path.Combine(prefix, "etc/vswitch/config.json"), "{ \"networks\": [] }\n");
            var uninstall = Proc.Run(TimeSpan.FromMinutes(1), "bash", Path.Combine(Repo.Root, "tools/uninstall.sh"), "--prefix", prefix);
            Assert.True(uninstall.ExitCode == 0, uninstall.Output);
            foreach (string f in Files.Where(f => f != "etc/vswitch/config.json"))
                Assert.False(File.Exists(Path.Combine(prefix, f)) || Directory.Exists(Path.Combine(prefix, f)), $"{f} left after uninstall.sh");
            // (state.db.lock: the daemon's lock file beside the database, when it ran)
            Assert.Equal(["etc/vswitch/config.json", "var/lib/vswitch/state.db"], Left(prefix).Where(f => f != "var/lib/vswitch/state.db.lock"));

            // Installed again over the kept configuration (kept as it is), then uninstall.sh --purge: nothing at all is left.
            var third = Proc.Run(TimeSpan.FromMinutes(10), "bash", Path.Combine(Repo.Root, "tools/install.sh"), "--prefix", prefix, "--no-build");
            Assert.True(third.ExitCode == 0, third.Output);
            Assert.Contains("networks", File.ReadAllText(Path.Combine(prefix, "etc/vswitch/config.json")));
            var purge = Proc.Run(TimeSpan.FromMinutes(1), "bash", Path.Combine(Repo.Root, "tools/uninstall.sh"), "--prefix", prefix, "--purge");
            Assert.True(purge.ExitCode == 0, purge.Output);
            var left = Left(prefix, withFolders: true);
            Assert.True(left.Count == 0, $"left under {prefix} after uninstall.sh --purge:\n{string.Join('\n', left)}\n{purge.Output}");
            Assert.Equal(groupsBefore, roleGroups.Where(GroupExists)); // the groups it made are gone, the ones that were there stay
        }
        finally
        {
            try { Directory.Delete(prefix, recursive: true); } catch (IOException) { }
            foreach (string g in roleGroups.Where(g => !groupsBefore.Contains(g) && GroupExists(g))) Proc.Run("groupdel", g);
        }
    }

    private static bool GroupExists(string name) => Proc.Run("getent", "group", name).ExitCode == 0;

    /// <summary>The files (and with <paramref name="withFolders"/> the folders) under <paramref name="dir"/>, relative, sorted.</summary>
    private static List<string> Left(string dir, bool withFolders = false) =>
        Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories)
            .Where(p => withFolders || !Directory.Exists(p) || new FileInfo(p).LinkTarget is not null)
            .Select(p => Path.GetRelativePath(dir, p)).Order(StringComparer.Ordinal).ToList();

    /// <summary>What the bash completion offers for the words (the last is the one being completed), space-separated.</summary>
    private static string Complete(string script, params string[] words)
    {
        string quoted = string.Join(' ', words.Select(w => "'" + w.Replace("'", "'\\''") + "'"));
        var r = Run("bash", ["-c", $"source '{script}'; COMP_WORDS=({quoted}); COMP_CWORD={words.Length - 1}; _vsctl; echo \"${{COMPREPLY[*]}}\""]);
        Assert.True(r.ExitCode == 0, r.Output);
        return r.StdOut.Trim();
    }

    private static ProcessResult Run(string program, string[] args, Dictionary<string, string>? env = null, string? stdin = null)
    {
        var psi = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        foreach (string a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? []) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        p.StandardInput.Write(stdin ?? "");
        p.StandardInput.Close();
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            Proc.KillQuietly(p);
            throw new TimeoutException($"{program} {string.Join(' ', args)} did not finish within 60 s");
        }
        p.WaitForExit();
        return new ProcessResult(p.ExitCode, so.Result, se.Result);
    }
}
