using System.CommandLine;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace VSwitch.Ctl;

/// <summary>
/// vsctl: the command line for vswitchd's management API. Exit codes: 0 success; 1 the daemon
/// answered with an error or could not be reached; 2 a usage error.
/// </summary>
public static class Program
{
    public const int Ok = 0, Failed = 1, Usage = 2;
    public const string DefaultSocket = "/run/vswitch/vswitchd.sock";

    public static Task<int> Main(string[] args) => Run(args, Console.Out, Console.Error);

    public static async Task<int> Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var cli = new Cli(stdout, stderr);
        var root = new RootCommand("Control vswitchd, the userspace virtual switch, through its management API.");
        root.Options.Add(cli.Socket);
        root.Options.Add(cli.Json);

        root.Subcommands.Add(ShowCommand.Create(cli));
        root.Subcommands.Add(NetworkCommands.Create(cli));
        root.Subcommands.Add(PortCommands.Create(cli));
        root.Subcommands.Add(FdbCommands.Create(cli));
        root.Subcommands.Add(StatsCommands.Create(cli));
        root.Subcommands.Add(RulesCommands.Create(cli));
        root.Subcommands.Add(FlowsCommands.Create(cli));
        root.Subcommands.Add(TraceCommands.Create(cli));
        root.Subcommands.Add(RouteCommands.Create(cli));
        root.Subcommands.Add(NeighCommands.Create(cli));
        root.Subcommands.Add(OverlayCommands.Create(cli));
        root.Subcommands.Add(AttachCommands.Attach(cli));
        root.Subcommands.Add(AttachCommands.Detach(cli));
        root.Subcommands.Add(CompletionCommand.Create(root, cli)); // hidden: completion scripts from this tree
        root.Subcommands.Add(ManCommand.Create(root, cli));        // hidden: vsctl(1) from this tree

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors) stderr.WriteLine($"vsctl: {e.Message}");
            stderr.WriteLine("Try 'vsctl --help' for more information.");
            return Usage;
        }
        return await parsed.InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr });
    }
}

/// <summary>The global options and the plumbing every command shares: the API client, --json output, error reporting.</summary>
public sealed class Cli(TextWriter stdout, TextWriter stderr)
{
    public TextWriter Out { get; } = stdout;
    public TextWriter Error { get; } = stderr;

    public Option<string> Socket { get; } = new("--socket")
    {
        Description = "vswitchd's API socket ($VSWITCH_SOCKET when set)",
        HelpName = "PATH",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("VSWITCH_SOCKET") is { Length: > 0 } s ? s : Program.DefaultSocket,
    };

    public Option<bool> Json { get; } = new("--json")
    {
        Description = "Print the API's JSON answer as it is (indented), for scripts",
        Recursive = true,
    };

    /// <summary>An integer option whose bad value reads "--vlan: 'x' is not a number" (a usage error). Ranges are the daemon's to check.</summary>
    public static Option<int?> IntOption(string name, string description, string helpName = "N") => new(name)
    {
        Description = description,
        HelpName = helpName,
        CustomParser = r =>
        {
            string text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
            if (int.TryParse(text, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out int v)) return v;
            r.AddError($"{name}: '{text}' is not a number");
            return null;
        },
    };

    /// <summary>Runs a command against the API: any <see cref="CtlException"/> becomes "vsctl: message" and exit 1.</summary>
    public void SetAction(Command command, Func<Context, CancellationToken, Task<int>> action)
    {
        command.SetAction(async (parse, ct) =>
        {
            using var api = new ApiClient(parse.GetValue(Socket)!);
            try
            {
                return await action(new Context(this, parse, api, parse.GetValue(Json)), ct);
            }
            catch (CtlException e)
            {
                Error.WriteLine($"vsctl: {e.Message}");
                return Program.Failed;
            }
        });
    }
}

/// <summary>One command's run: the parsed line, the client and where to write.</summary>
public sealed record Context(Cli Cli, ParseResult Parse, ApiClient Api, bool Json)
{
    public TextWriter Out => Cli.Out;

    public T? Get<T>(Option<T> option) => Parse.GetValue(option);

    public T? Get<T>(Argument<T> argument) => Parse.GetValue(argument);

    /// <summary>The daemon's JSON as it is, indented; nothing for an empty answer (204).</summary>
    public void PrintJson(ApiResponse response)
    {
        if (string.IsNullOrWhiteSpace(response.Json)) return;
        System.Text.Json.JsonDocument doc;
        try { doc = System.Text.Json.JsonDocument.Parse(response.Json); }
        catch (System.Text.Json.JsonException)
        {
            Out.WriteLine(response.Json);
            return;
        }
        using var _ = doc;
        using var buffer = new MemoryStream();
        using (var w = new System.Text.Json.Utf8JsonWriter(buffer, new System.Text.Json.JsonWriterOptions { Indented = true }))
            doc.WriteTo(w);
        Out.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
    }
}
