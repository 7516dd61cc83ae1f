using System.CommandLine;
using System.Globalization;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary>
/// <c>vsctl service ls|add|inspect|rm</c> and <c>vsctl service backend add|del|drain|undrain</c>: /v1/services,
/// load-balanced virtual IPs (Maglev over the backends; connections tracked, so a change moves only new ones).
/// </summary>
public static class ServiceCommands
{
    public static Command Create(Cli cli)
    {
        var service = new Command("service", "Services: load-balanced virtual IPs (VIP:port -> backends)");
        service.Aliases.Add("svc");
        var ls = new Command("ls", "List services and their backends");
        ls.Aliases.Add("list");
        Cli.ListsByDefault(service, ls, c => ConfigureList(cli, c));
        service.Subcommands.Add(ls);
        service.Subcommands.Add(Add(cli));
        service.Subcommands.Add(Inspect(cli));
        service.Subcommands.Add(Remove(cli));
        service.Subcommands.Add(Backend(cli));
        return service;
    }

    private static void ConfigureList(Cli cli, Command command) =>
        cli.SetAction(command, async (ctx, ct) =>
        {
            var response = await ctx.Api.GetAsync("v1/services", ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var table = new TableWriter("NAME", "VIP", "PORTS", "AFFINITY", "BACKENDS", "HEALTHY", "CONNECTIONS", "SELECTOR").Cut("SELECTOR");
            foreach (var s in response.Read(ApiJson.Default.ServiceViewArray))
                table.AddRow(s.Name, s.Vip, Ports(s), s.Affinity, s.Backends.Length, $"{s.Backends.Count(b => b.InTable)}/{s.Backends.Length}",
                    s.Backends.Sum(b => b.Connections), Labels.Format(s.Selector));
            ctx.Write(table);
            return Program.Ok;
        });

    private static string Ports(ServiceView s) =>
        string.Join(',', s.Ports.Select(p => p.Port == p.TargetPort ? $"{p.Port}/{p.Protocol}" : $"{p.Port}:{p.TargetPort}/{p.Protocol}"));

    private static Command Add(Cli cli)
    {
        var name = new Argument<string>("NAME") { Description = "The service's name (a DNS label: DNS answers it with the VIP)" };
        var vip = new Option<string>("--vip") { Description = "Its virtual IP, outside every network's subnet (e.g. 10.96.0.10)", HelpName = "IP", Required = true };
        var port = new Option<string[]>("--port")
        {
            Description = "PORT[:TARGET]/tcp|udp, e.g. 80/tcp or 80:8080/tcp (repeatable)", HelpName = "PORT/PROTO", Required = true,
            AllowMultipleArgumentsPerToken = false,
        };
        var affinity = new Option<string>("--affinity") { Description = "none (default: per connection) or client-ip (one client, one backend)", HelpName = "MODE" };
        affinity.AcceptOnlyFromAmong("none", "client-ip");
        var affinityTimeout = new Option<string>("--affinity-timeout") { Description = "With client-ip: how long affinity is kept (e.g. 3h; default 3h)", HelpName = "DURATION" };
        var sel = new Option<string[]>("--selector")
        {
            Description = "Backends: the attachments with these labels, followed as they come and go (app=web; repeatable)",
            HelpName = "KEY=VALUE", AllowMultipleArgumentsPerToken = false,
        };
        var noHealth = new Option<bool>("--no-health-check") { Description = "Probe no backend (every backend counts as healthy)" };
        var interval = new Option<string>("--health-interval") { Description = "Time between probes of a backend (default 1s)", HelpName = "DURATION" };
        var timeout = new Option<string>("--health-timeout") { Description = "A probe fails after this (default 500ms)", HelpName = "DURATION" };
        var fall = Cli.IntOption("--health-fall", "Failures in a row that take a backend out (default 2)");
        var rise = Cli.IntOption("--health-rise", "Successes in a row that bring it back (default 2)");
        var path = new Option<string>("--health-path") { Description = "HTTP GET this path (2xx/3xx healthy) instead of a TCP connect", HelpName = "PATH" };
        var add = new Command("add", "Create a service") { name, vip, port, affinity, affinityTimeout, sel, noHealth, interval, timeout, fall, rise, path };
        add.Validators.Add(r =>
        {
            if (r.GetResult(affinityTimeout) is not null && r.GetValue(affinity) != "client-ip") r.AddError("--affinity-timeout needs --affinity client-ip");
        });
        cli.SetAction(add, async (ctx, ct) =>
        {
            var body = new ServiceRequest
            {
                Name = ctx.Get(name), Vip = ctx.Get(vip), Ports = ctx.Get(port), Affinity = ctx.Get(affinity),
                AffinityTimeoutSeconds = ctx.Get(affinityTimeout) is { } at ? (int)(Duration(at, "--affinity-timeout") / 1000) : null,
                Selector = AttachCommands.ParseLabels(ctx.Get(sel)),
                HealthCheck = new HealthCheckRequest
                {
                    Enabled = ctx.Get(noHealth) ? false : null,
                    IntervalMs = ctx.Get(interval) is { } i ? (int)Duration(i, "--health-interval") : null,
                    TimeoutMs = ctx.Get(timeout) is { } t ? (int)Duration(t, "--health-timeout") : null,
                    Fall = ctx.Get(fall), Rise = ctx.Get(rise), Path = ctx.Get(path),
                },
            };
            var response = await ctx.Api.PostAsync("v1/services", body, ApiJson.Default.ServiceRequest, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var s = response.Read(ApiJson.Default.ServiceView);
            ctx.Out.WriteLine($"service {s.Name} added: {s.Vip} {Ports(s)}, affinity {s.Affinity}" +
                (s.Selector.Count > 0 ? $", selector {Labels.Format(s.Selector)} ({s.Backends.Length} backend(s))" : ""));
            return Program.Ok;
        });
        return add;
    }

    /// <summary>1500ms, 2s, 90m, 3h; a bare number is seconds. Milliseconds out; a bad one is a usage error naming it.</summary>
    internal static long Duration(string text, string option)
    {
        string s = text.Trim().ToLowerInvariant();
        (string num, long unit) = s.EndsWith("ms", StringComparison.Ordinal) ? (s[..^2], 1L)
            : s.EndsWith('s') ? (s[..^1], 1000L) : s.EndsWith('m') ? (s[..^1], 60_000L) : s.EndsWith('h') ? (s[..^1], 3_600_000L) : (s, 1000L);
        if (!double.TryParse(num, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double v) || v <= 0 || v * unit > int.MaxValue * 1000.0)
            throw new CtlException($"{option}: '{text}' is not a duration (e.g. 500ms, 2s, 90m, 3h)", kind: ErrorKind.Invalid);
        return (long)Math.Round(v * unit);
    }

    private static Command Inspect(Cli cli)
    {
        var name = new Argument<string>("NAME") { Description = "The service's name" };
        var inspect = new Command("inspect", "Show one service with its backends: weight, state, health, slots, connections, packets, bytes") { name };
        cli.SetAction(inspect, async (ctx, ct) =>
        {
            var response = await ctx.Api.GetAsync("v1/services/" + ApiClient.Escape(ctx.Get(name)!), ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var s = response.Read(ApiJson.Default.ServiceView);
            var w = ctx.Out;
            var h = s.HealthCheck;
            w.WriteLine($"name:      {s.Name}");
            w.WriteLine($"vip:       {s.Vip}");
            w.WriteLine($"ports:     {Ports(s)}");
            w.WriteLine($"affinity:  {s.Affinity}{(s.Affinity == "client-ip" ? $" (timeout {s.AffinityTimeoutSeconds}s; {s.AffinityClients ?? 0} clients remembered, {s.AffinityHits ?? 0} connections sent back to theirs)" : "")}");
            w.WriteLine($"selector:  {(s.Selector.Count == 0 ? "-" : Labels.Format(s.Selector))}");
            w.WriteLine($"health:    {(h.Enabled ? $"{(h.Path is null ? "tcp connect" : "GET " + h.Path)} every {h.IntervalMs}ms, timeout {h.TimeoutMs}ms, out after {h.Fall}, back after {h.Rise}" : "off")}");
            w.WriteLine($"table:     maglev, {s.TableSize} slots");
            w.WriteLine();
            var table = new TableWriter("BACKEND", "WEIGHT", "SOURCE", "STATE", "HEALTH", "SLOTS", "CONNS", "TOTAL", "PACKETS", "BYTES", "DETAIL").Cut("DETAIL");
            foreach (var b in s.Backends)
                table.AddRow(b.Address, b.Weight, b.Source, b.State, b.Health, b.Slots, b.Connections, b.ConnectionsTotal, b.Packets, b.Bytes, b.HealthDetail);
            ctx.Write(table);
            return Program.Ok;
        });
        return inspect;
    }

    private static Command Remove(Cli cli)
    {
        var name = new Argument<string>("NAME") { Description = "The service's name" };
        var rm = new Command("rm", "Delete a service (its open connections go on until they end)") { name };
        rm.Aliases.Add("remove");
        rm.Aliases.Add("del");
        cli.SetAction(rm, async (ctx, ct) =>
        {
            string n = ctx.Get(name)!;
            var response = await ctx.Api.DeleteAsync("v1/services/" + ApiClient.Escape(n), ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            ctx.Out.WriteLine($"service {n} removed");
            return Program.Ok;
        });
        return rm;
    }

    private static Command Backend(Cli cli)
    {
        var backend = new Command("backend", "A service's backends");
        // One pair of arguments per command: the actions capture them.
        var (svc, addr) = Args();
        var weight = Cli.IntOption("--weight", "Its share of new connections relative to the others (1..1000, default 1)");
        var add = new Command("add", "Add a backend (again: change its weight)") { svc, addr, weight };
        cli.SetAction(add, async (ctx, ct) =>
        {
            var body = new BackendRequest { Address = ctx.Get(addr), Weight = ctx.Get(weight) };
            var response = await ctx.Api.PostAsync($"v1/services/{ApiClient.Escape(ctx.Get(svc)!)}/backends", body, ApiJson.Default.BackendRequest, ct);
            return Done(ctx, response, $"service {ctx.Get(svc)}: backend {ctx.Get(addr)} added");
        });
        backend.Subcommands.Add(add);

        var (svc2, addr2) = Args();
        var del = new Command("del", "Remove a backend added by address (its connections go on)") { svc2, addr2 };
        del.Aliases.Add("rm");
        cli.SetAction(del, async (ctx, ct) =>
        {
            var response = await ctx.Api.DeleteAsync($"v1/services/{ApiClient.Escape(ctx.Get(svc2)!)}/backends/{ApiClient.Escape(ctx.Get(addr2)!)}", ct);
            return Done(ctx, response, $"service {ctx.Get(svc2)}: backend {ctx.Get(addr2)} removed");
        });
        backend.Subcommands.Add(del);

        var (svc3, addr3) = Args();
        var drain = new Command("drain", "Drain a backend: its connections go on, new ones go to the others") { svc3, addr3 };
        cli.SetAction(drain, async (ctx, ct) =>
        {
            var response = await ctx.Api.PostAsync($"v1/services/{ApiClient.Escape(ctx.Get(svc3)!)}/backends/{ApiClient.Escape(ctx.Get(addr3)!)}/drain",
                new BackendRequest(), ApiJson.Default.BackendRequest, ct);
            return Done(ctx, response, $"service {ctx.Get(svc3)}: backend {ctx.Get(addr3)} draining");
        });
        backend.Subcommands.Add(drain);

        var (svc4, addr4) = Args();
        var undrain = new Command("undrain", "End a drain: the backend takes new connections again") { svc4, addr4 };
        cli.SetAction(undrain, async (ctx, ct) =>
        {
            var response = await ctx.Api.DeleteAsync($"v1/services/{ApiClient.Escape(ctx.Get(svc4)!)}/backends/{ApiClient.Escape(ctx.Get(addr4)!)}/drain", ct);
            return Done(ctx, response, $"service {ctx.Get(svc4)}: backend {ctx.Get(addr4)} takes new connections");
        });
        backend.Subcommands.Add(undrain);
        return backend;
    }

    private static (Argument<string>, Argument<string>) Args() =>
        (new Argument<string>("SERVICE") { Description = "The service's name" },
         new Argument<string>("IP:PORT") { Description = "The backend: IP:PORT, or IP (each service port's target port)" });

    private static int Done(Context ctx, ApiResponse response, string text)
    {
        if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
        ctx.Out.WriteLine(text);
        return Program.Ok;
    }
}
