using System.CommandLine;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace VSwitch.Ctl;

/// <summary>
/// vsctl: the command line for vswitchd's management API. Exit codes (the README's table): 0 success;
/// 1 any other error; 2 usage (the command line does not parse); 3 not found; 4 conflict; 5 the daemon cannot
/// be reached (or is stopping); 6 a value the daemon refuses; 7 forbidden (the caller's role does not allow it). With --json
/// an error is a JSON object on stdout.
/// </summary>
public static class Program
{
    public const int Ok = 0, Failed = 1, Usage = 2, NotFound = 3, Conflict = 4, Unreachable = 5, Invalid = 6, Forbidden = 7;
    public const string DefaultSocket = "/run/vswitch/vswitchd.sock";

    /// <summary>The exit code of a kind of failure.</summary>
    public static int ExitCode(ErrorKind kind) => kind switch
    {
        ErrorKind.Usage => Usage,
        ErrorKind.NotFound => NotFound,
        ErrorKind.Conflict => Conflict,
        ErrorKind.Unreachable => Unreachable,
        ErrorKind.Invalid => Invalid,
        ErrorKind.Forbidden => Forbidden,
        _ => Failed,
    };

    /// <summary>The name of a kind of failure in a --json error's "code".</summary>
    public static string Code(ErrorKind kind) => kind switch
    {
        ErrorKind.Usage => "usage",
        ErrorKind.NotFound => "not-found",
        ErrorKind.Conflict => "conflict",
        ErrorKind.Unreachable => "unreachable",
        ErrorKind.Invalid => "invalid",
        ErrorKind.Forbidden => "forbidden",
        _ => "error",
    };

    public static Task<int> Main(string[] args) => Run(args, Console.Out, Console.Error);

    public static async Task<int> Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var cli = new Cli(stdout, stderr);
        var root = new RootCommand("Control vswitchd, the userspace virtual switch, through its management API.");
        root.Options.Add(cli.Socket);
        root.Options.Add(cli.Json);
        root.Options.Add(cli.Wide);

