using System.Diagnostics;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace VSwitch.Integration.Tests;

/// <summary>Where the solution's built programs are, in the configuration the tests were built in.</summary>
public static class Repo
{
    public static readonly string Root = FindRoot();
    public static readonly string Configuration = AppContext.BaseDirectory.Contains("/bin/Release/") ? "Release" : "Debug";

    public static string Vswitchd => Path.Combine(Root, "vswitch/VSwitchd/bin", Configuration, "net10.0/vswitchd");
    /// <summary>vsctl's managed build, or the native one in VSWITCH_NATIVE_CLIENTS (<see cref="NativeClients"/>).</summary>
    public static string Vsctl => NativeClients.Dir is not null ? NativeClients.Program("vsctl") : Path.Combine(Root, "tools/vsctl/bin", Configuration, "net10.0/vsctl");

    private static string FindRoot()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d is not null && !File.Exists(Path.Combine(d.FullName, "VSwitch.sln"))) d = d.Parent;
        return d?.FullName ?? throw new InvalidOperationException("cannot find VSwitch.sln above " + AppContext.BaseDirectory);
    }
}

/// <summary>
/// A vswitchd started by a test with its own socket and config file; stopped (SIGTERM, then kill)
/// by its PID on Dispose. Talks to the management API over the Unix socket.
/// </summary>
public sealed class Vswitchd : IDisposable
{
    private readonly Process _process;
    private readonly System.Text.StringBuilder _log = new();
    public string Socket { get; }
    public string Dir { get; }
    public HttpClient Http { get; }

    private Vswitchd(Process p, string socket, string dir)
    {
        _process = p;
        Socket = socket;
        Dir = dir;
        p.OutputDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        Http = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct);
                return new NetworkStream(s, ownsSocket: true);
            },
        }) { BaseAddress = new Uri("http://vswitchd"), Timeout = TimeSpan.FromSeconds(10) };
    }

    public int Pid => _process.Id;
    public string Log { get { lock (_log) return _log.ToString(); } }
    public bool HasExited => _process.HasExited;
    /// <summary>The exit code once <see cref="HasExited"/> (without waiting for its output pipes, which a successor it started may hold).</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>Starts vswitchd with this config (JSON text, or null for none) and waits for its socket.</summary>
    public static Vswitchd Start(string? configJson, params string[] extraArgs) => StartIn(null, configJson, extraArgs);

    /// <summary>Starts vswitchd in <paramref name="dir"/> (reusing its state database: restart tests), or in a new temporary folder.</summary>
    public static Vswitchd StartIn(string? dir, string? configJson, params string[] extraArgs) => StartIn(dir, configJson, null, extraArgs);

    /// <summary>Starts vswitchd inside a network namespace (a "host" of an overlay test).</summary>
    public static Vswitchd StartInNetns(string netns, string configJson) => StartIn(null, configJson, netns);

    /// <summary>Starts vswitchd inside a namespace with options (cluster mode), in <paramref name="dir"/> when given (a restart keeps its state).</summary>
    public static Vswitchd StartInNetns(string netns, string? dir, string? configJson, params string[] extraArgs) => StartIn(dir, configJson, netns, extraArgs);

    private static Vswitchd StartIn(string? dir, string? configJson, string? netns, params string[] extraArgs)
    {
        dir ??= Directory.CreateTempSubdirectory("vst-d").FullName;
        string socket = Path.Combine(dir, "vswitchd.sock");
        var args = new List<string> { "--socket", socket, "--state", Path.Combine(dir, "state.db") };
        if (configJson is not null)
        {
            File.WriteAllText(Path.Combine(dir, "config.json"), configJson);
            args.AddRange(["--config", Path.Combine(dir, "config.json")]);
        }
        args.AddRange(extraArgs);
        var psi = new ProcessStartInfo(netns is null ? Repo.Vswitchd : "ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // `ip netns exec` execs the program, so the PID is vswitchd's own.
        if (netns is not null) foreach (var a in new[] { "netns", "exec", netns, Repo.Vswitchd }) psi.ArgumentList.Add(a);
        foreach (var a in args) psi.ArgumentList.Add(a);
        var d = new Vswitchd(Process.Start(psi)!, socket, dir);
        try
        {
            Wait.Until(() => d.HasExited || d.Answers(), TimeSpan.FromSeconds(30), "vswitchd to answer on " + socket);
            if (d.HasExited) throw new InvalidOperationException($"vswitchd exited {d._process.ExitCode}: {d.Log}");
        }
        catch { d.Dispose(); throw; }
        return d;
    }

    private bool Answers()
    {
        if (!File.Exists(Socket)) return false;
        try { return Http.GetAsync("/v1/show").Result.IsSuccessStatusCode; }
        catch (Exception) { return false; }
    }

    public JsonNode Get(string path)
    {
        var r = Http.GetAsync(path).Result;
        string body = r.Content.ReadAsStringAsync().Result;
        if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"GET {path}: {(int)r.StatusCode} {body}");
        return JsonNode.Parse(body)!;
    }

    public (int Status, JsonNode? Body) Send(HttpMethod method, string path, object? body = null)
    {
        var req = new HttpRequestMessage(method, path);
        if (body is string s) req.Content = new StringContent(s, System.Text.Encoding.UTF8, "application/json");
        else if (body is not null) req.Content = JsonContent.Create(body, options: new JsonSerializerOptions(JsonSerializerDefaults.Web));
        var r = Http.SendAsync(req).Result;
        string text = r.Content.ReadAsStringAsync().Result;
        return ((int)r.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    /// <summary>Drops counted for a reason (e.g. "bad-ihl"), 0 when none.</summary>
    public long Drops(string reason)
    {
        foreach (var d in Get("/v1/stats")["drops"]!.AsArray())
            if ((string?)d!["reason"] == reason) return (long)d["packets"]!;
        return 0;
    }

    public JsonNode Port(string name) => Get("/v1/ports/" + name);

    /// <summary>SIGTERM and wait: a clean stop, which removes the TAPs. Returns the exit code.</summary>
    public int Stop(TimeSpan? timeout = null)
    {
        if (!_process.HasExited)
        {
            Proc.Run("kill", "-TERM", _process.Id.ToString());
            if (!_process.WaitForExit(timeout ?? TimeSpan.FromSeconds(15))) Proc.KillQuietly(_process);
        }
        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: the crash case (restart tests).</summary>
    public void Kill()
    {
        Proc.KillQuietly(_process);
    }

    /// <summary>Keep the folder (and its state database) on Dispose, for a restart.</summary>
    public bool KeepDir { get; set; }

    public void Dispose()
    {
        try { Stop(); } catch (Exception) { Proc.KillQuietly(_process); }
        Http.Dispose();
        _process.Dispose();
        if (!KeepDir) try { Directory.Delete(Dir, true); } catch (IOException) { }
    }
}
