using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace VSwitch.Integration.Tests;

/// <summary>
/// Hitless restart (`vsctl restart`): the running vswitchd hands its TAP and AF_PACKET descriptors, the API socket and
/// the state lock to a new process. Two containers attached by TAP and a third on a veth (AF_PACKET) ping each other at
/// 100 per second and stream a hashed TCP transfer across the restart: nothing may be lost. A restart that fails (no
/// such binary, a successor that exits at once) leaves the old daemon serving.
/// </summary>
[Collection("netns")]
public sealed partial class RestartTests(ITestOutputHelper output)
{
    /// <summary>With 2 datapath threads every port has 2 receive queues: every queue's fd (and ring cursor) goes across.</summary>
    private static string? ThreadsConfig(int threads) => threads == 1 ? null : $"{{\"datapath\": {{\"threads\": {threads}}}}}";

    [RootTheory]
    [InlineData(1)]
    [InlineData(2)]
    public void Restart_under_ping_and_a_tcp_stream_loses_nothing_and_the_successor_holds_the_ports_and_the_lock(int threads)
    {
        using var a = new TestNetns("vrs-");
        using var b = new TestNetns("vrs-");
        using var c = new TestNetns("vrs-");
        using var veth = new TestVeth(c, "10.78.0.4/24");
        using var d = Vswitchd.Start(ThreadsConfig(threads));
        int? successor = null;
        try
        {
            Ok(d, HttpMethod.Post, "/v1/networks", new { name = "blue", subnet = "10.78.0.0/24" });
            Ok(d, HttpMethod.Post, "/v1/attachments", new { network = "blue", netns = a.Name, ip = "10.78.0.2" });
            Ok(d, HttpMethod.Post, "/v1/attachments", new { network = "blue", netns = b.Name, ip = "10.78.0.3" });
            Ok(d, HttpMethod.Post, "/v1/ports", new { name = veth.Outer, type = "afpacket", network = "blue", device = veth.Outer });
            // A VXLAN endpoint too: its UDP sockets are handed over, not bound again (the port stays taken meanwhile).
            int vxlanPort = 20000 + Random.Shared.Next(20000);
            Ok(d, HttpMethod.Put, "/v1/overlay", new { local = "127.0.0.1", port = vxlanPort });
            a.Exec("ping", "-c", "1", "-W", "2", "10.78.0.3");
            a.Exec("ping", "-c", "1", "-W", "2", "10.78.0.4");

            // 100 pings a second to the TAP neighbour and to the AF_PACKET one, and a TCP stream, all across the restart.
            var pingTap = a.Start("ping", "-i", "0.01", "-c", "500", "10.78.0.3");
            var pingAf = c.Start("ping", "-i", "0.01", "-c", "500", "10.78.0.2");
            using var stream = SlowHashedTransfer.Start(a, b, "10.78.0.3", output);
            try
            {
                Thread.Sleep(TimeSpan.FromSeconds(1)); // some traffic before: the MAC table has entries to hand over
                var r = VsctlHarness.Vsctl("--socket", d.Socket, "--json", "restart");
                Assert.True(r.ExitCode == 0, r.ToString());
                var view = JsonNode.Parse(r.Stdout)!;
                successor = (int)view["newPid"]!;
                output.WriteLine($"restart: {r.Stdout}");
                Assert.Equal(d.Pid, (int)view["oldPid"]!);
                Assert.NotEqual(d.Pid, successor);
                Assert.Equal(4, (int)view["ports"]!); // two TAPs, one AF_PACKET socket, the VXLAN endpoint
                // The old process lets go and exits 0.
                Wait.Until(() => d.HasExited, TimeSpan.FromSeconds(20), "the old vswitchd to exit");
                Assert.Equal(0, d.ExitCode);
                Assert.True(Alive(successor.Value), "the successor is not running");

                Assert.True(pingTap.WaitForExit(30_000) && pingAf.WaitForExit(30_000), "ping did not finish");
                AssertNoLoss("TAP to TAP", pingTap.StandardOutput.ReadToEnd());
                AssertNoLoss("AF_PACKET to TAP", pingAf.StandardOutput.ReadToEnd());
                stream.AssertExact();
            }
            finally
            {
                Proc.KillQuietly(pingTap);
                Proc.KillQuietly(pingAf);
            }

            // The successor answers on the same socket, with everything the old one had; the MAC table came along.
            var show = d.Get("/v1/show");
            Assert.True(show["ports"]!.AsArray().Count >= 3, show.ToJsonString());
            Assert.Equal("127.0.0.1", (string?)d.Get("/v1/overlay")["local"]);
            // The successor writes to the same output as its predecessor, which the harness reads.
            Assert.Contains("VXLAN endpoint: took over the predecessor's sockets", d.Log);
            Assert.Contains($"port {veth.Outer}: took over the predecessor's afpacket descriptor", d.Log);
            Assert.True((int)show["macEntries"]! >= 3, show.ToJsonString());
            Assert.Contains("--takeover", File.ReadAllText($"/proc/{successor}/cmdline"));
            // The state lock travelled with its descriptor: a third daemon on the same state still refuses.
            var third = Proc.Run(TimeSpan.FromSeconds(30), Repo.Vswitchd, "--socket", Path.Combine(d.Dir, "third.sock"), "--state", Path.Combine(d.Dir, "state.db"));
            Assert.True(third.ExitCode == 1, third.Output);
            Assert.Contains("another vswitchd is using the state database", third.StdErr);
            // And traffic still passes after the hand-over, both ways.
            a.Exec("ping", "-c", "3", "-i", "0.2", "-W", "2", "10.78.0.4");
            // Every port kept its queues, each polled by a thread of the successor.
            var queues = d.Get("/v1/threads").AsArray().SelectMany(t => t!["rxQueues"]!.AsArray()).ToList();
            foreach (var port in d.Get("/v1/ports").AsArray())
                Assert.Equal(threads, queues.Count(q => (string)q!["port"]! == (string)port!["name"]!));
        }
        finally
        {
            if (successor is int pid) StopByPid(pid);
        }
    }

