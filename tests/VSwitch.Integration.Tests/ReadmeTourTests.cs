using System.Diagnostics;

namespace VSwitch.Integration.Tests;

/// <summary>
/// The README's tour, taken from README.md itself and run as written with bash -e: if a command of
/// it fails, this test fails. Only its first line (`dotnet build`) is left out: the test run has
/// just built everything, and building again would overwrite the running tests' own assemblies.
/// </summary>
[Collection("netns")]
public class ReadmeTourTests
{
    private static void CleanUp()
    {
        // A tour that failed half-way may have left its namespaces behind.
        Proc.Run("ip", "netns", "del", "vstour1");
        Proc.Run("ip", "netns", "del", "vstour2");
        try { Directory.Delete("/tmp/vstour", true); } catch (DirectoryNotFoundException) { }
    }

    [RootFact]
    public void The_README_tour_runs_as_typed()
    {
        var lines = Markdown.ShBlockAfter("README.md", "## A tour").Split('\n');
        Assert.StartsWith("dotnet build", lines[0]);
        string script = Path.Combine(Path.GetTempPath(), $"vstour-{Names.Random("")}.sh");
        File.WriteAllText(script, string.Join('\n', lines.Skip(1)));
        CleanUp();
        try
        {
            var psi = new ProcessStartInfo("bash", ["-e", script]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Repo.Root };
            psi.Environment.Remove("VSWITCH_SOCKET");
            using var p = Process.Start(psi)!;
            var so = p.StandardOutput.ReadToEndAsync();
            var se = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromSeconds(120))) { Proc.KillQuietly(p); throw new TimeoutException("the tour did not finish in 120 s"); }
            p.WaitForExit();
            string output = so.Result + se.Result;
            Assert.True(p.ExitCode == 0, $"the tour failed (exit {p.ExitCode}):\n{output}");
            // What each step should show, so that a tour printing errors with exit 0 fails too.
            Assert.Contains("Network blue", output);
            Assert.Contains("2 received", output);
            Assert.Contains("dropped, as the rule says", output);
            Assert.Contains("output: sent on tour-b", output);
            Assert.Contains("recorded 5 of 5", output);
            Assert.Contains("vswitch_", output);
            Assert.False(Directory.Exists("/tmp/vstour"), "the tour's last line removes its folder");
        }
        finally
        {
            File.Delete(script);
            CleanUp();
        }
    }
}
