using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json;

namespace VSwitch.Integration.Tests;

/// <summary>
/// vsctl as a user runs it: the built tool (tools/vsctl/bin/CONFIG/net10.0) in a child process, and for the
/// live tests a vswitchd with no configuration on a private socket, which creates nothing and needs no root.
/// The test project does not reference vsctl or vswitchd; build VSwitch.sln first.
/// </summary>
public sealed class VsctlTests
{
    private static readonly TimeSpan ProcessTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public void MissingSocket_Exits1_AndSaysTheDaemonCannotBeReached()
    {
        string socket = $"/tmp/nonexistent-{Guid.NewGuid():N}.sock";
        var r = Vsctl("--socket", socket, "port", "ls");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("cannot reach vswitchd", r.Stderr);
        Assert.Contains(socket, r.Stderr);
        Assert.Contains("is it running?", r.Stderr);
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void SocketNobodyListensOn_Exits1_ConnectionRefused()
    {
        string socket = $"/tmp/vst-stale-{Guid.NewGuid():N}.sock";
        try
        {
            // Like a socket file a dead daemon left behind: it exists, nobody listens on it. (Kept open
            // while vsctl runs: .NET unlinks the file when the socket that bound it is disposed.)
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.Bind(new UnixDomainSocketEndPoint(socket));
            var r = Vsctl("--socket", socket, "show");
            Assert.Equal(1, r.ExitCode);
            Assert.Contains($"cannot reach vswitchd at {socket}: connection refused", r.Stderr);
        }
        finally { File.Delete(socket); }
    }

    [Fact]
    public void UnknownSubcommand_Exits2()
    {
        var r = Vsctl("--socket", "/tmp/nonexistent.sock", "frobnicate");
        Assert.Equal(2, r.ExitCode);
        Assert.StartsWith("vsctl: ", r.Stderr);
    }

    [Theory]
    [InlineData("network", "add", "blue", "--vlan", "ten")]        // not a number
    [InlineData("port", "add", "p1", "--network", "blue", "--type", "veth")] // not a port type
    [InlineData("port", "add", "p1", "--type", "tap")]             // --network is required
    [InlineData("port", "add", "p1", "--network", "blue", "--type", "tap", "--trunks", "10,x")]
    [InlineData("port", "add", "p1", "--network", "blue", "--type", "tap", "--native-vlan", "5")] // native VLAN without --trunks
    [InlineData("fdb", "flush", "--network", "blue", "--port", "p1")]
    [InlineData("network")]                                        // a group without its command
    public void BadUsage_Exits2_BeforeContactingTheDaemon(params string[] args)
    {
        var r = Vsctl(["--socket", "/tmp/nonexistent.sock", .. args]);
        Assert.Equal(2, r.ExitCode);
        Assert.DoesNotContain("cannot reach", r.Stderr);
    }

    [Fact]
    public void Help_Exits0_AndListsTheCommandGroups()
    {
        var r = Vsctl("--help");
        Assert.Equal(0, r.ExitCode);
        foreach (string group in new[] { "show", "network", "port", "fdb", "stats" })
            Assert.Contains(group, r.Stdout);
    }

    [Fact]
    public void LiveDaemon_NetworkAddListInspectRemove()
    {
        using var daemon = Daemon.Start();
        string[] s = ["--socket", daemon.Socket];

        var add = Vsctl([.. s, "network", "add", "blue", "--vlan", "10"]);
        Assert.True(add.ExitCode == 0, add.ToString());

        var ls = Vsctl([.. s, "network", "ls"]);
        Assert.True(ls.ExitCode == 0, ls.ToString());
        var lines = ls.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["NAME", "VLAN", "VNI", "AGING", "PORTS"], lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(["blue", "10", "-", "300", "0"], lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries));

        var json = Vsctl([.. s, "--json", "network", "ls"]);
        Assert.True(json.ExitCode == 0, json.ToString());
        using (var doc = JsonDocument.Parse(json.Stdout))
        {
            var net = Assert.Single(doc.RootElement.EnumerateArray());
            Assert.Equal("blue", net.GetProperty("name").GetString());
            Assert.Equal(10, net.GetProperty("vlan").GetInt32());
        }

        var again = Vsctl([.. s, "network", "add", "blue"]);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("vsctl: network 'blue' already exists", again.Stderr);

        var badVlan = Vsctl([.. s, "network", "add", "red", "--vlan", "5000"]);
        Assert.Equal(1, badVlan.ExitCode); // the daemon checks ranges and names the field
        Assert.Contains("vlan", badVlan.Stderr);

        var inspect = Vsctl([.. s, "network", "inspect", "blue"]);
        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        Assert.Contains("vlan:       10", inspect.Stdout);

        var show = Vsctl([.. s, "show"]);
        Assert.True(show.ExitCode == 0, show.ToString());
        Assert.Contains("Network blue", show.Stdout);

        var stats = Vsctl([.. s, "--json", "stats"]);
        Assert.True(stats.ExitCode == 0, stats.ToString());
        using (var doc = JsonDocument.Parse(stats.Stdout))
            Assert.Equal(JsonValueKind.Array, doc.RootElement.GetProperty("stages").ValueKind);

        var flush = Vsctl([.. s, "fdb", "flush", "--network", "blue"]);
        Assert.True(flush.ExitCode == 0, flush.ToString());
        Assert.Equal("removed 0 entries", flush.Stdout.Trim());

        var missing = Vsctl([.. s, "network", "inspect", "nope"]);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("vsctl: no network named 'nope'", missing.Stderr);

        var rm = Vsctl([.. s, "network", "rm", "blue"]);
        Assert.True(rm.ExitCode == 0, rm.ToString());
        var empty = Vsctl([.. s, "--json", "network", "ls"]);
        Assert.Equal("[]", empty.Stdout.Trim());
    }

    // ---- plumbing ----

    private sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
    }

    private static Result Vsctl(params string[] args)
    {
        using var p = StartDotnet(BuiltDll("tools/vsctl", "vsctl"), args);
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

    private static Process StartDotnet(string dll, IEnumerable<string> args)
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
    private static string BuiltDll(string projectDir, string assembly)
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
    private sealed class Daemon : IDisposable
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

        public static Daemon Start()
        {
            string socket = $"/tmp/vst-{Guid.NewGuid():N}.sock";
            var d = new Daemon(StartDotnet(BuiltDll("vswitch/VSwitchd", "vswitchd"), ["--socket", socket, "--state", socket + ".db"]), socket);
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
                foreach (var f in new[] { Socket + ".db", Socket + ".db-wal", Socket + ".db-shm" })
                    try { File.Delete(f); } catch (IOException) { }
            }
        }
    }
}
