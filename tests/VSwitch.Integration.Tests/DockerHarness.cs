using System.Diagnostics;

namespace VSwitch.Integration.Tests;

/// <summary>Runs as root with Debian's docker.io (dockerd 20.10) and busybox-static (installed when missing); skipped with the reason otherwise.</summary>
public sealed class DockerFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> WhyNot = new(Probe);

    public DockerFactAttribute()
    {
        if (!RootFactAttribute.IsRoot) Skip = "needs root (dockerd, network namespaces, TAP devices)";
        else if (WhyNot.Value is { } why) Skip = why;
    }

    private static bool Present() => File.Exists(PrivateDockerd.Dockerd) && File.Exists(PrivateDockerd.Client) && File.Exists("/bin/busybox");

    private static string? Probe()
    {
        if (Present()) return null;
        try
        {
            var r = Proc.Run(TimeSpan.FromSeconds(600), "apt-get", "install", "-y", "-qq", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600",
                "docker.io", "busybox-static");
            return Present() ? null : $"docker.io or busybox-static missing and apt-get install failed: {r.Output.Trim().Split('\n').LastOrDefault()}";
        }
        catch (Exception e) when (e is TimeoutException or System.ComponentModel.Win32Exception)
        {
            return "docker.io or busybox-static missing and could not be installed: " + e.Message;
        }
    }
}

/// <summary>
/// A dockerd of a test's own (PEERS.md): private data root, exec root, pidfile and API socket in a temporary folder,
/// vfs storage, no iptables, no default bridge, cgroupfs, and live restore (containers outlive a dockerd restart).
/// A busybox image is imported from busybox-static. Dispose removes its containers and networks, stops it by its PID,
/// then stops by PID any container process it left, unmounts what is left under its folder and deletes the folder.
/// </summary>
public sealed class PrivateDockerd : IDisposable
{
    public const string Dockerd = "/usr/sbin/dockerd";
    /// <summary>Debian's client, of dockerd's version (another docker on the PATH may be newer than the daemon speaks).</summary>
    public const string Client = "/usr/bin/docker";
    public const string Image = "localhost/busybox:latest";

    private Process? _process;
    private readonly List<string> _log = [];

    public string Dir { get; }
    public string Socket => Path.Combine(Dir, "docker.sock");
    public string Host => "unix://" + Socket;
    public string Log { get { lock (_log) return string.Join('\n', _log); } }

    /// <summary>The folder and the image; dockerd itself starts with <see cref="Start"/> (and again after <see cref="Kill"/>).</summary>
    public PrivateDockerd(string? bridgeArgs = null)
    {
        // Short: the sandboxes' namespace files and the API socket live under it (a Unix socket path has 108 bytes).
        Dir = Directory.CreateTempSubdirectory("vsdk").FullName;
        BridgeArgs = bridgeArgs;
    }

    /// <summary>Extra options instead of --bridge=none (a bench's dockerd with its own bridge: --bridge NAME).</summary>
    public string? BridgeArgs { get; }

    public int Pid => _process?.Id ?? 0;

