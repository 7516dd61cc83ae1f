using System.CommandLine;
using System.Globalization;
using VSwitch.Api;

namespace VSwitch.Ctl;

/// <summary><c>vsctl ipfix set|show|off</c>: flow export to an IPFIX collector (RFC 7011 over UDP), /v1/ipfix.</summary>
public static class IpfixCommands
{
    public static Command Create(Cli cli)
    {
        var ipfix = new Command("ipfix", "Export flows to an IPFIX collector (nfcapd, pmacct, ...) over UDP");
        var show = new Command("show", "The exporter's settings and what it sent");
        Cli.ListsByDefault(ipfix, show, c => cli.SetAction(c, async (ctx, ct) =>
        {
            var response = await ctx.Api.GetAsync("v1/ipfix", ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            Print(ctx.Out, response.Read(ApiJson.Default.IpfixView));
            return Program.Ok;
        }));
        ipfix.Subcommands.Add(show);

        var collector = new Option<string>("--collector") { Description = "Where to send: HOST:PORT ([ADDRESS]:PORT for IPv6), e.g. 127.0.0.1:4739", HelpName = "HOST:PORT", Required = true };
        var sampling = Cli.IntOption("--sampling", "Export one flow in N, chosen by its key's hash (default 1: every flow)");
        var active = Cli.IntOption("--active-timeout", "Seconds between records of a flow that goes on (default 60)", "S");
        var idle = Cli.IntOption("--idle-timeout", "Seconds without packets after which a flow's last record goes (default 15)", "S");
        var domain = new Option<long?>("--domain-id") { Description = "The observation domain id in every message (default 0)", HelpName = "N" };
        var set = new Command("set", "Start exporting (or change the export; stored: it survives a restart)") { collector, sampling, active, idle, domain };
        cli.SetAction(set, async (ctx, ct) =>
        {
            var body = new IpfixRequest(ctx.Get(collector), ctx.Get(sampling), ctx.Get(active), ctx.Get(idle), ctx.Get(domain));
            var response = await ctx.Api.PutAsync("v1/ipfix", body, ApiJson.Default.IpfixRequest, ct);
            if (ctx.Json) { ctx.PrintJson(response); return Program.Ok; }
            var v = response.Read(ApiJson.Default.IpfixView);
            ctx.Out.WriteLine($"exporting flows to {v.Collector} (IPFIX over UDP, sampling 1 in {v.Sampling}, active {v.ActiveTimeoutSeconds}s, idle {v.IdleTimeoutSeconds}s, domain {v.DomainId})");
            return Program.Ok;
        });
        ipfix.Subcommands.Add(set);

        var off = new Command("off", "Stop exporting (the flows' last counts are sent first)");
        cli.SetAction(off, async (ctx, ct) =>
        {
            await ctx.Api.DeleteAsync("v1/ipfix", ct);
            if (!ctx.Json) ctx.Out.WriteLine("IPFIX export off");
            return Program.Ok;
        });
        ipfix.Subcommands.Add(off);
        return ipfix;
    }

    private static void Print(TextWriter w, IpfixView v)
    {
        if (!v.Enabled) { w.WriteLine("IPFIX export: off"); return; }
        static string N(long n) => n.ToString(CultureInfo.InvariantCulture);
        w.WriteLine($"IPFIX export to {v.Collector}");
        w.WriteLine($"  sampling 1 in {v.Sampling}, active timeout {v.ActiveTimeoutSeconds}s, idle timeout {v.IdleTimeoutSeconds}s, domain {v.DomainId}, templates every {v.TemplateRefreshSeconds}s");
        w.WriteLine($"  sent {N(v.Messages)} messages, {N(v.Records)} flow records, {N(v.Templates)} template sets; following {N(v.Flows)} flows");
        if (v.SendErrors > 0) w.WriteLine($"  send errors: {N(v.SendErrors)} (last: {v.LastError})");
    }
}
