using System.Diagnostics;
using System.Text.Json.Nodes;

namespace VSwitch.Integration.Tests;

/// <summary>
/// A vswitchd with several datapath threads (<c>"datapath": {"threads": N}</c>): every thread may
/// transmit on every port at once. One switch, in a namespace of its own, with four endpoints on one
/// VXLAN network: two containers on TAPs, one on a veth through an AF_PACKET port, and one behind
/// the kernel's VXLAN device in another "host". All of them send to all the others at the same time,
/// so every port is sent to by both threads: TCP transfers counted and SHA-256 hashed to EOF, and
/// paced UDP datagrams each carrying its sequence number and a CRC-32 of itself, counted exactly at
/// the receiver (none missing, none duplicated, none corrupted).
/// </summary>
[Collection("netns")]
public class MultiThreadDatapathTests
{
    private const string Vni = "42";

    /// <summary>TCP and UDP sources and sinks; a sink prints what it got, a source what it sent.</summary>
    private const string FlowScript = """
        import socket, hashlib, random, sys, struct, zlib, time, json, os
        mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
        # A source also stops early once this file exists (the test says when the churn is over).
        stop = sys.argv[7] if len(sys.argv) > 7 and sys.argv[7] else None
        def stopped(): return stop is not None and os.path.exists(stop)
        if mode == "tcp-sink":
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, port)); s.listen(1); s.settimeout(120)
            c, _ = s.accept(); c.settimeout(60); h = hashlib.sha256(); n = 0
            while True:
                d = c.recv(1 << 16)
                if not d: break
                h.update(d); n += len(d)
            print(n, h.hexdigest())
        elif mode == "tcp-source":
            # Sends seeded random bytes for a number of seconds (or until told to stop), hashing what it sent.
            seed, seconds = int(sys.argv[4]), float(sys.argv[5])
            r = random.Random(seed); h = hashlib.sha256(); n = 0
            c = socket.create_connection((addr, port), timeout=60)
            end = time.monotonic() + seconds
            while time.monotonic() < end and not stopped():
                d = r.randbytes(1 << 18); c.sendall(d); h.update(d); n += len(d)
            c.shutdown(socket.SHUT_WR); c.recv(1); c.close()
            print(n, h.hexdigest())
        elif mode == "udp-sink":
            count, idle = int(sys.argv[4]), float(sys.argv[5])
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
            s.bind((addr, port)); s.settimeout(120)
            seen = set(); got = bad = dup = 0
            while len(seen) < count:
                try: d = s.recv(65536)
                except socket.timeout: break
                s.settimeout(idle); got += 1
                if len(d) < 12 or zlib.crc32(d[:-4]) != struct.unpack("!I", d[-4:])[0]: bad += 1; continue
                seq = struct.unpack("!I", d[:4])[0]
                if seq in seen: dup += 1
                seen.add(seq)
            # Anything more now is a duplicate.
            s.settimeout(0.3)
            try:
                while True: s.recv(65536); got += 1; dup += 1
            except socket.timeout: pass
            print(json.dumps({"received": got, "unique": len(seen), "corrupted": bad, "duplicates": dup}))
        elif mode == "udp-source":
            count, pps, seed = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            r = random.Random(seed); t0 = time.monotonic(); sent = 0
            for i in range(count):
                if i % 50 == 0 and stopped(): break
                body = struct.pack("!I", i) + r.randbytes(100 + r.randrange(1200))
                s.sendto(body + struct.pack("!I", zlib.crc32(body)), (addr, port))
                due = t0 + (i + 1) / pps
                d = due - time.monotonic()
                if d > 0: time.sleep(d)
                sent += 1
            print(sent)
        """;

    /// <summary>The switch's host, its endpoints, and the kernel VTEP's host; everything goes when disposed.</summary>
    private sealed class Fabric : IDisposable
    {
        public readonly Underlay Underlay;
        public readonly TestNetns Host, KernelHost;
        public readonly string Suffix = Names.Random("");
        public readonly string ScriptPath;
        public readonly List<(string Name, TestNetns Ns, string Ip, string Kind)> Endpoints = [];
        public Vswitchd? Switch;
        /// <summary>The configuration the switch was started with (to start it again on the same state).</summary>
        public string Config = "";

