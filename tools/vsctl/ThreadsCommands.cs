using System.CommandLine;
using System.Globalization;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary>
/// <c>vsctl threads [show]|pin|unpin|rebalance</c>: the datapath threads and the port receive queues each polls
/// (/v1/threads; OVS's <c>ovs-appctl dpif-netdev/pmd-rxq-show</c>, <c>pmd-rxq-affinity</c>, <c>pmd-rxq-rebalance</c>).
/// </summary>
public static class ThreadsCommands
{
    public static Command Create(Cli cli)
    {
        var threads = new Command("threads", "Datapath threads and the port receive queues each polls, with frames and share of busy time");
        var show = new Command("show", "List threads and their receive queues");
        show.Aliases.Add("ls");
        Cli.ListsByDefault(threads, show, c => cli.SetAction(c, async (ctx, ct) =>
        {
            var response = await ctx.Api.GetAsync("v1/threads", ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            Print(ctx.Out, response.Read(ApiJson.Default.ThreadViewArray));
            return Program.Ok;
        }));
        threads.Subcommands.Add(show);
        threads.Subcommands.Add(Pin(cli));
        threads.Subcommands.Add(Unpin(cli));
        threads.Subcommands.Add(Rebalance(cli));
        return threads;
    }

    private static Command Pin(Cli cli)
    {
        var port = new Argument<string>("PORT") { Description = "The port (vxlan0 for the VXLAN endpoint)" };
        var queue = new Argument<int>("QUEUE") { Description = "Its receive queue (0..rx-queues-1)" };
        var thread = new Argument<int>("THREAD") { Description = "The datapath thread (0..datapath.threads-1)" };
        var pin = new Command("pin", "Pin a port's receive queue to a thread (moved without loss; kept across restarts)") { port, queue, thread };
        cli.SetAction(pin, async (ctx, ct) =>
        {
            string p = ctx.Get(port)!;
            int q = ctx.Get(queue), t = ctx.Get(thread);
            var response = await ctx.Api.PostAsync("v1/threads/pin", new RxQueuePinRequest(p, q, t), ApiJson.Default.RxQueuePinRequest, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            ctx.Out.WriteLine($"receive queue {p}/{q} pinned to thread {t}");
            return Program.Ok;
        });
        return pin;
    }

    private static Command Unpin(Cli cli)
    {
        var port = new Argument<string>("PORT") { Description = "The port" };
        var queue = new Argument<int>("QUEUE") { Description = "Its receive queue" };
        var unpin = new Command("unpin", "Unpin a receive queue (it stays on its thread until a rebalance)") { port, queue };
        cli.SetAction(unpin, async (ctx, ct) =>
        {
            string p = ctx.Get(port)!;
            int q = ctx.Get(queue);
            var response = await ctx.Api.PostAsync("v1/threads/pin", new RxQueuePinRequest(p, q, null), ApiJson.Default.RxQueuePinRequest, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            ctx.Out.WriteLine($"receive queue {p}/{q} unpinned");
            return Program.Ok;
        });
        return unpin;
    }

    private static Command Rebalance(Cli cli)
    {
        var assign = new Option<string>("--assign") { Description = "cycles (by measured load; default) or roundrobin", HelpName = "HOW" };
        var rebalance = new Command("rebalance", "Place the unpinned receive queues again over the threads") { assign };
        cli.SetAction(rebalance, async (ctx, ct) =>
        {
            var response = await ctx.Api.PostAsync("v1/threads/rebalance", new RxQueueRebalanceRequest(ctx.Get(assign)), ApiJson.Default.RxQueueRebalanceRequest, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            Print(ctx.Out, response.Read(ApiJson.Default.ThreadViewArray));
            return Program.Ok;
        });
        return rebalance;
    }

    /// <summary>One row per (thread, queue), like pmd-rxq-show: the thread's CPU and busy time, then each queue's frames and share.</summary>
    public static void Print(TextWriter w, ThreadView[] threads)
    {
        var table = new TableWriter("THREAD", "CPU-S", "BUSY-S", "PORT", "QUEUE", "FRAMES", "USAGE", "PINNED");
        foreach (var t in threads)
        {
            string cpu = t.CpuSeconds.ToString("0.00", CultureInfo.InvariantCulture);
            string busy = t.BusySeconds.ToString("0.000", CultureInfo.InvariantCulture);
            string name = t.Running ? t.Name : t.Name + " (stopped)";
            if (t.RxQueues.Length == 0) table.AddRow(name, cpu, busy, "-", "-", "-", "-", "");
            foreach (var q in t.RxQueues)
                table.AddRow(name, cpu, busy, q.Port, q.Queue, q.Frames, q.SharePercent.ToString("0.0", CultureInfo.InvariantCulture) + "%", q.Pinned ? "yes" : "");
        }
        table.Write(w);
        w.WriteLine("USAGE: the queue's share of its thread's busy time since it came to that thread (OVS's pmd-rxq-show usage).");
    }
}
