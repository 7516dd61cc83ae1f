using System.Diagnostics;
using System.Net.Sockets;

namespace VSwitch.Integration.Tests;

/// <summary>
/// Plumbing for the vsctl tests (<see cref="VsctlTests"/>, <see cref="VsctlRulesTests"/>): run the built vsctl in a
/// child process, and start a vswitchd with no configuration on a private socket and state file (no root needed).
/// Use it with <c>using static VSwitch.Integration.Tests.VsctlHarness;</c>.
/// </summary>
public static class VsctlHarness
{
    public static readonly TimeSpan ProcessTimeout = TimeSpan.FromSeconds(60);

    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
    }

    /// <summary>The non-empty lines of an output, trimmed.</summary>
    public static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>A table row's cells (columns are separated by blanks).</summary>
    public static string[] Words(string line) => line.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>vsctl with these arguments, which must succeed.</summary>
    public static Result Ok(params string[] args)
    {
        var r = Vsctl(args);
        Assert.True(r.ExitCode == 0, $"vsctl {string.Join(' ', args)}: {r}");
        return r;
    }

    public static Result Vsctl(params string[] args)
    {
        using var p = NativeClients.Dir is not null ? NativeClients.Start("vsctl", args) : StartDotnet(BuiltDll("tools/vsctl", "vsctl"), args);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(ProcessTimeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"vsctl {string.Join(' ', args)} did not finish within {ProcessTimeout}");
        }
        p.WaitForExit(); // drains the output
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    public static Process StartDotnet(string dll, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(dll);
        foreach (string a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("VSWITCH_SOCKET");
        return Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {dll}");
    }

    /// <summary>A project's built dll in the configuration this test assembly was built in (bin/CONFIG/net10.0).</summary>
    public static string BuiltDll(string projectDir, string assembly)
    {
        var here = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
        string tfm = here.Name, configuration = here.Parent!.Name;
        var root = here;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "VSwitch.sln"))) root = root.Parent;
        Assert.True(root is not null, $"no VSwitch.sln above {AppContext.BaseDirectory}");
        string dll = Path.Combine(root!.FullName, projectDir, "bin", configuration, tfm, assembly + ".dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: build VSwitch.sln (-c {configuration}) before running these tests");
        return dll;
    }

    /// <summary>vswitchd with no config (zero networks, nothing created) on a private socket; killed on Dispose.</summary>
    public sealed class Daemon : IDisposable
    {
        private readonly Process _process;
        private readonly Task<string> _stdout, _stderr;
        public string Socket { get; }

        private Daemon(Process process, string socket)
        {
            _process = process;
            Socket = socket;
            _stdout = process.StandardOutput.ReadToEndAsync();
            _stderr = process.StandardError.ReadToEndAsync();
        }

        /// <summary>Starts vswitchd on a private socket and state database, with this configuration (JSON) or none.</summary>
        public static Daemon Start(string? configJson = null)
        {
            string socket = $"/tmp/vst-{Guid.NewGuid():N}.sock";
            string[] args = ["--socket", socket, "--state", socket + ".db"];
            if (configJson is not null)
            {
                File.WriteAllText(socket + ".json", configJson);
                args = [.. args, "--config", socket + ".json"];
            }
            var d = new Daemon(StartDotnet(BuiltDll("vswitch/VSwitchd", "vswitchd"), args), socket);
            try
            {
                var sw = Stopwatch.StartNew();
                while (!Answers(socket))
                {
                    if (d._process.HasExited)
                        throw new InvalidOperationException($"vswitchd exited with {d._process.ExitCode}: {d._stderr.Result}{d._stdout.Result}");
                    if (sw.Elapsed > TimeSpan.FromSeconds(30))
                        throw new TimeoutException($"vswitchd did not open {socket} within 30s");
                    Thread.Sleep(50);
                }
                return d;
            }
            catch
            {
                d.Dispose();
                throw;
            }
        }

        private static bool Answers(string socket)
        {
            if (!File.Exists(socket)) return false;
            try
            {
                using var s = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                s.Connect(new UnixDomainSocketEndPoint(socket));
                return true;
            }
            catch (SocketException) { return false; }
        }

        public void Dispose()
        {
            try
            {
                if (!_process.HasExited)
                {
                    _process.Kill(entireProcessTree: true);
                    _process.WaitForExit(10_000);
                }
            }
            catch (InvalidOperationException) { } // already gone
            finally
            {
                _process.Dispose();
                try { File.Delete(Socket); } catch (IOException) { }
                foreach (var f in new[] { Socket + ".json", Socket + ".db", Socket + ".db-wal", Socket + ".db-shm", Socket + ".db.lock" })
                    try { File.Delete(f); } catch (IOException) { }
            }
        }
    }
}