    [RootFact]
    public void The_successor_runs_with_the_predecessors_options()
    {
        // The config file's limits and the command line's audit bound: a restart must change neither.
        string config = new JsonObject { ["limits"] = new JsonObject { ["rules"] = 7 } }.ToJsonString();
        using var d = Vswitchd.Start(config, "--audit-keep", "123");
        int? successor = null;
        try
        {
            var r = VsctlHarness.Vsctl("--socket", d.Socket, "--json", "restart");
            Assert.True(r.ExitCode == 0, r.ToString());
            successor = (int)JsonNode.Parse(r.Stdout)!["newPid"]!;
            Wait.Until(() => d.HasExited, TimeSpan.FromSeconds(20), "the old vswitchd to exit");
            var limits = d.Get("/v1/stats")["limits"]!.AsArray();
            Assert.Equal(7, (long)limits.Single(l => (string)l!["resource"]! == "rules")!["limit"]!);
            Assert.Equal(123, (long)limits.Single(l => (string)l!["resource"]! == "audit-log")!["limit"]!);
            string cmdline = File.ReadAllText($"/proc/{successor}/cmdline").Replace('\0', ' ');
            Assert.Contains("--config ", cmdline);
            Assert.Contains("--audit-keep 123", cmdline);
        }
        finally
        {
            if (successor is int pid) StopByPid(pid);
        }
    }

