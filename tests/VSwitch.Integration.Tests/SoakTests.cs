using System.Text.RegularExpressions;

namespace VSwitch.Integration.Tests;

/// <summary>
/// tools/soak.sh in CI's size (1 minute): ping, TCP and 64-byte UDP between three namespaces across two
/// networks while rules, routes and a port churn every second; it fails on a broken ping, fd or RSS
/// growth, or an unexpected drop reason. Leaves no namespace behind.
/// </summary>
[Collection("netns")]
public class SoakTests
{
    [RootFact]
    public void One_minute_soak_passes_and_leaves_nothing_behind()
    {
        string dir = Directory.CreateTempSubdirectory("vst-soak").FullName;
        try
        {
            var env = new Dictionary<string, string> { ["VSCTL"] = Repo.Vsctl, ["VSWITCHD"] = Repo.Vswitchd };
            var r = Proc.Run(TimeSpan.FromMinutes(3), env, "bash", Path.Combine(Repo.Root, "tools/soak.sh"), "--minutes", "1", "--out", dir);
            string output = r.Output;
            Assert.True(r.ExitCode == 0, $"soak.sh exited {r.ExitCode}:\n{output}");
            Assert.Matches(@"soak: OK minutes=1 samples=\d+", output);
            var csv = File.ReadAllLines(Path.Combine(dir, "soak.csv"));
            Assert.True(csv.Length > 30, "fewer than 30 samples in a minute");
            // The GC heap is sampled (column 5, from /metrics), and the VXLAN ping ran through the kernel's VTEP.
            Assert.StartsWith("t,rss_kb,fds,threads,gc_heap_kb,", csv[0]);
            Assert.True(csv.Skip(1).Count(l => long.TryParse(l.Split(',')[4], out long kb) && kb > 0) > 30, "the GC heap was not sampled");
            Assert.Matches(@"f->v over VXLAN loss [0-9.]+%", output);
            Assert.Contains("<polyline", File.ReadAllText(Path.Combine(dir, "soak.svg")));
            string id = Regex.Match(output, @"namespaces (sk[0-9a-f]+)-").Groups[1].Value;
            Assert.NotEmpty(id);
            Assert.DoesNotContain(id, Proc.Run("ip", "netns", "list").StdOut);
            Assert.DoesNotContain(id, Proc.Run("ip", "link", "show").StdOut);
        }
        finally { try { Directory.Delete(dir, true); } catch (IOException) { } }
    }
}
