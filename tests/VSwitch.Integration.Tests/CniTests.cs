using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;

namespace VSwitch.Integration.Tests;

/// <summary>The built vswitch-cni run exactly as a runtime runs it: CNI_* variables, the configuration on stdin, JSON on stdout.</summary>
public static class CniPlugin
{
    /// <summary>The managed build's folder, or VSWITCH_NATIVE_CLIENTS's (<see cref="NativeClients"/>): CNI_PATH and podman's plugin folder.</summary>
    public static string Dir => NativeClients.Dir ?? Path.Combine(Repo.Root, "tools/vswitch-cni/bin", Repo.Configuration, "net10.0");
    public static string Path_ => Path.Combine(Dir, "vswitch-cni");

    public sealed record Result(int ExitCode, JsonNode? Json, string StdOut, string StdErr)
    {
        public int? ErrorCode => (int?)Json?["code"];
        public override string ToString() => $"exit {ExitCode}: {StdOut}{StdErr}";
    }

    public static Result Run(string command, string stdin, string? containerId = null, string? netns = null, string? ifname = "eth0",
        string? args = null)
    {
        var psi = new ProcessStartInfo(Path_) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var k in psi.Environment.Keys.Where(k => k.StartsWith("CNI_", StringComparison.Ordinal)).ToList()) psi.Environment.Remove(k);
        psi.Environment["CNI_COMMAND"] = command;
        psi.Environment["CNI_PATH"] = Dir + ":/usr/lib/cni";
        if (containerId is not null) psi.Environment["CNI_CONTAINERID"] = containerId;
        if (netns is not null) psi.Environment["CNI_NETNS"] = netns;
        if (ifname is not null) psi.Environment["CNI_IFNAME"] = ifname;
        if (args is not null) psi.Environment["CNI_ARGS"] = args;
        using var p = Process.Start(psi)!;
        p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            Proc.KillQuietly(p);
            throw new TimeoutException($"vswitch-cni {command} did not finish within 60 s");
        }
        p.WaitForExit();
        JsonNode? json = null;
        try { json = so.Result.Trim().Length > 0 ? JsonNode.Parse(so.Result) : null; } catch (System.Text.Json.JsonException) { }
        return new Result(p.ExitCode, json, so.Result, se.Result);
    }
}

[Collection("netns")]
public class CniTests
{
    private static string NetConf(string socket, string version = "1.0.0", string name = "vsnet", string network = "blue") =>
        new JsonObject { ["cniVersion"] = version, ["name"] = name, ["type"] = "vswitch-cni", ["network"] = network, ["socket"] = socket }.ToJsonString();

    private static string WithPrev(string conf, JsonNode prev)
    {
        var o = JsonNode.Parse(conf)!.AsObject();
        o["prevResult"] = prev.DeepClone();
        return o.ToJsonString();
    }

    private static string Config() =>
        """{"networks":[{"name":"blue","subnet":"10.13.0.0/24","gateway":"10.13.0.1"}]}""";

