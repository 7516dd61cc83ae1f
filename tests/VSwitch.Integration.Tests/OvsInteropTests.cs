using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace VSwitch.Integration.Tests;

/// <summary>
/// A fact that needs root and Open vSwitch's userspace programs (Debian's openvswitch-switch).
/// Decided when tests are discovered: xunit 2 cannot skip from inside a running test, so a test
/// that starts and then finds Open vSwitch broken fails instead of hiding it.
/// </summary>
public sealed class OvsFactAttribute : FactAttribute
{
    public const string Schema = "/usr/share/openvswitch/vswitch.ovsschema";
    private static readonly string[] Programs = ["ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl"];

    public OvsFactAttribute()
    {
        if (!RootFactAttribute.IsRoot) { Skip = "needs root (creates network namespaces and runs Open vSwitch in one)"; return; }
        var missing = Programs.Where(p => Find(p) is null).ToList();
        if (!File.Exists(Schema)) missing.Add(Schema);
        if (missing.Count > 0)
            Skip = "needs Open vSwitch userspace (Debian package openvswitch-switch): missing " + string.Join(", ", missing);
    }

    /// <summary>The program's full path on PATH or in the sbin folders (root's PATH may lack them), or null.</summary>
    public static string? Find(string program)
    {
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin"]);
        return dirs.Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);
    }
}

/// <summary>
/// Open vSwitch 3.1 with the userspace (netdev) datapath, run inside one namespace with a private
/// run/db/log folder. ovsdb-server and ovs-vswitchd detach; their PIDs are read from their
/// pidfiles right after start, and Dispose stops exactly those PIDs and deletes the folder.
/// </summary>
public sealed class OvsUserspace : IDisposable
{
    private readonly List<int> _pids = [];
    public string Dir { get; }
    public TestNetns Netns { get; }

    public OvsUserspace(TestNetns netns)
    {
        Netns = netns;
        // Short path: ovs-vswitchd puts a Unix socket per bridge (BRIDGE.mgmt) in its run folder.
        Dir = Directory.CreateTempSubdirectory("vst-ovs").FullName;
        try
        {
            Tool("ovsdb-tool", "create", Path.Combine(Dir, "conf.db"), OvsFactAttribute.Schema);
            InNetns("ovsdb-server", Path.Combine(Dir, "conf.db"), "--remote=punix:" + DbSocket, "--unixctl=" + Path.Combine(Dir, "ovsdb-server.ctl"),
                "--pidfile=" + Path.Combine(Dir, "ovsdb-server.pid"), "--log-file=" + Path.Combine(Dir, "ovsdb-server.log"), "--detach", "--no-chdir");
            _pids.Add(ReadPid("ovsdb-server.pid", "ovsdb-server"));
            Vsctl("--no-wait", "init");
            InNetns("ovs-vswitchd", "unix:" + DbSocket, "--unixctl=" + VswitchdCtl,
                "--pidfile=" + Path.Combine(Dir, "ovs-vswitchd.pid"), "--log-file=" + VswitchdLog, "--detach", "--no-chdir");
            _pids.Add(ReadPid("ovs-vswitchd.pid", "ovs-vswitchd"));
        }
        catch { Dispose(); throw; }
    }

    public string DbSocket => Path.Combine(Dir, "db.sock");
    public string VswitchdCtl => Path.Combine(Dir, "ovs-vswitchd.ctl");
    public string VswitchdLog => Path.Combine(Dir, "ovs-vswitchd.log");

    private string[] Env => ["env", "OVS_RUNDIR=" + Dir, "OVS_DBDIR=" + Dir, "OVS_LOGDIR=" + Dir, "OVS_SYSCONFDIR=" + Dir];

    private static string Checked(ProcessResult r, string what) =>
        r.ExitCode == 0 ? r.StdOut : throw new InvalidOperationException($"'{what}' exited {r.ExitCode}: {r.Output}");

    /// <summary>A tool run in the root namespace (it only talks to the daemons' Unix sockets).</summary>
    private string Tool(string program, params string[] args) =>
        Checked(Proc.Run(TimeSpan.FromSeconds(20), Env[0], [.. Env[1..], OvsFactAttribute.Find(program) ?? program, .. args]), program + " " + string.Join(' ', args));

    /// <summary>A daemon started inside the namespace; with --detach it returns once the daemon is ready.</summary>
    private void InNetns(string program, params string[] args) =>
        Checked(Proc.Run(TimeSpan.FromSeconds(20), "ip", ["netns", "exec", Netns.Name, .. Env, OvsFactAttribute.Find(program) ?? program, .. args]), program);

    private int ReadPid(string file, string expect)
    {
        int pid = int.Parse(File.ReadAllText(Path.Combine(Dir, file)).Trim());
        if (!IsOurs(pid, expect)) throw new InvalidOperationException($"{file} names PID {pid}, which is not {expect}");
        return pid;
    }

