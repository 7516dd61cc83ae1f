using System.CommandLine;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary>
/// <c>vsctl restart [--binary PATH]</c>: a hitless restart or upgrade (POST /v1/restart). The running vswitchd
/// starts a new process, hands it every open port, the API socket and the state lock, and exits once the new one
/// forwards; on failure the old one keeps running and the answer says why.
/// </summary>
public static class RestartCommand
{
    /// <summary>A new process's .NET start and its runtime built over every port: longer than an ordinary request.</summary>
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    public static Command Create(Cli cli)
    {
        var binary = new Option<string>("--binary") { Description = "The vswitchd to start (an upgrade); default: the binary running now", HelpName = "PATH" };
        var restart = new Command("restart", "Restart vswitchd without losing traffic: a new process takes over the ports, then the old one exits") { binary };
        cli.SetAction(restart, async (ctx, ct) =>
        {
            string? path = ctx.Get(binary);
            // The daemon checks the path in its own file system; an absolute one means the same there.
            if (path is not null && !Path.IsPathRooted(path)) path = Path.GetFullPath(path);
            if (!ctx.Json) ctx.Cli.Error.WriteLine("restarting: starting the new vswitchd and handing the ports over...");
            var response = await ctx.Api.PostAsync("v1/restart", new RestartRequest(path), ApiJson.Default.RestartRequest, Timeout, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var r = response.Read(ApiJson.Default.RestartView);
            ctx.Out.WriteLine($"restarted: pid {r.OldPid} -> {r.NewPid} ({r.Binary}), {r.Ports} port(s) handed over, " +
                $"datapath gap {r.GapMs:0.0} ms, took {r.TookMs / 1000:0.0} s");
            return Program.Ok;
        });
        return restart;
    }
}