        root.Subcommands.Add(ShowCommand.Create(cli));
        root.Subcommands.Add(NetworkCommands.Create(cli));
        root.Subcommands.Add(PortCommands.Create(cli));
        root.Subcommands.Add(FdbCommands.Create(cli));
        root.Subcommands.Add(StatsCommands.Create(cli));
        root.Subcommands.Add(ThreadsCommands.Create(cli));
        root.Subcommands.Add(RulesCommands.Create(cli));
        root.Subcommands.Add(FlowsCommands.Create(cli));
        root.Subcommands.Add(ConntrackCommands.Create(cli));
        root.Subcommands.Add(PolicyCommands.Create(cli));
        root.Subcommands.Add(TraceCommands.Create(cli));
        root.Subcommands.Add(CaptureCommands.Create(cli));
        root.Subcommands.Add(MirrorCommands.Create(cli));
        root.Subcommands.Add(IpfixCommands.Create(cli));
        root.Subcommands.Add(TopCommand.Create(cli));
        root.Subcommands.Add(UiCommand.Create(cli));
        root.Subcommands.Add(RouteCommands.Create(cli));
        root.Subcommands.Add(NeighCommands.Create(cli));
        root.Subcommands.Add(OverlayCommands.Create(cli));
        root.Subcommands.Add(PublishCommands.Create(cli));
        root.Subcommands.Add(OverlayEndpointCommands.Create(cli));
        root.Subcommands.Add(AttachCommands.Attach(cli));
        root.Subcommands.Add(AttachCommands.Detach(cli));
        root.Subcommands.Add(ServiceCommands.Create(cli));
        root.Subcommands.Add(AuditCommands.Create(cli));
        root.Subcommands.Add(ClusterCommands.Create(cli));
        root.Subcommands.Add(RestartCommand.Create(cli));
        root.Subcommands.Add(CompletionCommand.Create(root, cli)); // hidden: completion scripts from this tree
        root.Subcommands.Add(ManCommand.Create(root, cli));        // hidden: vsctl(1) from this tree

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            bool json;
            try { json = parsed.GetValue(cli.Json); }
            catch (InvalidOperationException) { json = args.Contains("--json"); }
            if (json)
            {
                cli.WriteJsonError(string.Join(" ", parsed.Errors.Select(e => e.Message)), ErrorKind.Usage);
                return Usage;
            }
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
        Description = "Print the API's JSON answer as it is (indented), for scripts; an error is {\"error\", \"code\", ...} on stdout",
        Recursive = true,
    };

    /// <summary>The width tables are cut to, unless --wide.</summary>
    public const int TableWidth = 120;

    public Option<bool> Wide { get; } = new("--wide")
    {
        Description = $"Print tables whole: long cells are otherwise cut (…) to fit {TableWidth} columns, and flows are abbreviated",
        Recursive = true,
    };

    /// <summary>
    /// An on|off option (as <c>ethtool -K</c>); read it with <see cref="OnOff"/>: absent is null, so the daemon's
    /// default applies. A string, not a bool: System.CommandLine takes only true/false after a bool option.
    /// </summary>
    public static Option<string> OnOffOption(string name, string description)
    {
        var o = new Option<string>(name) { Description = description, HelpName = "on|off" };
        o.AcceptOnlyFromAmong("on", "off");
        return o;
    }

    public static bool? OnOff(Context ctx, Option<string> option) => ctx.Get(option) switch { "on" => true, "off" => false, _ => null };

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

    /// <summary>
    /// Runs a command against the API: any <see cref="CtlException"/> becomes "vsctl: message" on stderr (with
    /// --json, a JSON error on stdout) and the exit code of its kind.
    /// </summary>
    public void SetAction(Command command, Func<Context, CancellationToken, Task<int>> action)
    {
        command.SetAction(async (parse, ct) =>
        {
            using var api = new ApiClient(parse.GetValue(Socket)!);
            bool json = parse.GetValue(Json);
            try
            {
                return await action(new Context(this, parse, api, json, parse.GetValue(Wide)), ct);
            }
            catch (CtlException e)
            {
                return Report(e, json);
            }
            catch (System.Text.Json.JsonException e)
            {
                return Report(new CtlException($"vswitchd sent an answer vsctl cannot read: {e.Message}"), json);
            }
        });
    }

    /// <summary>
    /// Makes a group list when it is given no subcommand (<c>vsctl route</c> is <c>vsctl route ls</c>): the group gets
    /// what <paramref name="configure"/> gives its ls (arguments, options, action), as the ls does.
    /// </summary>
    public static void ListsByDefault(Command group, Command ls, Action<Command> configure)
    {
        configure(ls);
        configure(group);
        group.Description = $"{group.Description}; alone, it lists (as '{ls.Name}')";
    }

    /// <summary>
    /// Reports a failure and returns its exit code. Plain: "vsctl: message" on stderr, and when <paramref name="text"/>
    /// is the rule, match or packet the daemon refused, the text again with a caret under the bad token.
    /// With --json: <c>{"error", "code", "status", "token", "position"}</c> on stdout (status, token and position when known).
    /// </summary>
    public int Report(CtlException e, bool json, string? text = null)
    {
        if (json)
        {
            WriteJsonError(e.Message, e.Kind, e.Status, RuleText.Locate(e.Body));
            return Program.ExitCode(e.Kind);
        }
        Error.WriteLine($"vsctl: {e.Message}");
        if (text is not null && RuleText.Locate(e.Body) is { } at)
            foreach (string line in RuleText.Caret(text, at.Token, at.Position)) Error.WriteLine(line);
        return Program.ExitCode(e.Kind);
    }

    /// <summary>A --json error: the message, the kind's code, and the daemon's status, token and position when there are.</summary>
    public void WriteJsonError(string message, ErrorKind kind, int? status = null, (string Token, int Position)? at = null)
    {
        using var buffer = new MemoryStream();
        using (var w = new System.Text.Json.Utf8JsonWriter(buffer, new System.Text.Json.JsonWriterOptions
        {
            Indented = true,
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        }))
        {
            w.WriteStartObject();
            w.WriteString("error", message);
            w.WriteString("code", Program.Code(kind));
            if (status is int s) w.WriteNumber("status", s);
            if (at is { } a)
            {
                w.WriteString("token", a.Token);
                w.WriteNumber("position", a.Position);
            }
            w.WriteEndObject();
        }
        Out.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
    }
}

/// <summary>One command's run: the parsed line, the client and where to write.</summary>
public sealed record Context(Cli Cli, ParseResult Parse, ApiClient Api, bool Json, bool Wide = false)
{
    public TextWriter Out => Cli.Out;

    /// <summary>Writes a table, cut to <see cref="Cli.TableWidth"/> columns unless --wide.</summary>
    public void Write(TableWriter table) => table.Write(Out, Wide ? 0 : Cli.TableWidth);

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