        public Fabric(string subnet, int threads, int taps)
        {
            Underlay = new Underlay(subnet);
            ScriptPath = Path.Combine(Path.GetTempPath(), "vsmt-" + Suffix + ".py");
            try { Build(subnet, threads, taps, out Host, out KernelHost); }
            catch
            {
                Dispose();
                throw;
            }
        }

        private void Build(string subnet, int threads, int taps, out TestNetns Host, out TestNetns KernelHost)
        {
            Host = Underlay.AddHost(1);
            KernelHost = Underlay.AddHost(2);
            File.WriteAllText(ScriptPath, FlowScript);

            var ports = new JsonArray();
            for (int i = 1; i <= taps; i++)
            {
                var c = Underlay.AddContainer();
                string name = "mt" + i + Suffix, ip = "10.42.0." + (10 + i);
                ports.Add(new JsonObject { ["name"] = name, ["network"] = "ov", ["netns"] = c.Name, ["addresses"] = new JsonArray(ip + "/24") });
                Endpoints.Add((name, c, ip, "tap"));
            }
            // AF_PACKET: a veth whose switch end is in the switch's namespace and whose peer is a container's eth0.
            var ac = Underlay.AddContainer();
            string ap = "ma" + Suffix;
            Proc.Check("ip", "link", "add", ap, "netns", Host.Name, "type", "veth", "peer", "name", "eth0", "netns", ac.Name);
            Host.Exec("ip", "link", "set", ap, "up");
            ac.Exec("ip", "link", "set", "eth0", "mtu", "1450");
            ac.Exec("ip", "addr", "add", "10.42.0.30/24", "dev", "eth0");
            ac.Exec("ip", "link", "set", "eth0", "up");
            ports.Add(new JsonObject { ["name"] = ap, ["type"] = "afpacket", ["network"] = "ov" });
            Endpoints.Add((ap, ac, "10.42.0.30", "afpacket"));

            // The kernel's VXLAN device, bridged to a container, on the other underlay host.
            var kc = Underlay.AddContainer();
            KernelHost.Exec("ip", "link", "add", "vx0", "type", "vxlan", "id", Vni, "dstport", "4789", "local", subnet + ".2", "remote", subnet + ".1", "dev", "u0");
            KernelHost.Exec("ip", "link", "add", "br0", "type", "bridge");
            KernelHost.Exec("ip", "link", "set", "vx0", "master", "br0");
            Proc.Check("ip", "link", "add", "kb0", "netns", KernelHost.Name, "type", "veth", "peer", "name", "eth0", "netns", kc.Name);
            KernelHost.Exec("ip", "link", "set", "kb0", "master", "br0");
            foreach (var dev in new[] { "vx0", "br0", "kb0" }) KernelHost.Exec("ip", "link", "set", dev, "up");
            kc.Exec("ip", "link", "set", "eth0", "mtu", "1450");
            // PEERS.md's trap: the kernel's VXLAN leaves inner checksums to an offload a UDP socket never does.
            kc.Exec("ethtool", "-K", "eth0", "tx", "off");
            kc.Exec("ip", "addr", "add", "10.42.0.40/24", "dev", "eth0");
            kc.Exec("ip", "link", "set", "eth0", "up");
            Endpoints.Add(("vxlan0", kc, "10.42.0.40", "vxlan"));

            string config = Config = new JsonObject
            {
                ["datapath"] = new JsonObject { ["threads"] = threads },
                ["overlay"] = new JsonObject { ["local"] = subnet + ".1" },
                ["networks"] = new JsonArray(new JsonObject { ["name"] = "ov", ["vni"] = int.Parse(Vni), ["vteps"] = new JsonArray(subnet + ".2") }),
                ["ports"] = ports,
            }.ToJsonString();
            Switch = Vswitchd.StartInNetns(Host.Name, config);
            Assert.Contains($"datapath started: {threads} thread(s)", Switch.Log);
        }

        /// <summary>Every endpoint pings every other (ARP and MAC learning done before the counted traffic).</summary>
        public void PingMesh()
        {
            foreach (var a in Endpoints)
                foreach (var b in Endpoints)
                {
                    if (a.Ns == b.Ns) continue;
                    var r = a.Ns.TryExec(TimeSpan.FromSeconds(30), "ping", "-c", "1", "-W", "2", b.Ip);
                    if (r.ExitCode != 0) r = a.Ns.TryExec(TimeSpan.FromSeconds(30), "ping", "-c", "2", "-W", "2", b.Ip);
                    Assert.True(r.ExitCode == 0, $"ping {a.Kind} {a.Ip} -> {b.Kind} {b.Ip}: {r.Output}");
                }
        }

