using System.Text.RegularExpressions;

namespace VSwitch.Integration.Tests;

/// <summary>
/// tools/crashstorm.sh in CI's size (10 runs): SIGKILL vswitchd during bursts of API writes, restart,
/// and every acknowledged write must be there, whole. No root: no namespaces, no devices, its own
/// socket and state database in a temporary folder. A second run against a daemon that loses its
/// database at each start shows that the check fails when it should.
/// </summary>
[Collection("netns")] // one at a time with the other process-heavy tests: it kills and starts vswitchd 10 times
public class CrashStormTests
{
    private static (int ExitCode, string Output) RunStorm(string? vswitchd, params string[] args)
    {
        var env = new Dictionary<string, string> { ["VSCTL"] = Repo.Vsctl, ["VSWITCHD"] = vswitchd ?? Repo.Vswitchd };
        var r = Proc.Run(TimeSpan.FromMinutes(4), env, "bash", [Path.Combine(Repo.Root, "tools/crashstorm.sh"), .. args]);
        return (r.ExitCode, r.Output);
    }

    [Fact]
    public void Ten_kills_during_write_bursts_lose_no_acknowledged_write()
    {
        var (rc, output) = RunStorm(null, "--runs", "10", "--seed", "10");
        Assert.True(rc == 0, $"crashstorm.sh exited {rc}:\n{output}");
        var m = Regex.Match(output, @"crashstorm: OK runs=10 writes-acked=(\d+) writes-unacked=\d+ kills=10 restarts=11 ");
        Assert.True(m.Success, "no summary line:\n" + output);
        Assert.Equal(10, Regex.Matches(output, @"^run \d+/10: killed after", RegexOptions.Multiline).Count);
    }

    [Fact]
    public void A_daemon_that_loses_its_database_fails_the_storm()
    {
        // vswitchd --socket S --state P, but with a new database at every start: acknowledged writes vanish.
        string wrapper = Path.Combine(Path.GetTempPath(), $"vst-lossy-{Names.Random("")}.sh");
        File.WriteAllText(wrapper, $"#!/bin/sh\nexec '{Repo.Vswitchd}' \"$1\" \"$2\" \"$3\" \"$4.$(date +%s%N)\"\n");
        File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        try
        {
            var (rc, output) = RunStorm(wrapper, "--runs", "10", "--seed", "7");
            Assert.True(rc == 1, $"crashstorm.sh should have failed (exit 1), exited {rc}:\n{output}");
            Assert.Contains("crashstorm: FAIL run", output);
            Assert.Contains("is missing", output);
        }
        finally { File.Delete(wrapper); }
    }
}
