using System.Runtime.Versioning;
using VSwitch.Core.Wire;
using VSwitch.Fuzz;
using VSwitch.Overlay.Wire;

namespace VSwitch.Core.Tests.Fuzz;

/// <summary>
/// CI's share of the fuzzing (tools/fuzz.sh runs AFL++): every committed seed and every regression
/// case (a crash input found by a fuzz run, kept after its fix) goes through its target in process,
/// and none may throw anything but the parser's documented bad-input exception.
/// </summary>
[SupportedOSPlatform("linux")]
public class FuzzCorpusTests
{
    public static TheoryData<string> Targets() => new(FuzzTargets.All.Select(t => t.Name));

    [Theory]
    [MemberData(nameof(Targets))]
    public void Every_seed_and_regression_case_runs_without_an_unexpected_exception(string name)
    {
        var target = FuzzTargets.Find(name)!;
        var seeds = FuzzCorpus.Files(FuzzCorpus.Seeds(name));
        Assert.True(seeds.Length >= 3, $"the {name} corpus ({FuzzCorpus.Seeds(name)}) should hold a few meaningful seeds, it has {seeds.Length}");
        var failures = new List<string>();
        foreach (var file in seeds.Concat(FuzzCorpus.Files(FuzzCorpus.Regressions(name))))
        {
            try { target.Execute(File.ReadAllBytes(file)); }
            catch (Exception e) { failures.Add($"{Path.GetRelativePath(FuzzCorpus.Root, file)}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}"); }
        }
        Assert.True(failures.Count == 0, string.Join("\n\n", failures));
    }

    /// <summary>
    /// A brief fuzz in CI without AFL (whose start-up alone would cost a minute a target): fixed-seed
    /// random mutations of the seeds, so a failure reproduces. tools/fuzz.sh is the real search.
    /// </summary>
    [Theory]
    [MemberData(nameof(Targets))]
    public void Mutations_of_the_seeds_raise_no_unexpected_exception(string name)
    {
        var seeds = FuzzCorpus.Files(FuzzCorpus.Seeds(name)).Select(File.ReadAllBytes).ToArray();
        var crash = Smoke.FindCrash(FuzzTargets.Find(name)!, seeds, count: 3000, seed: 16);
        Assert.True(crash is null, crash is { } c ? $"mutation {c.Index} ({Convert.ToHexString(c.Input)}): {c.Error}" : "");
    }

    [Fact]
    public void Every_target_has_a_corpus_and_names_the_assemblies_to_instrument()
    {
        foreach (var t in FuzzTargets.All)
        {
            Assert.True(Directory.Exists(FuzzCorpus.Seeds(t.Name)), $"no corpus for {t.Name}");
            Assert.NotEmpty(t.Instrument);
            // tools/fuzz.sh finds these in the published fuzz project; a renamed assembly would silently instrument nothing.
            foreach (var i in t.Instrument)
                Assert.True(File.Exists(Path.Combine(AppContext.BaseDirectory, i.Assembly)), $"{t.Name}: {i.Assembly} is not an assembly of this build");
        }
    }

    /// <summary>
    /// The frames and VXLAN seeds are the frames the wire tests build (<see cref="Frames"/>): this keeps
    /// the two in step. VSWITCH_FUZZ_WRITE_SEEDS=1 writes the missing ones instead of failing.
    /// </summary>
    [Fact]
    public void The_frames_and_vxlan_corpora_hold_every_frame_the_wire_tests_build()
    {
        bool write = Environment.GetEnvironmentVariable("VSWITCH_FUZZ_WRITE_SEEDS") == "1";
        var missing = new List<string>();
        foreach (var (target, file, bytes) in BinarySeeds())
        {
            string path = Path.Combine(FuzzCorpus.Seeds(target), file);
            if (File.Exists(path) && File.ReadAllBytes(path).AsSpan().SequenceEqual(bytes)) continue;
            if (write) File.WriteAllBytes(path, bytes);
            else missing.Add($"{target}/{file}");
        }
        Assert.True(missing.Count == 0, "missing or stale seeds (VSWITCH_FUZZ_WRITE_SEEDS=1 writes them): " + string.Join(", ", missing));
    }