    /// <summary>The PID still runs the program it was recorded for (guards against PID reuse).</summary>
    private static bool IsOurs(int pid, string program)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            if (stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z')) return false; // exited, not yet reaped
            return File.ReadAllText($"/proc/{pid}/cmdline").Split('\0')[0].EndsWith(program);
        }
        catch (IOException) { return false; }
    }

    public string Vsctl(params string[] args) => Tool("ovs-vsctl", ["--db=unix:" + DbSocket, "--timeout=15", .. args]);

    public string Appctl(params string[] args) => Tool("ovs-appctl", ["-t", VswitchdCtl, .. args]);

    /// <summary>Everything useful for a failure message: flows, neighbours, routes, drop counters, the log's warnings.</summary>
    public string Diagnostics()
    {
        var sb = new System.Text.StringBuilder();
        foreach (var cmd in new[] { new[] { "dpctl/dump-flows" }, ["tnl/neigh/show"], ["ovs/route/show"], ["tnl/ports/show"], ["coverage/show"] })
        {
            try { sb.AppendLine("## ovs-appctl " + cmd[0]).AppendLine(Appctl(cmd)); }
            catch (Exception e) { sb.AppendLine(e.Message); }
        }
        try { sb.AppendLine("## ovs-vswitchd.log (WARN/ERR)").AppendLine(string.Join('\n', File.ReadLines(VswitchdLog).Where(l => l.Contains("|WARN|") || l.Contains("|ERR|")).TakeLast(30))); }
        catch (IOException e) { sb.AppendLine(e.Message); }
        return sb.ToString();
    }

    public void Dispose()
    {
        // Stop ovs-vswitchd first, then ovsdb-server: SIGTERM by PID, then SIGKILL if still there.
        for (int i = _pids.Count - 1; i >= 0; i--)
        {
            int pid = _pids[i];
            string program = i == 0 ? "ovsdb-server" : "ovs-vswitchd";
            if (!IsOurs(pid, program)) continue;
            Proc.Run("kill", "-TERM", pid.ToString());
            var until = DateTime.UtcNow.AddSeconds(5);
            while (IsOurs(pid, program) && DateTime.UtcNow < until) Thread.Sleep(50);
            if (IsOurs(pid, program)) Proc.Run("kill", "-KILL", pid.ToString());
        }
        try { Directory.Delete(Dir, true); } catch (IOException) { }
    }
}

