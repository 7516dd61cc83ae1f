using System.Text.Json.Nodes;
using PuppeteerSharp;

namespace VSwitch.Integration.Tests;

/// <summary>
/// Issue 17, the dashboard in Debian's headless chromium (PuppeteerSharp with ExecutablePath: no browser download):
/// the page loads without a console error, lists the switch's ports, a port's rate rises while iperf3 runs through it,
/// and a trace entered in the form ends in output:PORT. Served by vswitchd's read-only --http listener.
/// </summary>
[Collection("netns")]
public class DashboardTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const string Chromium = "/usr/bin/chromium";

    private static string MacOf(TestNetns ns, string dev) =>
        (string)JsonNode.Parse(ns.Exec("ip", "-j", "link", "show", "dev", dev))!.AsArray()[0]!["address"]!;

    [RootFact]
    public async Task The_dashboard_shows_ports_live_rates_and_a_trace_in_headless_chromium()
    {
        Assert.True(File.Exists(Chromium), "chromium is installed by tools/test.sh");
        using var a = new TestNetns("vdash-");
        using var b = new TestNetns("vdash-");
        string s = Names.Random("");
        string pa = "dba" + s, pb = "dbb" + s;
        int httpPort = 20000 + Random.Shared.Next(30000);
        var config = new JsonObject
        {
            ["networks"] = new JsonArray(new JsonObject { ["name"] = "blue", ["subnet"] = "10.93.1.0/24", ["gateway"] = "10.93.1.254" }),
            ["ports"] = new JsonArray(
                new JsonObject { ["name"] = pa, ["type"] = "tap", ["network"] = "blue", ["netns"] = a.Name, ["addresses"] = new JsonArray("10.93.1.1/24") },
                new JsonObject { ["name"] = pb, ["type"] = "tap", ["network"] = "blue", ["netns"] = b.Name, ["addresses"] = new JsonArray("10.93.1.2/24") }),
        }.ToJsonString();
        using var d = Vswitchd.Start(config, "--http", $"127.0.0.1:{httpPort}");
        Assert.Equal(0, a.TryExec(TimeSpan.FromSeconds(20), "ping", "-c", "2", "-i", "0.2", "10.93.1.2").ExitCode);

        string profile = Directory.CreateTempSubdirectory("vst-chromium").FullName;
        var errors = new List<string>();
        System.Diagnostics.Process? srv = null, client = null;
        await using var browser = await Puppeteer.LaunchAsync(new LaunchOptions
        {
            Headless = true,
            ExecutablePath = Chromium,
            UserDataDir = profile,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        try
        {
            var page = await browser.NewPageAsync();
            await page.SetViewportAsync(new ViewPortOptions { Width = 1400, Height = 1000 });
            page.Console += (_, e) => { if (e.Message.Type == ConsoleType.Error) lock (errors) errors.Add(e.Message.Text); };
            page.PageError += (_, e) => { lock (errors) errors.Add(e.Message); };
            await page.GoToAsync($"http://127.0.0.1:{httpPort}/ui/", WaitUntilNavigation.DOMContentLoaded);
            // The ports table lists the running switch's ports.
            await page.WaitForSelectorAsync($"#ports tr[data-port='{pa}']", new WaitForSelectorOptions { Timeout = 15000 });
            await page.WaitForSelectorAsync($"#ports tr[data-port='{pb}']", new WaitForSelectorOptions { Timeout = 15000 });
            await page.WaitForSelectorAsync($"#topology circle[data-port='{pa}']", new WaitForSelectorOptions { Timeout = 15000 });

            // The rate of A rises while iperf3 runs through it (Server-Sent Events, once a second).
            srv = b.Start("iperf3", "-s", "-1", "-B", "10.93.1.2");
            Wait.Until(() => b.TryExec(TimeSpan.FromSeconds(5), "ss", "-ltn").StdOut.Contains(":5201"), TimeSpan.FromSeconds(10), "iperf3 to listen");
            client = a.Start("iperf3", "-c", "10.93.1.2", "-t", "6");
            await page.WaitForFunctionAsync($"() => Number(document.querySelector(\"#ports tr[data-port='{pa}']\").dataset.rxBps) > 1e8",
                new WaitForFunctionOptions { Timeout = 15000, PollingInterval = 200 });
            string rate = await page.EvaluateExpressionAsync<string>($"document.querySelector(\"#ports tr[data-port='{pa}'] [data-field=rxBps]\").textContent");
            output.WriteLine($"{pa} rx while iperf3 runs: {rate}");

            // A trace from the form: A's ICMP to B's MAC ends in output:B.
            string spec = $"in_port={pa},icmp,dl_src={MacOf(a, pa)},dl_dst={MacOf(b, pb)},nw_src=10.93.1.1,nw_dst=10.93.1.2";
            await page.TypeAsync("#trace-spec", spec);
            await page.ClickAsync("#trace-form button");
            await page.WaitForSelectorAsync("#trace-actions", new WaitForSelectorOptions { Timeout = 10000 });
            string actions = await page.EvaluateExpressionAsync<string>("document.querySelector('#trace-actions').textContent");
            Assert.Contains($"output:{pb}", actions);

            // The flow table with a filter in rule syntax.
            await page.TypeAsync("#flow-filter", "tcp,tp_dst=5201");
            await page.ClickAsync("#flow-form button");
            // The table shows the filtered flows once the answer is in: all of them, and only them, go to port 5201.
            await page.WaitForFunctionAsync("() => { const f = [...document.querySelectorAll('#flows tbody td.flow:nth-child(2)')]; "
                + "return f.length > 0 && f.every(c => c.textContent.includes('tp_dst=5201')); }", new WaitForFunctionOptions { Timeout = 10000 });

            if (Environment.GetEnvironmentVariable("VSWITCH_DASHBOARD_SCREENSHOT") is { Length: > 0 } shot)
                await page.ScreenshotAsync(shot, new ScreenshotOptions { FullPage = true });
            // The page reports a failed read in its header instead of throwing: that is an error too.
            string summary = await page.EvaluateExpressionAsync<string>("document.querySelector('#summary').textContent");
            Assert.DoesNotContain("cannot read", summary);
            Assert.Contains("2 port(s)", summary);
            await page.WaitForFunctionAsync("() => document.querySelectorAll('#drops tbody tr').length > 0", new WaitForFunctionOptions { Timeout = 10000 });
            lock (errors) Assert.True(errors.Count == 0, "console errors: " + string.Join("; ", errors));
        }
        finally
        {
            if (client is not null) Proc.KillQuietly(client);
            if (srv is not null) Proc.KillQuietly(srv);
            await browser.CloseAsync();
            try { Directory.Delete(profile, true); } catch (IOException) { }
        }
    }

    [RootFact]
    public void The_http_listener_only_reads()
    {
        int httpPort = 20000 + Random.Shared.Next(30000);
        using var d = Vswitchd.Start("""{"networks": [{"name": "blue"}]}""", "--http", $"127.0.0.1:{httpPort}");
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}") };
        Assert.True(http.GetAsync("/v1/show").Result.IsSuccessStatusCode);
        Assert.Contains("<title>vswitchd</title>", http.GetStringAsync("/ui/").Result);
        var refused = http.PostAsync("/v1/rules", new StringContent("""{"rule": "actions=drop"}""", System.Text.Encoding.UTF8, "application/json")).Result;
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("read-only", refused.Content.ReadAsStringAsync().Result);
    }

    [RootFact]
    public void Vsctl_ui_serves_the_dashboard_through_the_socket_with_the_callers_role()
    {
        using var d = Vswitchd.Start("""{"networks": [{"name": "blue"}]}""");
        var psi = new System.Diagnostics.ProcessStartInfo(Repo.Vsctl) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "--socket", d.Socket, "ui", "--port", "0" }) psi.ArgumentList.Add(arg);
        using var ui = System.Diagnostics.Process.Start(psi)!;
        try
        {
            var first = ui.StandardOutput.ReadLineAsync();
            // Its stderr is read only once it has failed: while it serves, ReadToEnd would wait for ever.
            if (!first.Wait(TimeSpan.FromSeconds(30)) || first.Result is null)
            {
                Proc.KillQuietly(ui);
                Assert.Fail("vsctl ui said nothing: " + ui.StandardError.ReadToEnd());
            }
            var url = System.Text.RegularExpressions.Regex.Match(first.Result!, @"http://127\.0\.0\.1:\d+/ui/").Value;
            Assert.True(url.Length > 0, first.Result);
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            Assert.Contains("<title>vswitchd</title>", http.GetStringAsync(url).Result);
            // Root's role comes through the socket: a change is allowed here (the --http listener refuses it).
            var base_ = url[..^"/ui/".Length];
            var added = http.PostAsync(base_ + "/v1/rules", new StringContent("""{"rule": "priority=7,icmp,actions=drop"}""", System.Text.Encoding.UTF8, "application/json")).Result;
            Assert.True(added.IsSuccessStatusCode, added.Content.ReadAsStringAsync().Result);
        }
        finally { Proc.KillQuietly(ui); }
    }
}