    [RootFact]
    public void Add_gives_a_1_0_0_result_and_a_working_interface_check_passes_and_del_is_idempotent()
    {
        using var a = new TestNetns("vscn-");
        using var b = new TestNetns("vscn-");
        using var d = Vswitchd.Start(Config());
        string conf = NetConf(d.Socket);
        string idA = "ctr" + Names.Random(""), idB = "ctr" + Names.Random("");

        var ra = CniPlugin.Run("ADD", conf, idA, a.Path, args: "IgnoreUnknown=1;K8S_POD_NAME=x");
        Assert.True(ra.ExitCode == 0, ra.ToString());
        var rb = CniPlugin.Run("ADD", conf, idB, b.Path);
        Assert.True(rb.ExitCode == 0, rb.ToString());

        // A valid 1.0.0 result.
        var res = ra.Json!;
        Assert.Equal("1.0.0", (string)res["cniVersion"]!);
        var iface = res["interfaces"]!.AsArray().Single()!;
        Assert.Equal("eth0", (string)iface["name"]!);
        Assert.Equal(a.Path, (string)iface["sandbox"]!);
        Assert.Matches("^[0-9a-f]{2}(:[0-9a-f]{2}){5}$", ((string)iface["mac"]!).ToLowerInvariant());
        var ip = res["ips"]!.AsArray().Single()!;
        string addrA = (string)ip["address"]!;
        Assert.Matches(@"^10\.13\.0\.\d+/24$", addrA);
        Assert.Equal("10.13.0.1", (string)ip["gateway"]!);
        Assert.Equal(0, (int)ip["interface"]!);
        var route = res["routes"]!.AsArray().Single()!;
        Assert.Equal("0.0.0.0/0", (string)route["dst"]!);
        Assert.Equal("10.13.0.1", (string)route["gw"]!);
        Assert.Null(res["dns"]);
        string ipB = ((string)rb.Json!["ips"]![0]!["address"]!).Split('/')[0];
        Assert.NotEqual(addrA.Split('/')[0], ipB);

        // A working interface: the two ADDed namespaces ping each other through the switch.
        Assert.Contains($"inet {addrA}", a.Exec("ip", "-o", "addr", "show", "dev", "eth0"));
        var ping = a.TryExec(TimeSpan.FromSeconds(20), "ping", "-c", "2", "-i", "0.2", "-W", "2", ipB);
        Assert.True(ping.ExitCode == 0, ping.Output);

        // CHECK with the previous result passes; against a wrong previous result it fails.
        var check = CniPlugin.Run("CHECK", WithPrev(conf, res), idA, a.Path);
        Assert.True(check.ExitCode == 0, check.ToString());
        var wrong = res.DeepClone();
        wrong["ips"]![0]!["address"] = "10.13.0.250/24";
        var bad = CniPlugin.Run("CHECK", WithPrev(conf, wrong), idA, a.Path);
        Assert.Equal(1, bad.ExitCode);

        // DEL twice succeeds; the address is released and the interface gone.
        var del1 = CniPlugin.Run("DEL", WithPrev(conf, res), idA, a.Path);
        Assert.True(del1.ExitCode == 0, del1.ToString());
        Assert.Equal("", del1.StdOut.Trim());
        Assert.False(a.HasLink("eth0"));
        var del2 = CniPlugin.Run("DEL", conf, idA, a.Path);
        Assert.True(del2.ExitCode == 0, del2.ToString());
        Assert.DoesNotContain(d.Get("/v1/networks/blue")["allocations"]!.AsArray(), x => (string?)x!["address"] == addrA.Split('/')[0]);

        // DEL after the namespace is gone (no CNI_NETNS, as a runtime may send) succeeds too.
        b.Dispose();
        var del3 = CniPlugin.Run("DEL", conf, idB, netns: null);
        Assert.True(del3.ExitCode == 0, del3.ToString());
        Assert.Empty(d.Get("/v1/attachments").AsArray());
    }