/// <summary>
/// VXLAN interop with Open vSwitch's userspace datapath: host A runs vswitchd, host B runs
/// ovs-vswitchd (datapath_type=netdev) with a vxlan port, both in namespaces on one underlay.
/// </summary>
[Collection("netns")]
public class OvsInteropTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly ITestOutputHelper _out;
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();

    public OvsInteropTests(ITestOutputHelper output) => _out = output;

    private void Step(string what) => _out.WriteLine($"{_clock.Elapsed.TotalSeconds,6:F2} s  {what}");

    [OvsFact]
    public void Vxlan_with_open_vswitch_userspace_datapath_pings_both_ways()
    {
        const string subnet = "10.206.0", hostA = subnet + ".1", hostB = subnet + ".2";
        using var u = new Underlay(subnet);
        var ha = u.AddHost(1);
        var hb = u.AddHost(2);
        var a1 = u.AddContainer();
        var b1 = u.AddContainer();
        string s = Names.Random("");

        // Host A: vswitchd, network "ov" on VNI 42, host B as its only VTEP, one container by TAP.
        // A's underlay veth keeps its default offloads. OVS's netdev datapath reads that veth
        // without virtio headers, so vswitchd runs with "udpGso": false: no UDP GSO trains (OVS would
        // read one long datagram) and a zero outer UDP checksum (SO_NO_CHECK). With the default
        // (a checksum left to veth offload, CHECKSUM_PARTIAL) OVS reads it as wrong and drops every
        // packet in tnl_pop: this test then times out on the first ping (seen).
        string config = new JsonObject
        {
            ["overlay"] = new JsonObject { ["local"] = hostA, ["udpGso"] = false },
            ["networks"] = new JsonArray(new JsonObject { ["name"] = "ov", ["vni"] = 42, ["vteps"] = new JsonArray(hostB) }),
            ["ports"] = new JsonArray(new JsonObject { ["name"] = "oa" + s, ["network"] = "ov", ["netns"] = a1.Name, ["addresses"] = new JsonArray("10.42.0.11/24") }),
        }.ToJsonString();
        Step("underlay and namespaces ready");
        using var da = Vswitchd.StartInNetns(ha.Name, config);
        Step("vswitchd answers on host A");
        Assert.Contains("mtu 1450", a1.Exec("ip", "link", "show", "oa" + s));

        // Host B: Open vSwitch userspace tunnelling ("native tunnelling"). The netdev datapath sends
        // tunnel packets out of a datapath port, chosen by OVS's own route table (learnt from the
        // kernel's) and neighbour cache (ARP snooped on its bridges): the underlay address moves
        // from u0 to the internal port of a bridge br-phy that owns u0.
        using var ovs = new OvsUserspace(hb);
        Step("ovsdb-server and ovs-vswitchd running on host B");
        ovs.Vsctl("add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev");
        ovs.Vsctl("add-port", "br-phy", "u0");
        hb.Exec("ip", "addr", "flush", "dev", "u0");
        hb.Exec("ip", "addr", "add", hostB + "/24", "dev", "br-phy");
        hb.Exec("ip", "link", "set", "br-phy", "up");
        ovs.Vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev");
        ovs.Vsctl("add-port", "br0", "vx0", "--", "set", "interface", "vx0", "type=vxlan",
            "options:remote_ip=" + hostA, "options:key=42", "options:local_ip=" + hostB);
        Proc.Check("ip", "link", "add", "cb0", "netns", hb.Name, "type", "veth", "peer", "name", "eth0", "netns", b1.Name);
        hb.Exec("ip", "link", "set", "cb0", "up");
        ovs.Vsctl("add-port", "br0", "cb0");
        b1.Exec("ip", "link", "set", "eth0", "mtu", "1450");
        b1.Exec("ip", "addr", "add", "10.42.0.21/24", "dev", "eth0");
        b1.Exec("ip", "link", "set", "eth0", "up");

        Step("OVS bridges br-phy and br0 configured");
        Wait.Until(() => ovs.Appctl("ovs/route/show").Contains($"{subnet}.0/24 dev br-phy"), Timeout, "OVS to learn the underlay route on br-phy");
        Step("OVS has the underlay route on br-phy");

        // The first packets may go while OVS still resolves host A's MAC (it sends an ARP request and
        // drops the packet that needed it): wait for one ping through, then require no loss.
        string PingOnce(TestNetns from, string to) => from.TryExec(Timeout, "ping", "-c", "1", "-W", "1", to).Output;
        try
        {
            Wait.Until(() => PingOnce(a1, "10.42.0.21").Contains(" 0% packet loss"), Timeout, "a first ping from A's container to B's through OVS");
        }
        catch (TimeoutException e)
        {
            Assert.Fail($"{e.Message}\n{DiagnosticsOf(da, ovs)}");
        }
        Step("first ping through");
        foreach (var (from, to) in new[] { (a1, "10.42.0.21"), (b1, "10.42.0.11") })
        {
            var r = from.TryExec(Timeout, "ping", "-c", "3", "-i", "0.2", "-W", "2", to);
            Assert.True(r.ExitCode == 0 && r.StdOut.Contains(" 0% packet loss"), $"ping {to}: {r.Output}\n{DiagnosticsOf(da, ovs)}");
        }
        var big = a1.TryExec(Timeout, "ping", "-c", "2", "-i", "0.2", "-W", "2", "-M", "do", "-s", "1422", "10.42.0.21"); // a 1450-byte inner packet
        Assert.True(big.ExitCode == 0, $"full-size ping: {big.Output}\n{DiagnosticsOf(da, ovs)}");

        // Both ends saw real VXLAN: OVS's datapath decapsulated (tnl_pop) and encapsulated with VNI 42
        // towards host A; vswitchd's FDB puts B's container behind B's VTEP, and counts both ways.
        string flows = ovs.Appctl("dpctl/dump-flows");
        Assert.Contains("tnl_pop(", flows);
        Assert.Matches($@"tnl_push\(tnl_port\(\d+\),header\(size=50,type=4,.*ipv4\(src={hostB.Replace(".", @"\.")},dst={hostA.Replace(".", @"\.")},proto=17.*vxlan\(flags=0x8000000,vni=0x2a\)\)", flows);
        Assert.Contains(hostA, ovs.Appctl("tnl/neigh/show"));
        string macB = (string)JsonNode.Parse(b1.Exec("ip", "-j", "link", "show", "dev", "eth0"))!.AsArray()[0]!["address"]!;
        Assert.Contains(da.Get("/v1/fdb?network=ov").AsArray(), e => (string)e!["mac"]! == macB && (string?)e["vtep"] == hostB && (string)e["port"]! == "vxlan0");
        Assert.Contains(da.Get("/v1/overlay")["vteps"]!.AsArray(), v => (string)v!["address"]! == hostB && (long)v["rxPackets"]! >= 8 && (long)v["txPackets"]! >= 8);
        Assert.False(da.HasExited);
        Step("pings both ways and at full size, flows and counters checked");
    }

    private static string DiagnosticsOf(Vswitchd da, OvsUserspace ovs)
    {
        string vs;
        try { vs = da.Get("/v1/overlay").ToJsonString() + "\n" + da.Get("/v1/stats")["drops"]!.ToJsonString(); }
        catch (Exception e) { vs = e.Message; }
        return $"## vswitchd /v1/overlay and drops\n{vs}\n{ovs.Diagnostics()}";
    }
}