        public Process Start(TestNetns ns, params string[] args) => ns.Start("python3", [ScriptPath, .. args]);

        public void Dispose()
        {
            Switch?.Dispose();
            Underlay.Dispose();
            try { File.Delete(ScriptPath); } catch (IOException) { }
        }
    }

    /// <summary>A flow between two endpoints: its sink and source processes, started by PID and stopped by PID.</summary>
    private sealed record Flow(string What, Process Sink, Process? Source);

    private static bool Listening(TestNetns ns, string proto, int port) =>
        ns.TryExec(TimeSpan.FromSeconds(30), "ss", proto == "tcp" ? "-ltn" : "-lun").StdOut.Contains(":" + port + " ");

    /// <summary>Starts a sink per directed pair (TCP and UDP), waits for them to listen, then starts every source at once.</summary>
    private static List<Flow> StartMesh(Fabric f, IReadOnlyList<(string Name, TestNetns Ns, string Ip, string Kind)> eps, double tcpSeconds, int udpCount, int udpPps, string? stopFile = null)
    {
        var pairs = new List<((string Name, TestNetns Ns, string Ip, string Kind), (string Name, TestNetns Ns, string Ip, string Kind))>();
        foreach (var a in eps)
            foreach (var b in eps)
                if (a.Ns != b.Ns) pairs.Add((a, b));
        return StartPairs(f, pairs, tcpSeconds, udpCount, udpPps, stopFile, firstPort: 6000);
    }

