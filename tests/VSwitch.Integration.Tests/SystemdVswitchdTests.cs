using System.Text.RegularExpressions;

namespace VSwitch.Integration.Tests;

/// <summary>Skipped with the reason when a program the test needs is not installed.</summary>
public sealed class NeedsProgramFactAttribute : FactAttribute
{
    public NeedsProgramFactAttribute(string program, string why)
    {
        if (SystemdVswitchdTests.Which(program) is null) Skip = $"{program} is not installed: {why}";
    }
}

/// <summary>
/// vswitchd as a systemd service without systemd: tools/notify-listen.py plays its part (a parent process named
/// "systemd", a NOTIFY_SOCKET datagram socket), and systemd-analyze checks the unit.
/// </summary>
public class SystemdVswitchdTests
{
    public static string? Which(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':')
            .Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);

    private static ProcessResult UnderNotify(string dir, params string[] listenerArgs)
    {
        string[] args =
        [
            Path.Combine(Repo.Root, "tools/notify-listen.py"), .. listenerArgs, "--",
            Repo.Vswitchd, "--socket", Path.Combine(dir, "vswitchd.sock"), "--state", Path.Combine(dir, "state.db"),
        ];
        return Proc.Run(TimeSpan.FromSeconds(60), "python3", args);
    }

    /// <summary>Type=notify: READY=1 once the API listens, WATCHDOG=1 every WATCHDOG_USEC/2, STOPPING=1 on SIGTERM, journald's log format.</summary>
    [NeedsProgramFact("python3", "tools/notify-listen.py plays systemd's part")]
    public void Under_systemd_it_notifies_ready_pets_the_watchdog_at_half_the_interval_and_logs_for_journald()
    {
        string dir = Directory.CreateTempSubdirectory("vst-sd").FullName;
        try
        {
            var r = UnderNotify(dir, "--watchdog-usec", "1000000", "--seconds", "3");
            Assert.True(r.ExitCode == 0, r.Output);
            var messages = r.StdOut.Split('\n').Select(l => Regex.Match(l, @"^\s*([0-9.]+) (\S+)$")).Where(m => m.Success)
                .Select(m => (At: double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), Text: m.Groups[2].Value)).ToList();
            Assert.Contains(messages, m => m.Text == "READY=1");
            Assert.Equal("STOPPING=1", messages[^1].Text);
            var pings = messages.Where(m => m.Text == "WATCHDOG=1").Select(m => m.At).ToList();
            Assert.True(pings.Count >= 4, $"{pings.Count} WATCHDOG=1 in 3 s at a 1 s watchdog:\n{r.Output}");
            var gaps = pings.Zip(pings.Skip(1), (a, b) => b - a).ToList();
            Assert.True(gaps.Max() < 0.9, $"a gap of {gaps.Max():F3} s between WATCHDOG=1 (every 0.5 s expected):\n{r.Output}");
            // journald's format: the priority in angle brackets, no timestamp; the ready line is still there.
            Assert.Matches(@"(?m)^<6>vswitchd\[0\] vswitchd ready \(", r.Output);
            Assert.DoesNotMatch(@"(?m)^\d\d:\d\d:\d\d info:", r.Output);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [NeedsProgramFact("python3", "tools/notify-listen.py plays systemd's part")]
    public void Without_WATCHDOG_USEC_it_notifies_ready_and_sends_no_watchdog_pings()
    {
        string dir = Directory.CreateTempSubdirectory("vst-sd").FullName;
        try
        {
            var r = UnderNotify(dir, "--seconds", "2");
            Assert.True(r.ExitCode == 0, r.Output);
            Assert.Contains("READY=1", r.StdOut);
            Assert.DoesNotContain("WATCHDOG=1", r.StdOut);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void The_watchdog_interval_comes_from_WATCHDOG_USEC_for_this_process_only()
    {
        Func<string, string?> Env(string? usec, string? pid) => k => k == "WATCHDOG_USEC" ? usec : k == "WATCHDOG_PID" ? pid : null;
        Assert.Equal(TimeSpan.FromSeconds(10), VSwitchd.Runtime.SystemdWatchdog.Interval(Env("10000000", null), 42));
        Assert.Equal(TimeSpan.FromSeconds(10), VSwitchd.Runtime.SystemdWatchdog.Interval(Env("10000000", "42"), 42));
        Assert.Null(VSwitchd.Runtime.SystemdWatchdog.Interval(Env("10000000", "41"), 42));
        Assert.Null(VSwitchd.Runtime.SystemdWatchdog.Interval(Env(null, null), 42));
        Assert.Null(VSwitchd.Runtime.SystemdWatchdog.Interval(Env("0", null), 42));
        Assert.Null(VSwitchd.Runtime.SystemdWatchdog.Interval(Env("x", null), 42));
    }

    /// <summary>tools/vswitchd.service with the placeholders filled as tools/install.sh does: systemd-analyze has nothing to say.</summary>
    [NeedsProgramFact("systemd-analyze", "Debian's systemd package has it (apt-get install systemd works without systemd as PID 1)")]
    public void The_unit_passes_systemd_analyze_verify()
    {
        string prefix = Directory.CreateTempSubdirectory("vst-unit").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(prefix, "bin"));
            File.CreateSymbolicLink(Path.Combine(prefix, "bin/vswitchd"), Repo.Vswitchd);
            string unit = File.ReadAllText(Path.Combine(Repo.Root, "tools/vswitchd.service"))
                .Replace("@PREFIX@", prefix).Replace("@SYSCONFDIR@", prefix + "/etc").Replace("@STATEDIR@", prefix + "/var/lib/vswitch");
            Assert.DoesNotContain("@", unit.Split('\n').Where(l => !l.StartsWith('#')).Aggregate("", (a, l) => a + l));
            string path = Path.Combine(prefix, "vswitchd.service");
            File.WriteAllText(path, unit);
            // --man=no: the manual pages are not installed here (the install test checks them through MANPATH).
            var r = Proc.Run(TimeSpan.FromSeconds(60), "systemd-analyze", "verify", "--man=no", path);
            Assert.True(r.ExitCode == 0 && r.Output.Trim().Length == 0, $"systemd-analyze verify: exit {r.ExitCode}\n{r.Output}");
            foreach (string line in new[] { "Type=notify", "Restart=on-failure", "WatchdogSec=", "RuntimeDirectory=vswitch", "StateDirectory=vswitch", "TimeoutStopSec=", "KillMode=" })
                Assert.Contains("\n" + line, unit);
            Assert.Contains($"ExecStart={prefix}/bin/vswitchd --config {prefix}/etc/vswitch/config.json --socket /run/vswitch/vswitchd.sock --state {prefix}/var/lib/vswitch/state.db", unit);

            // A mistake in the unit shows in systemd-analyze's output (the exit code alone stays 0 for parse errors).
            File.WriteAllText(path, unit.Replace("Type=notify", "Type=notifyy"));
            var bad = Proc.Run(TimeSpan.FromSeconds(60), "systemd-analyze", "verify", "--man=no", path);
            Assert.Contains("notifyy", bad.Output);
        }
        finally { Directory.Delete(prefix, recursive: true); }
    }
}
