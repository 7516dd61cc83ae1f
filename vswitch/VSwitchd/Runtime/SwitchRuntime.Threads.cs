using System.Globalization;
using VSwitch.Api;

namespace VSwitchd.Runtime;

public sealed partial class SwitchRuntime
{
    /// <summary>The datapath threads with their ports, frames received and CPU time (read from /proc: nothing in the datapath measures it).</summary>
    public ThreadView[] ListThreads()
    {
        var cpu = ThreadCpuSeconds();
        var topo = Datapath.Topology;
        return Threads.Select(t =>
        {
            long rx = 0;
            var counters = t.Context.Counters.Ports;
            for (int i = 0; i < counters.Length; i++) rx += counters[i].RxPackets;
            var ports = topo.Ports.Where(p => p.Id % Options.Threads == t.Index).Select(p => p.Name).ToArray();
            return new ThreadView(t.Index, t.Name, ports, rx, Math.Round(cpu.GetValueOrDefault(t.Name), 3), t.IsRunning);
        }).ToArray();
    }

    /// <summary>utime + stime of each thread of this process, by name (/proc/self/task/TID/stat, fields 14 and 15, in clock ticks).</summary>
    private static Dictionary<string, double> ThreadCpuSeconds()
    {
        var result = new Dictionary<string, double>();
        // USER_HZ is 100 on every Linux architecture .NET runs on (sysconf(_SC_CLK_TCK)).
        const double ticksPerSecond = 100;
        try
        {
            foreach (var dir in Directory.EnumerateDirectories("/proc/self/task"))
            {
                try
                {
                    string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                    // The name is in parentheses and may hold blanks: the fields start after the last ')'.
                    int open = stat.IndexOf('('), close = stat.LastIndexOf(')');
                    if (open < 0 || close < open) continue;
                    string name = stat[(open + 1)..close];
                    var fields = stat[(close + 2)..].Split(' ');
                    // fields[0] is field 3 (state): utime is field 14, stime 15.
                    double ticks = double.Parse(fields[11], CultureInfo.InvariantCulture) + double.Parse(fields[12], CultureInfo.InvariantCulture);
                    result[name] = result.GetValueOrDefault(name) + ticks / ticksPerSecond;
                }
                catch (IOException) { } // the thread ended meanwhile
            }
        }
        catch (IOException) { }
        return result;
    }
}