    public void Start()
    {
        var psi = new ProcessStartInfo(Dockerd) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[]
        {
            "--data-root", Path.Combine(Dir, "data"), "--exec-root", Path.Combine(Dir, "exec"), "--pidfile", Path.Combine(Dir, "docker.pid"),
            "-H", Host, "--storage-driver", "vfs", "--iptables=false", "--exec-opt", "native.cgroupdriver=cgroupfs", "--live-restore",
        }) psi.ArgumentList.Add(a);
        foreach (var a in (BridgeArgs ?? "--bridge=none").Split(' ', StringSplitOptions.RemoveEmptyEntries)) psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.Add(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.Add(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        Wait.Until(() => _process.HasExited || Run("info").ExitCode == 0, TimeSpan.FromSeconds(60), "dockerd to answer on " + Socket);
        if (_process.HasExited) throw new InvalidOperationException($"dockerd exited {_process.ExitCode}: {Log}");
        if (Run("image", "inspect", Image).ExitCode != 0) ImportBusybox();
    }

    private void ImportBusybox()
    {
        string root = Path.Combine(Dir, "rootfs");
        Directory.CreateDirectory(Path.Combine(root, "bin"));
        foreach (var sub in new[] { "etc", "proc", "sys", "dev", "tmp", "run" }) Directory.CreateDirectory(Path.Combine(root, sub));
        File.Copy("/bin/busybox", Path.Combine(root, "bin/busybox"));
        foreach (var applet in new[] { "sh", "ip", "ping", "sleep", "cat", "ifconfig", "hostname", "ls" })
            File.CreateSymbolicLink(Path.Combine(root, "bin", applet), "busybox");
        string tar = Path.Combine(Dir, "rootfs.tar");
        Proc.Check("tar", "-C", root, "-cf", tar, ".");
        var r = Run("import", tar, Image);
        if (r.ExitCode != 0) throw new InvalidOperationException("docker import: " + r.Output);
    }

    /// <summary>The docker client against this dockerd; at most <paramref name="timeout"/> (default 90 s).</summary>
    public ProcessResult Run(params string[] args) => Run(TimeSpan.FromSeconds(90), args);

    public ProcessResult Run(TimeSpan timeout, params string[] args) => Proc.Run(timeout, Client, ["-H", Host, .. args]);

    /// <summary>The docker client, and an assertion that it succeeded (its output and dockerd's log otherwise).</summary>
    public string Check(params string[] args)
    {
        var r = Run(args);
        if (r.ExitCode != 0) throw new InvalidOperationException($"docker {string.Join(' ', args)}: exit {r.ExitCode}: {r.Output}\n--- dockerd:\n{Tail(Log)}");
        return r.StdOut.Trim();
    }

    private static string Tail(string s) => s.Length > 4000 ? s[^4000..] : s;

    /// <summary>SIGKILL (a crash): the containers run on (live restore); <see cref="Start"/> brings it back.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false } p)
        {
            Proc.KillQuietly(p);
            p.WaitForExit();
        }
        // dockerd's containerd dies with it (parent-death signal), but this sandbox's init may reap it late: a zombie
        // named in containerd.pid looks alive to the next dockerd, which then waits for its socket and gives up. A
        // containerd that is dead or a zombie is forgotten, so the next dockerd starts its own (the containers' shims
        // run on, and the new containerd finds them).
        string pidFile = Path.Combine(Dir, "exec", "containerd", "containerd.pid");
        if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out int pid))
        {
            bool Dead() => !File.Exists($"/proc/{pid}/stat") || File.ReadAllText($"/proc/{pid}/stat").Split(") ").ElementAtOrDefault(1)?.StartsWith('Z') == true;
            try { Wait.Until(Dead, TimeSpan.FromSeconds(10), $"containerd {pid} to die with dockerd"); }
            catch (TimeoutException) { return; } // alive and well: the next dockerd uses it
            File.Delete(pidFile);
        }
    }

    public void Dispose()
    {
        if (_process is { HasExited: false })
        {
            var ids = Run(TimeSpan.FromSeconds(30), "ps", "-aq").StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            if (ids.Length > 0) Run(TimeSpan.FromSeconds(120), ["rm", "-f", .. ids]);
            foreach (var n in Run(TimeSpan.FromSeconds(30), "network", "ls", "--filter", "type=custom", "-q").StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                Run(TimeSpan.FromSeconds(60), "network", "rm", n);
            Proc.Run("kill", "-TERM", _process.Id.ToString());
            if (!_process.WaitForExit(TimeSpan.FromSeconds(30))) Proc.KillQuietly(_process);
        }
        _process?.WaitForExit();
        // Container processes a failed test left (their shims name this dockerd's containerd socket): by PID.
        foreach (var pid in Proc.Run("pgrep", "-f", Path.Combine(Dir, "exec")).StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            foreach (var child in Proc.Run("pgrep", "-P", pid.Trim()).StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                Proc.Run("kill", "-KILL", child.Trim());
            Proc.Run("kill", "-KILL", pid.Trim());
        }
        foreach (var line in File.ReadAllLines("/proc/self/mounts").Select(l => l.Split(' ')[1]).Where(m => m.StartsWith(Dir + "/", StringComparison.Ordinal))
                     .OrderByDescending(m => m.Length))
            Proc.Run("umount", "-l", line);
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
