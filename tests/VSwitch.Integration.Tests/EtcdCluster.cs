using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace VSwitch.Integration.Tests;

/// <summary>
/// An etcd cluster for a test (Debian's etcd-server 3.4): N members on random loopback ports, each with a private data
/// directory under /tmp; members are stopped and started by PID, and everything is removed on Dispose.
/// </summary>
public sealed class EtcdCluster : IDisposable
{
    private readonly (int Client, int Peer)[] _ports;
    private readonly Process?[] _members;
    private readonly string _dir;
    private readonly string _names;

    public EtcdCluster(int members)
    {
        _dir = Directory.CreateTempSubdirectory("vst-etcd").FullName;
        _ports = new (int, int)[members];
        for (int i = 0; i < members; i++) _ports[i] = (FreePort(), FreePort());
        _names = Names.Random("e");
        _members = new Process?[members];
        for (int i = 0; i < members; i++) StartMember(i);
        WaitHealthy(TimeSpan.FromSeconds(30));
    }

    public static bool Installed => File.Exists("/usr/bin/etcd") && File.Exists("/usr/bin/etcdctl");

    public string[] Endpoints => _ports.Select(p => $"http://127.0.0.1:{p.Client}").ToArray();
    public string EndpointList => string.Join(",", Endpoints);
    public IEnumerable<int> ClientPorts => _ports.Select(p => p.Client);

    private string MemberName(int i) => $"{_names}-{i}";

    public void StartMember(int i)
    {
        if (_members[i] is { HasExited: false }) return;
        string initial = string.Join(",", _ports.Select((p, j) => $"{MemberName(j)}=http://127.0.0.1:{p.Peer}"));
        var psi = new ProcessStartInfo("/usr/bin/etcd") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[]
        {
            "--name", MemberName(i), "--data-dir", Path.Combine(_dir, "m" + i),
            "--listen-client-urls", $"http://127.0.0.1:{_ports[i].Client}", "--advertise-client-urls", $"http://127.0.0.1:{_ports[i].Client}",
            "--listen-peer-urls", $"http://127.0.0.1:{_ports[i].Peer}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{_ports[i].Peer}",
            "--initial-cluster", initial, "--initial-cluster-token", _names, "--log-level", "error",
        }) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        _members[i] = p;
    }

    /// <summary>SIGKILL one member (a crash).</summary>
    public void KillMember(int i)
    {
        if (_members[i] is { } p) { Proc.KillQuietly(p); p.WaitForExit(); }
    }

    public void StopAll() { for (int i = 0; i < _members.Length; i++) KillMember(i); }
    public void StartAll() { for (int i = 0; i < _members.Length; i++) StartMember(i); }

    public void WaitHealthy(TimeSpan timeout) =>
        Wait.Until(() =>
        {
            // etcdctl gives up after its --command-timeout (3 s); the process gets a little more before it counts as hung.
            try { return Etcdctl(TimeSpan.FromSeconds(6), "put", "/vst-health", "ok").ExitCode == 0; }
            catch (TimeoutException) { return false; }
        }, timeout, "etcd to accept writes");

    public ProcessResult Etcdctl(TimeSpan timeout, params string[] args) =>
        Proc.Run(timeout, new Dictionary<string, string> { ["ETCDCTL_API"] = "3" }, "/usr/bin/etcdctl",
            ["--endpoints", string.Join(",", _ports.Where((_, i) => _members[i] is { HasExited: false }).Select(p => $"127.0.0.1:{p.Client}")), "--command-timeout=3s", .. args]);

    public string Check(params string[] args)
    {
        var r = Etcdctl(TimeSpan.FromSeconds(15), args);
        if (r.ExitCode != 0) throw new InvalidOperationException($"etcdctl {string.Join(' ', args)}: {r.Output}");
        return r.StdOut;
    }

    public void Put(string key, string value) => Check("put", key, value);
    public void Delete(string key) => Check("del", key);
    /// <summary>Every key under a prefix with its value.</summary>
    public Dictionary<string, string> GetPrefix(string prefix)
    {
        var lines = Check("get", "--prefix", prefix).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var d = new Dictionary<string, string>();
        for (int i = 0; i + 1 < lines.Length; i += 2) d[lines[i]] = lines[i + 1];
        return d;
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        StopAll();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