    [RootFact]
    public void Version_1_1_0_adds_mtu_status_answers_and_gc_removes_stale_attachments()
    {
        using var a = new TestNetns("vscn-");
        using var b = new TestNetns("vscn-");
        using var d = Vswitchd.Start(Config());
        var o = JsonNode.Parse(NetConf(d.Socket, "1.1.0"))!.AsObject();
        o["mtu"] = 1400;
        o["dns"] = new JsonObject { ["nameservers"] = new JsonArray("10.13.0.53") };
        string conf = o.ToJsonString();

        var ra = CniPlugin.Run("ADD", conf, "ctra", a.Path);
        Assert.True(ra.ExitCode == 0, ra.ToString());
        Assert.Equal("1.1.0", (string)ra.Json!["cniVersion"]!);
        Assert.Equal(1400, (int)ra.Json["interfaces"]![0]!["mtu"]!);
        Assert.Equal("10.13.0.53", (string)ra.Json["dns"]!["nameservers"]![0]!);
        Assert.Contains("mtu 1400", a.Exec("ip", "-o", "link", "show", "dev", "eth0"));
        var rb = CniPlugin.Run("ADD", conf, "ctrb", b.Path, args: "IP=10.13.0.77");
        Assert.True(rb.ExitCode == 0, rb.ToString());
        Assert.Equal("10.13.0.77/24", (string)rb.Json!["ips"]![0]!["address"]!);

        var status = CniPlugin.Run("STATUS", conf, ifname: null);
        Assert.True(status.ExitCode == 0, status.ToString());
        var statusNoNet = CniPlugin.Run("STATUS", NetConf(d.Socket, "1.1.0", network: "red"), ifname: null);
        Assert.Equal(50, statusNoNet.ErrorCode);

        // GC keeps what the runtime lists as valid and removes the rest.
        var gcConf = JsonNode.Parse(conf)!.AsObject();
        gcConf["cni.dev/valid-attachments"] = new JsonArray(new JsonObject { ["containerID"] = "ctra", ["ifname"] = "eth0" });
        var gc = CniPlugin.Run("GC", gcConf.ToJsonString(), ifname: null);
        Assert.True(gc.ExitCode == 0, gc.ToString());
        var left = d.Get("/v1/attachments").AsArray();
        Assert.Equal("ctra", (string)left.Single()!["containerId"]!);
        Assert.False(b.HasLink("eth0"));
    }

    [RootFact]
    public void Errors_come_back_as_cni_error_json_with_the_spec_codes()
    {
        using var a = new TestNetns("vscn-");
        var d = Vswitchd.Start(Config());
        try
        {
            string conf = NetConf(d.Socket);

            var noNetns = CniPlugin.Run("ADD", conf, "ctr1", netns: null);
            Assert.Equal(1, noNetns.ExitCode);
            Assert.Equal(4, noNetns.ErrorCode);
            Assert.Contains("CNI_NETNS", (string)noNetns.Json!["msg"]!);
            Assert.Equal("1.0.0", (string)noNetns.Json["cniVersion"]!);

            Assert.Equal(4, CniPlugin.Run("ADD", conf, containerId: null, a.Path).ErrorCode);
            Assert.Equal(4, CniPlugin.Run("FROB", conf, "ctr1", a.Path).ErrorCode);
            Assert.Equal(7, CniPlugin.Run("ADD", "{not json", "ctr1", a.Path).ErrorCode);
            Assert.Equal(7, CniPlugin.Run("ADD", """{"cniVersion":"1.0.0","name":"vsnet"}""", "ctr1", a.Path).ErrorCode);
            Assert.Equal(7, CniPlugin.Run("ADD", """{"cniVersion":"1.0.0","name":"vsnet","type":"bridge"}""", "ctr1", a.Path).ErrorCode);
            Assert.Equal(1, CniPlugin.Run("ADD", NetConf(d.Socket, version: "0.2.0"), "ctr1", a.Path).ErrorCode);
            Assert.Equal(2, CniPlugin.Run("ADD", conf, "ctr1", a.Path, args: "FOO=bar").ErrorCode);
            Assert.Equal(7, CniPlugin.Run("ADD", NetConf(d.Socket, network: "red"), "ctr1", a.Path).ErrorCode);
            Assert.False(a.HasLink("eth0"));

            var version = CniPlugin.Run("VERSION", """{"cniVersion":"1.0.0"}""");
            Assert.Equal(0, version.ExitCode);
            var supported = version.Json!["supportedVersions"]!.AsArray().Select(v => (string)v!).ToArray();
            Assert.Contains("1.0.0", supported);
            Assert.Contains("1.1.0", supported);

            // The daemon stopped: "try again later".
            d.Stop();
            var down = CniPlugin.Run("ADD", conf, "ctr1", a.Path);
            Assert.Equal(1, down.ExitCode);
            Assert.Equal(11, down.ErrorCode);
            Assert.Equal(50, CniPlugin.Run("STATUS", conf, ifname: null).ErrorCode);
        }
        finally { d.Dispose(); }
    }
}