    /// <summary>A flow (TCP and/or UDP) for each pair, on ports from <paramref name="firstPort"/> on (each flow its own).</summary>
    private static List<Flow> StartPairs(Fabric f, IReadOnlyList<((string Name, TestNetns Ns, string Ip, string Kind) A, (string Name, TestNetns Ns, string Ip, string Kind) B)> pairs,
        double tcpSeconds, int udpCount, int udpPps, string? stopFile, int firstPort)
    {
        var flows = new List<Flow>();
        var pending = new List<(string What, Process Sink, TestNetns From, string[] SourceArgs, TestNetns To, string Proto, int Port)>();
        int port = firstPort, seed = firstPort;
        foreach (var (a, b) in pairs)
        {
            string what = $"{a.Kind} {a.Ip} -> {b.Kind} {b.Ip}";
            if (tcpSeconds > 0)
            {
                int p = port++;
                var sink = f.Start(b.Ns, "tcp-sink", b.Ip, p.ToString());
                pending.Add(("TCP " + what, sink, a.Ns, ["tcp-source", b.Ip, p.ToString(), (seed++).ToString(), tcpSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture), "-", stopFile ?? ""], b.Ns, "tcp", p));
            }
            if (udpCount > 0)
            {
                int p = port++;
                var sink = f.Start(b.Ns, "udp-sink", b.Ip, p.ToString(), udpCount.ToString(), "5");
                pending.Add(("UDP " + what, sink, a.Ns, ["udp-source", b.Ip, p.ToString(), udpCount.ToString(), udpPps.ToString(), (seed++).ToString(), stopFile ?? ""], b.Ns, "udp", p));
            }
        }
        try
        {
            foreach (var x in pending) Wait.Until(() => Listening(x.To, x.Proto, x.Port), TimeSpan.FromSeconds(20), $"the sink of {x.What} to listen");
            foreach (var x in pending) flows.Add(new Flow(x.What, x.Sink, f.Start(x.From, x.SourceArgs)));
        }
        catch
        {
            foreach (var x in pending) Proc.KillQuietly(x.Sink);
            foreach (var fl in flows) if (fl.Source is { } s) Proc.KillQuietly(s);
            throw;
        }
        return flows;
    }

    /// <summary>Waits for every flow and checks it: TCP byte count and SHA-256 equal at both ends, UDP every datagram once, whole.</summary>
    /// <summary>Frames the kernel dropped because an AF_PACKET port's receive ring was full, over every port.</summary>
    private static long RingFullDrops(Vswitchd d) =>
        d.Get("/v1/stats")["ports"]!.AsArray().Sum(p => (long?)p!["details"]?["rx-ring-full-drops"] ?? 0);

    /// <summary>
    /// Every flow arrived whole: TCP byte for byte, UDP every datagram once and intact. With
    /// <paramref name="ringDropsBefore"/> (the receive-queue tests, whose AF_PACKET rings are 120 slots a queue), UDP
    /// datagrams may be missing only as many as the kernel counted dropped at a full AF_PACKET ring meanwhile: a drop
    /// before the switch, counted, never a silent loss, a duplicate or a corruption inside it. Seen in a CI run: 23
    /// ring-full drops and 23 datagrams missing, while the datapath thread was held up writing to the TAPs.
    /// </summary>
    private static void AssertMesh(List<Flow> flows, Fabric f, TimeSpan timeout, long? ringDropsBefore = null)
    {
        var sw = Stopwatch.StartNew();
        var failures = new List<string>();
        var missing = new List<string>();
        long missingDatagrams = 0;
        try
        {
            foreach (var fl in flows)
            {
                var left = timeout - sw.Elapsed;
                bool srcDone = fl.Source!.WaitForExit((int)Math.Max(1, left.TotalMilliseconds));
                bool sinkDone = fl.Sink.WaitForExit((int)Math.Max(1, (timeout - sw.Elapsed).TotalMilliseconds));
                if (!srcDone || !sinkDone) { failures.Add($"{fl.What}: did not finish (source {srcDone}, sink {sinkDone})"); continue; }
                string src = fl.Source.StandardOutput.ReadToEnd().Trim(), sink = fl.Sink.StandardOutput.ReadToEnd().Trim();
                if (fl.What.StartsWith("TCP"))
                {
                    if (src.Length == 0 || src != sink) failures.Add($"{fl.What}: sent '{src}', received '{sink}' {fl.Sink.StandardError.ReadToEnd()}");
                }
                else
                {
                    var j = JsonNode.Parse(sink.Length > 0 ? sink : "{}")!;
                    long count = long.Parse(src.Length > 0 ? src : "-1");
                    bool intact = (long?)j["received"] == (long?)j["unique"] && (long?)j["corrupted"] == 0 && (long?)j["duplicates"] == 0;
                    if (intact && (long?)j["unique"] == count) continue;
                    if (intact && ringDropsBefore is not null && (long?)j["unique"] is long u && u < count)
                    {
                        missingDatagrams += count - u;
                        missing.Add($"{fl.What}: sent {src} datagrams, sink saw {sink}");
                    }
                    else failures.Add($"{fl.What}: sent {src} datagrams, sink saw {sink}");
                }
            }
        }
        finally
        {
            foreach (var fl in flows) { Proc.KillQuietly(fl.Sink); if (fl.Source is { } s) Proc.KillQuietly(s); }
        }
        if (missingDatagrams > 0)
        {
            long ringDrops = RingFullDrops(f.Switch!) - ringDropsBefore!.Value;
            if (missingDatagrams > ringDrops)
                failures.Add($"{missingDatagrams} datagrams missing but only {ringDrops} counted dropped at a full AF_PACKET ring:\n" + string.Join("\n", missing));
        }
        if (failures.Count > 0)
        {
            // Where frames went missing: the switch's counters, and each endpoint's kernel (its
            // interface's drops, UDP buffer errors).
            var why = new System.Text.StringBuilder();
            why.AppendLine(f.Switch!.Get("/v1/stats").ToJsonString());
            why.AppendLine(f.Host.TryExec(TimeSpan.FromSeconds(5), "ip", "-s", "link").StdOut);
            foreach (var e in f.Endpoints)
            {
                why.AppendLine($"--- {e.Kind} {e.Ip}");
                why.AppendLine(e.Ns.TryExec(TimeSpan.FromSeconds(5), "ip", "-s", "link").StdOut);
                why.AppendLine(string.Join("\n", e.Ns.TryExec(TimeSpan.FromSeconds(5), "cat", "/proc/net/snmp").StdOut.Split('\n').Where(l => l.StartsWith("Udp:"))));
            }
            Assert.Fail(string.Join("\n", failures) + "\n" + why);
        }
    }

    [RootTheory]
    [InlineData(2)]
    [InlineData(4)]
    public void Several_threads_carry_traffic_between_tap_afpacket_and_vxlan_ports_at_once_exactly(int threads)
    {
        using var f = new Fabric("10.213.0", threads, taps: 2);
        f.PingMesh();
        // 4 endpoints, 12 directed pairs, all at once: first UDP streams counted exactly, then TCP
        // transfers hashed. Not both together: TCP bursts then overflow the AF_PACKET port's receive
        // ring now and then (the kernel drops into a full ring, counted as rx-ring-full-drops, seen
        // with 4 threads on 2 cores), which is not what this test is about.
        AssertMesh(StartMesh(f, f.Endpoints, tcpSeconds: 0, udpCount: 1500, udpPps: 500), f, TimeSpan.FromSeconds(120));
        AssertMesh(StartMesh(f, f.Endpoints, tcpSeconds: 3, udpCount: 0, udpPps: 0), f, TimeSpan.FromSeconds(120));
        // Every thread is still running: none stopped on a fault.
        Assert.DoesNotContain("stopped on a fault", f.Switch!.Log);
        Assert.DoesNotContain("Unhandled exception", f.Switch.Log);
    }

    /// <summary>Removes and adds the port <paramref name="times"/> times while <paramref name="flows"/> run, then checks them.</summary>
    private static void Churn(Fabric f, string name, object port, int times, List<Flow> flows, string stopFile)
    {
        try
        {
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < times; i++)
            {
                var del = f.Switch!.Send(HttpMethod.Delete, "/v1/ports/" + name);
                Assert.True(del.Status is 200 or 204, $"delete #{i}: {del.Status} {del.Body}");
                var add = f.Switch.Send(HttpMethod.Post, "/v1/ports", port);
                Assert.True(add.Status == 201, $"add #{i}: {add.Status} {add.Body}");
            }
            // The churn ran under traffic: every flow was still going when it ended; now they stop.
            Assert.True(flows.All(fl => !fl.Source!.HasExited), $"a flow ended before the churn did ({sw.Elapsed})");
            File.WriteAllText(stopFile, "");
        }
        catch
        {
            foreach (var fl in flows) { Proc.KillQuietly(fl.Sink); if (fl.Source is { } s) Proc.KillQuietly(s); }
            throw;
        }
        AssertMesh(flows, f, TimeSpan.FromSeconds(120));
    }

    [RootFact]
    public void A_port_removed_and_added_again_100_times_under_traffic_costs_the_other_flows_nothing()
    {
        using var f = new Fabric("10.214.0", threads: 2, taps: 2);
        // The port that comes and goes: a TAP into a container of its own, sent to all the while.
        var churn = f.Underlay.AddContainer();
        string churnName = "mc" + f.Suffix;
        object churnPort = new { name = churnName, type = "tap", network = "ov", netns = churn.Name, addresses = new[] { "10.42.0.50/24" } };
        Assert.Equal(201, f.Switch!.Send(HttpMethod.Post, "/v1/ports", churnPort).Status);
        f.PingMesh();

        // Frames for the churning port all the while, from two endpoints behind different threads (TAP and VXLAN).
        var blasts = new List<Process>();
        try
        {
            foreach (var from in new[] { f.Endpoints[0].Ns, f.Endpoints[^1].Ns })
                blasts.Add(f.Start(from, "udp-source", "10.42.0.50", "9", "1000000", "1000", "99"));
            // 50 times under UDP between all the other endpoints (counted exactly), 50 under TCP (hashed);
            // the flows run until the churn is over (at most 5 minutes).
            string stop1 = f.ScriptPath + ".stop1", stop2 = f.ScriptPath + ".stop2";
            Churn(f, churnName, churnPort, 50, StartMesh(f, f.Endpoints, tcpSeconds: 0, udpCount: 90_000, udpPps: 300, stop1), stop1);
            Churn(f, churnName, churnPort, 50, StartMesh(f, f.Endpoints, tcpSeconds: 300, udpCount: 0, udpPps: 0, stop2), stop2);
        }
        finally
        {
            foreach (var b in blasts) Proc.KillQuietly(b);
            foreach (var x in new[] { ".stop1", ".stop2" }) try { File.Delete(f.ScriptPath + x); } catch (IOException) { }
        }
        // The port that came back works.
        var ping = churn.TryExec(TimeSpan.FromSeconds(30), "ping", "-c", "2", "-W", "2", f.Endpoints[0].Ip);
        Assert.True(ping.ExitCode == 0, ping.Output);
        Assert.DoesNotContain("stopped on a fault", f.Switch.Log);
        Assert.DoesNotContain("has not passed a quiescent point", f.Switch.Log);
    }

    /// <summary>
    /// Flows enough that a flow hash spreads them over every receive queue: from each kind of port (TAP, AF_PACKET,
    /// VXLAN) <paramref name="perSource"/> UDP flows, each from a source port of its own, to another endpoint. Slow ones:
    /// at load 13-23 on 2 cores a starved thread lets an AF_PACKET ring (120 slots) overflow under a few thousand
    /// frames a second from one container (rx-ring-full-drops), which is not what these tests are about.
    /// </summary>
    private static List<Flow> StartSpread(Fabric f, int perSource, int count, int pps, int firstPort)
    {
        var e = f.Endpoints; // tap, tap, afpacket, vxlan
        var pairs = new List<((string, TestNetns, string, string), (string, TestNetns, string, string))>();
        for (int i = 0; i < perSource; i++)
        {
            pairs.Add((e[0], e[2]));
            pairs.Add((e[2], e[1]));
            pairs.Add((e[3], e[0]));
        }
        return StartPairs(f, pairs, tcpSeconds: 0, udpCount: count, udpPps: pps, stopFile: null, firstPort);
    }

    /// <summary>The threads that read frames from a port's queues, by queue (GET /v1/threads).</summary>
    private static Dictionary<int, List<(int Thread, long Frames, bool Pinned)>> QueuesOf(Vswitchd d, string port)
    {
        var byQueue = new Dictionary<int, List<(int, long, bool)>>();
        foreach (var t in d.Get("/v1/threads").AsArray())
            foreach (var q in t!["rxQueues"]!.AsArray())
            {
                if ((string)q!["port"]! != port) continue;
                int queue = (int)q["queue"]!;
                if (!byQueue.TryGetValue(queue, out var list)) byQueue[queue] = list = [];
                list.Add(((int)t["index"]!, (long)q["frames"]!, (bool)q["pinned"]!));
            }
        return byQueue;
    }

    [RootFact]
    public void Receive_queues_spread_each_ports_flows_over_both_threads_exactly()
    {
        using var f = new Fabric("10.215.0", threads: 2, taps: 2);
        var d = f.Switch!;
        // Two queues per port by default (one per thread): a multiqueue TAP, an AF_PACKET fanout group, two VXLAN sockets.
        foreach (var (name, _, _, _) in f.Endpoints)
            Assert.Equal(2, QueuesOf(d, name).Count);
        f.PingMesh();
        long ringDrops = RingFullDrops(d);
        var flows = StartMesh(f, f.Endpoints, tcpSeconds: 0, udpCount: 1500, udpPps: 500);
        flows.AddRange(StartSpread(f, perSource: 8, count: 300, pps: 50, firstPort: 7000));
        AssertMesh(flows, f, TimeSpan.FromSeconds(120), ringDrops);
        AssertMesh(StartMesh(f, f.Endpoints, tcpSeconds: 3, udpCount: 0, udpPps: 0), f, TimeSpan.FromSeconds(120));

        // Each port's two queues both received, on two different threads (what vsctl threads shows).
        foreach (var (name, _, _, kind) in new[] { f.Endpoints[0], f.Endpoints[2], f.Endpoints[3] })
        {
            var queues = QueuesOf(d, name);
            Assert.True(queues.Count == 2 && queues.Values.All(l => l.Count == 1 && l[0].Frames > 0), $"{kind} {name}: {d.Get("/v1/threads").ToJsonString()}");
            Assert.NotEqual(queues[0][0].Thread, queues[1][0].Thread);
        }
        var text = Proc.Run(TimeSpan.FromSeconds(60), Repo.Vsctl, ["--socket", d.Socket, "threads"]);
        Assert.True(text.ExitCode == 0, text.Output);
        Assert.Contains("USAGE", text.StdOut);
        foreach (var dp in new[] { "vswitch-dp0", "vswitch-dp1" })
            Assert.Contains(text.StdOut.Split('\n'), l => l.Contains(dp) && l.Contains(f.Endpoints[2].Name));
        Assert.DoesNotContain("stopped on a fault", d.Log);
    }

    [RootFact]
    public void Pinning_receive_queues_to_the_other_thread_under_traffic_loses_and_duplicates_nothing()
    {
        using var f = new Fabric("10.216.0", threads: 2, taps: 2);
        var d = f.Switch!;
        f.PingMesh();
        long ringDrops = RingFullDrops(d);
        var flows = StartMesh(f, f.Endpoints, tcpSeconds: 0, udpCount: 1500, udpPps: 250);
        flows.AddRange(StartSpread(f, perSource: 4, count: 600, pps: 100, firstPort: 7000));
        // While the flows run (6 s), queue 0 of a TAP, queue 1 of the AF_PACKET port and queue 0 of the VXLAN endpoint
        // go back and forth between the threads.
        var moving = new[] { (f.Endpoints[0].Name, 0), (f.Endpoints[2].Name, 1), ("vxlan0", 0) };
        int moves = 0;
        var sw = Stopwatch.StartNew();
        try
        {
            while (flows.Any(fl => !fl.Source!.HasExited) && sw.Elapsed < TimeSpan.FromSeconds(60))
            {
                foreach (var (port, queue) in moving)
                {
                    int now = QueuesOf(d, port)[queue].Single().Thread;
                    var r = d.Send(HttpMethod.Post, "/v1/threads/pin", new { port, queue, thread = 1 - now });
                    Assert.True(r.Status == 200, $"pin {port}/{queue}: {r.Status} {r.Body}");
                    moves++;
                }
                Thread.Sleep(100);
            }
        }
        catch
        {
            foreach (var fl in flows) { Proc.KillQuietly(fl.Sink); if (fl.Source is { } s) Proc.KillQuietly(s); }
            throw;
        }
        Assert.True(moves >= 15, $"only {moves} moves while the flows ran");
        AssertMesh(flows, f, TimeSpan.FromSeconds(120), ringDrops);

        // The assignment shows: each moved queue on one thread, pinned; the TAP's queue 0 goes to thread 1 by vsctl.
        foreach (var (port, queue) in moving) Assert.True(QueuesOf(d, port)[queue].Single().Pinned, port);
        string tap = f.Endpoints[0].Name;
        var pin = Proc.Run(TimeSpan.FromSeconds(60), Repo.Vsctl, ["--socket", d.Socket, "threads", "pin", tap, "0", "1"]);
        Assert.True(pin.ExitCode == 0, pin.Output);
        Assert.Equal(1, QueuesOf(d, tap)[0].Single().Thread);

        // Bad arguments are refused, naming what is wrong.
        var noPort = d.Send(HttpMethod.Post, "/v1/threads/pin", new { port = "nope", queue = 0, thread = 0 });
        Assert.Equal(404, noPort.Status);
        Assert.Contains("nope", noPort.Body!.ToJsonString());
        var noQueue = d.Send(HttpMethod.Post, "/v1/threads/pin", new { port = tap, queue = 5, thread = 0 });
        Assert.Equal(400, noQueue.Status);
        Assert.Contains("there is no queue 5", noQueue.Body!.ToJsonString());
        var noThread = Proc.Run(TimeSpan.FromSeconds(60), Repo.Vsctl, ["--socket", d.Socket, "threads", "pin", tap, "1", "7"]);
        Assert.NotEqual(0, noThread.ExitCode);
        Assert.Contains("there is no datapath thread 7", noThread.Output);

        // Pins are kept across a restart of the daemon (in the state store), and a rebalance keeps them.
        d.KeepDir = true;
        string dir = d.Dir;
        d.Dispose();
        f.Switch = d = Vswitchd.StartInNetns(f.Host.Name, dir, f.Config);
        try
        {
            Assert.Equal((1, true), (QueuesOf(d, tap)[0].Single().Thread, QueuesOf(d, tap)[0].Single().Pinned));
            var re = d.Send(HttpMethod.Post, "/v1/threads/rebalance", new { assign = "roundrobin" });
            Assert.True(re.Status == 200, $"{re.Status} {re.Body}");
            Assert.Equal(1, QueuesOf(d, tap)[0].Single().Thread);
            var badAssign = d.Send(HttpMethod.Post, "/v1/threads/rebalance", new { assign = "fastest" });
            Assert.Equal(400, badAssign.Status);
            Assert.Contains("fastest", badAssign.Body!.ToJsonString());
        }
        finally
        {
            d.KeepDir = false;
        }
        Assert.DoesNotContain("stopped on a fault", d.Log);
    }
}