    [RootFact]
    public void A_failed_restart_leaves_the_old_daemon_forwarding_and_serving()
    {
        using var a = new TestNetns("vrf-");
        using var b = new TestNetns("vrf-");
        using var d = Vswitchd.Start(null);
        Ok(d, HttpMethod.Post, "/v1/networks", new { name = "blue", subnet = "10.79.0.0/24" });
        Ok(d, HttpMethod.Post, "/v1/attachments", new { network = "blue", netns = a.Name, ip = "10.79.0.2" });
        Ok(d, HttpMethod.Post, "/v1/attachments", new { network = "blue", netns = b.Name, ip = "10.79.0.3" });
        a.Exec("ping", "-c", "1", "-W", "2", "10.79.0.3");
        string quitter = Path.Combine(d.Dir, "quits-at-once");
        File.WriteAllText(quitter, "#!/bin/sh\necho 'this vswitchd refuses' >&2\nexit 3\n");
        File.SetUnixFileMode(quitter, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var ping = a.Start("ping", "-i", "0.01", "-c", "600", "10.79.0.3");
        try
        {
            // No such binary: refused before anything starts (exit 6, invalid).
            var missing = VsctlHarness.Vsctl("--socket", d.Socket, "restart", "--binary", "/nonexistent/vswitchd");
            Assert.True(missing.ExitCode == 6, missing.ToString());
            Assert.Contains("'/nonexistent/vswitchd' does not exist", missing.Stderr);
            // A successor that exits at once: the answer says so, and this daemon runs on (exit 1, the daemon's failure).
            var quits = VsctlHarness.Vsctl("--socket", d.Socket, "--json", "restart", "--binary", quitter);
            Assert.True(quits.ExitCode == 1, quits.ToString());
            var error = JsonNode.Parse(quits.Stdout)!;
            Assert.Equal(500, (int)error["status"]!);
            Assert.Contains("exited with code 3 before it connected", (string)error["error"]!);
            Assert.Contains($"this vswitchd (pid {d.Pid}) keeps running", (string)error["error"]!);

            // The worst case: the successor fails after this daemon stopped its datapath; it must resume it.
            string late = Path.Combine(d.Dir, "fails-late");
            File.WriteAllText(late, $"#!/bin/sh\nVSWITCHD_TEST_TAKEOVER_FAULT=after-learned exec {Repo.Vswitchd} \"$@\"\n");
            File.SetUnixFileMode(late, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var fails = VsctlHarness.Vsctl("--socket", d.Socket, "--json", "restart", "--binary", late);
            Assert.True(fails.ExitCode == 1, fails.ToString());
            Assert.Contains("failing on purpose after the predecessor stopped", (string)JsonNode.Parse(fails.Stdout)!["error"]!);

            Assert.True(ping.WaitForExit(30_000), "ping did not finish");
            AssertNoLoss("across three failed restarts", ping.StandardOutput.ReadToEnd());
        }
        finally { Proc.KillQuietly(ping); }
        Assert.False(d.HasExited, "the old daemon exited: " + d.Log);
        // It still serves writes (the write gate opened again) and still holds its lock.
        Ok(d, HttpMethod.Post, "/v1/rules", new { rule = "priority=10,icmp,actions=normal" });
        var third = Proc.Run(TimeSpan.FromSeconds(30), Repo.Vswitchd, "--socket", Path.Combine(d.Dir, "third.sock"), "--state", Path.Combine(d.Dir, "state.db"));
        Assert.True(third.ExitCode == 1, third.Output);
        a.Exec("ping", "-c", "2", "-i", "0.2", "-W", "2", "10.79.0.3");
        Assert.False(File.Exists(Path.Combine(d.Dir, "state.db.handover")), "the hand-over socket was left behind");
    }

    [RootTheory]
    [InlineData(1)]
    [InlineData(2)]
    public void After_kill_9_containers_keep_their_interfaces_and_the_restarted_daemon_reattaches_them(int threads)
    {
        using var a = new TestNetns("vrk-");
        using var b = new TestNetns("vrk-");
        using var c = new TestNetns("vrk-");
        string tapc = Names.Random("vrk");
        string? dir = null;
        try
        {
            using (var d = Vswitchd.Start(ThreadsConfig(threads)))
            {
                d.KeepDir = true;
                dir = d.Dir;
                Ok(d, HttpMethod.Post, "/v1/networks", new { name = "blue", subnet = "10.80.0.0/24" });
                Ok(d, HttpMethod.Post, "/v1/attachments", new { network = "blue", netns = a.Name, ip = "10.80.0.2" });
                Ok(d, HttpMethod.Post, "/v1/attachments", new { network = "blue", netns = b.Name, ip = "10.80.0.3" });
                var add = VsctlHarness.Vsctl("--socket", d.Socket, "port", "add", tapc, "--type", "tap", "--network", "blue", "--netns", c.Name, "--ip", "10.80.0.4/24", "--persistent");
                Assert.True(add.ExitCode == 0, add.ToString());
                a.Exec("ping", "-c", "1", "-W", "2", "10.80.0.3");
                a.Exec("ping", "-c", "1", "-W", "2", "10.80.0.4");
                d.Kill();
                Assert.True(d.HasExited);
            }
            // No switch runs: the containers still have their interfaces, with their addresses.
            Assert.Contains("inet 10.80.0.2/24", a.Exec("ip", "-o", "addr", "show", "dev", "eth0"));
            Assert.Contains("inet 10.80.0.3/24", b.Exec("ip", "-o", "addr", "show", "dev", "eth0"));
            Assert.Contains("inet 10.80.0.4/24", c.Exec("ip", "-o", "addr", "show", "dev", tapc));

            using var d2 = Vswitchd.StartIn(dir, ThreadsConfig(threads));
            Wait.Until(() => a.TryExec(TimeSpan.FromSeconds(5), "ping", "-c", "1", "-W", "1", "10.80.0.3").ExitCode == 0
                && a.TryExec(TimeSpan.FromSeconds(5), "ping", "-c", "1", "-W", "1", "10.80.0.4").ExitCode == 0,
                TimeSpan.FromSeconds(20), "traffic through the restarted daemon");
            Assert.Contains($"port {tapc}: re-attached its persistent TAP {tapc} in namespace {c.Name}", d2.Log);
            Assert.Contains($"re-attached its persistent TAP eth0 in namespace {a.Name}, as it was ({threads} receive queue(s))", d2.Log);
            Assert.Equal(3, d2.Get("/v1/ports").AsArray().Count);

            // Removing the port turns persistence off: the device goes with it.
            var del = VsctlHarness.Vsctl("--socket", d2.Socket, "port", "del", tapc);
            Assert.True(del.ExitCode == 0, del.ToString());
            Assert.False(c.HasLink(tapc), "the persistent TAP outlived its port");
            // A clean stop removes the attachments' TAPs, as before.
            Assert.Equal(0, d2.Stop());
            Assert.False(a.HasLink("eth0"), "a clean stop left the attachment's TAP");
        }
        finally
        {
            if (dir is not null) try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    /// <summary>
    /// Type=notify across a hand-over, with tools/notify-listen.py as systemd (a subreaper that follows MAINPID=): the old
    /// process names the new one MAINPID, the new one says MAINPID= and READY=1 itself, and stopping the new one ends the service.
    /// </summary>
    [NeedsProgramFact("python3", "tools/notify-listen.py plays systemd's part")]
    public void Under_systemd_the_successor_becomes_the_main_process_and_says_ready()
    {
        string dir = Directory.CreateTempSubdirectory("vst-rsd").FullName;
        string socket = Path.Combine(dir, "vswitchd.sock");
        var lines = new List<string>();
        var listener = new Process
        {
            StartInfo = new ProcessStartInfo("python3")
            {
                ArgumentList = { Path.Combine(Repo.Root, "tools/notify-listen.py"), "--follow-mainpid", "--seconds", "60", "--",
                    Repo.Vswitchd, "--socket", socket, "--state", Path.Combine(dir, "state.db") },
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            },
        };
        listener.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (lines) lines.Add(e.Data); };
        listener.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (lines) lines.Add(e.Data); };
        int? successor = null;
        try
        {
            listener.Start();
            listener.BeginOutputReadLine();
            listener.BeginErrorReadLine();
            string Text() { lock (lines) return string.Join('\n', lines); }
            Wait.Until(() => Text().Contains("READY=1"), TimeSpan.FromSeconds(30), "the first READY=1");
            int first = int.Parse(Regex.Match(Text(), @"READY=1 \[pid (\d+)\]").Groups[1].Value);

            var r = VsctlHarness.Vsctl("--socket", socket, "--json", "restart");
            Assert.True(r.ExitCode == 0, r + Text());
            successor = (int)JsonNode.Parse(r.Stdout)!["newPid"]!;
            Assert.Equal(first, (int)JsonNode.Parse(r.Stdout)!["oldPid"]!);
            Wait.Until(() => Text().Contains($"READY=1 [pid {successor}]"), TimeSpan.FromSeconds(30), "READY=1 from the successor:\n" + Text());
            Assert.Contains($"MAINPID={successor} [pid {first}]", Text());
            Assert.Contains($"MAINPID={successor} [pid {successor}]", Text());

            // The service's main process is the successor now: stopping it ends the service, with STOPPING=1 from it.
            Proc.Run("kill", "-TERM", successor.ToString()!);
            Assert.True(listener.WaitForExit(30_000), "the listener did not see the main process go:\n" + Text());
            listener.WaitForExit();
            Assert.Contains($"STOPPING=1 [pid {successor}]", Text());
            Assert.Equal(0, listener.ExitCode);
        }
        finally
        {
            if (successor is int pid) StopByPid(pid);
            Proc.KillQuietly(listener);
            listener.Dispose();
            Directory.Delete(dir, recursive: true);
        }
    }

    private static void Ok(Vswitchd d, HttpMethod method, string path, object body)
    {
        var (status, json) = d.Send(method, path, body);
        Assert.True(status is >= 200 and < 300, $"{method} {path}: {status} {json?.ToJsonString()}");
    }

    private void AssertNoLoss(string what, string pingOutput) => AssertNoLoss(output, what, pingOutput);

    /// <summary>"N packets transmitted, N received": every echo answered.</summary>
    public static void AssertNoLoss(ITestOutputHelper output, string what, string pingOutput)
    {
        var m = PingSummary().Match(pingOutput);
        Assert.True(m.Success, $"{what}: no ping summary in: {pingOutput}");
        output.WriteLine($"{what}: {m.Value}");
        Assert.True(m.Groups[1].Value == m.Groups[2].Value, $"{what}: {m.Value}");
    }

    [GeneratedRegex(@"(\d+) packets transmitted, (\d+) received")]
    private static partial Regex PingSummary();

    /// <summary>Running and not a zombie: the successor is not our child, so nobody here reaps it.</summary>
    public static bool Alive(int pid)
    {
        try { return !File.ReadAllText($"/proc/{pid}/stat").Split(") ")[1].StartsWith('Z'); }
        catch (IOException) { return false; }
    }

    /// <summary>SIGTERM to the successor (it removes its TAPs), SIGKILL if it does not go within 15 s.</summary>
    public static void StopByPid(int pid)
    {
        if (!Alive(pid)) return;
        Proc.Run("kill", "-TERM", pid.ToString());
        var sw = Stopwatch.StartNew();
        while (Alive(pid) && sw.Elapsed < TimeSpan.FromSeconds(15)) Thread.Sleep(50);
        if (Alive(pid)) Proc.Run("kill", "-KILL", pid.ToString());
    }
}

/// <summary>
/// A TCP stream that lasts a few seconds whatever the link's speed (64 MiB of known bytes, 512 KiB every 20 ms),
/// so that a restart lands in its middle; both ends count and hash to EOF.
/// </summary>
public sealed class SlowHashedTransfer : IDisposable
{
    private const string Source = """
        import socket, hashlib, random, sys, time
        data = random.Random(11).randbytes(64 << 20)
        c = socket.create_connection((sys.argv[1], 5213), timeout=30)
        step = 512 << 10
        for i in range(0, len(data), step):
            c.sendall(data[i:i + step]); time.sleep(0.02)
        c.shutdown(socket.SHUT_WR); c.recv(1); c.close()
        print(len(data), hashlib.sha256(data).hexdigest())
        """;

    private readonly Process _sink, _source;
    private readonly ITestOutputHelper _output;

    private SlowHashedTransfer(Process sink, Process source, ITestOutputHelper output)
    {
        _sink = sink;
        _source = source;
        _output = output;
    }

    public static SlowHashedTransfer Start(TestNetns client, TestNetns server, string serverIp, ITestOutputHelper output)
    {
        var sink = server.Start("python3", "-c", Iperf.HashingSink, serverIp, "5213");
        Wait.Until(() => server.TryExec(TimeSpan.FromSeconds(5), "ss", "-ltn").StdOut.Contains(":5213"), TimeSpan.FromSeconds(10), "the TCP sink to listen");
        var source = client.Start("python3", "-c", Source, serverIp);
        Wait.Until(() => server.TryExec(TimeSpan.FromSeconds(5), "ss", "-tn", "state", "established").StdOut.Contains(":5213"), TimeSpan.FromSeconds(10), "the TCP stream to start");
        return new SlowHashedTransfer(sink, source, output);
    }

    /// <summary>Waits for both ends; the bytes and their SHA-256 must be the same.</summary>
    public void AssertExact()
    {
        Assert.True(_source.WaitForExit(60_000), "the TCP source did not finish");
        Assert.True(_sink.WaitForExit(30_000), "the TCP sink did not finish");
        string sent = _source.StandardOutput.ReadToEnd().Trim(), received = _sink.StandardOutput.ReadToEnd().Trim();
        _output.WriteLine($"TCP stream: sent {sent}, received {received}");
        Assert.True(_source.ExitCode == 0, "source failed: " + _source.StandardError.ReadToEnd());
        Assert.Equal(sent, received);
    }

    public void Dispose()
    {
        Proc.KillQuietly(_source);
        Proc.KillQuietly(_sink);
        _source.Dispose();
        _sink.Dispose();
    }
}