    /// <summary>A frames seed is a port selector byte (0 access, 1 trunk, 2 routed) and the frame; a VXLAN seed is the UDP payload.</summary>
    private static IEnumerable<(string Target, string File, byte[] Bytes)> BinarySeeds()
    {
        (string, byte[])[] frames =
        [
            ("arp", Frames.Arp()), ("arp-vlan", Frames.Arp(1)), ("arp-qinq", Frames.Arp(2, qinq: true)),
            ("tcp4", Frames.Tcp4()), ("tcp4-options", Frames.Tcp4(options: true)), ("udp4", Frames.Udp4()),
            ("icmp4", Frames.Icmp4()), ("vxlan-in-udp", Frames.Vxlan()), ("first-fragment", Frames.FirstFragment()),
            ("later-fragment", Frames.IPv4(IpProtocols.Udp, 16, null, fragOffset: 3)),
            ("tcp6-hop-by-hop", Frames.Tcp6()), ("tcp6", Frames.Tcp6(false)), ("udp6", Frames.Udp6()), ("icmp6", Frames.Icmp6()),
            ("plain-eth", TestFrames.Eth(TestFrames.Mac(2), TestFrames.Mac(1))),
        ];
        foreach (var (name, frame) in frames)
        {
            yield return ("frames", name, [0, .. frame]);
        }
        yield return ("frames", "trunk-vlan20", [1, .. TestFrames.Eth(TestFrames.Mac(2), TestFrames.Mac(1), vlan: 20)]);
        yield return ("frames", "routed-icmp4", [2, .. Routed(Frames.Icmp4())]);
        yield return ("frames", "routed-tcp4-qinq", [2, .. Routed(Frames.IPv4(IpProtocols.Tcp, 20, (b, o) => TcpHeader.Write(b.AsSpan(o, 20), new(1, 2, 3, 4, TcpFlags.Ack, 5, 0)), tags: 2, qinq: true))]);

        foreach (var (name, inner) in ((string, byte[])[])[("arp", Frames.Arp()), ("udp4", Frames.Udp4()), ("tcp6", Frames.Tcp6(false)), ("vlan", TestFrames.Eth(TestFrames.Mac(2), TestFrames.Mac(1), vlan: 10))])
        {
            var d = new byte[VxlanHeader.HeaderLength + inner.Length];
            VxlanHeader.Write(d, 5001);
            inner.CopyTo(d, VxlanHeader.HeaderLength);
            yield return ("vxlan", name, d);
        }
        var noIFlag = new byte[VxlanHeader.HeaderLength + 14];
        VxlanHeader.Write(noIFlag, 42);
        noIFlag[0] = 0;
        yield return ("vxlan", "no-i-flag", noIFlag);
    }

    /// <summary>To the green network's router (10.2.0.1, its default MAC) from a host on it, off-link to blue.</summary>
    private static byte[] Routed(byte[] frame)
    {
        var f = (byte[])frame.Clone();
        MacAddress.Write(f, VSwitch.Core.Topology.Network.DefaultRouterMac(2));
        return f;
    }
}

/// <summary>Where the committed corpus lives: tests/VSwitch.Fuzz/corpus/TARGET and regressions/TARGET.</summary>
internal static class FuzzCorpus
{
    public static string Root { get; } = FindRoot();

    public static string Seeds(string target) => Path.Combine(Root, "tests", "VSwitch.Fuzz", "corpus", target);
    public static string Regressions(string target) => Path.Combine(Root, "tests", "VSwitch.Fuzz", "regressions", target);

    public static string[] Files(string dir) => Directory.Exists(dir) ? Directory.GetFiles(dir).Order(StringComparer.Ordinal).ToArray() : [];

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "VSwitch.sln"))) return d.FullName;
        throw new DirectoryNotFoundException($"no VSwitch.sln above {AppContext.BaseDirectory}");
    }
}
