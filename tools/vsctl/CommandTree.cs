using System.CommandLine;
using System.CommandLine.Completions;

namespace VSwitch.Ctl;

/// <summary>
/// vsctl's command tree as its documents see it: the visible commands and options, in the order help lists them,
/// with the text help prints. The completion scripts (<see cref="CompletionCommand"/>) and the man page
/// (<see cref="ManCommand"/>) are generated from it, so neither can drift from the parser.
/// </summary>
internal static class CommandTree
{
    /// <summary>One command with the words that reach it ("network add") and every option that applies to it.</summary>
    public sealed record Node(Command Command, IReadOnlyList<string> Path, IReadOnlyList<Option> Options)
    {
        public string PathText => string.Join(' ', Path);

        public IEnumerable<Command> Subcommands => Command.Subcommands.Where(c => !c.Hidden);

        public IEnumerable<Argument> Arguments => Command.Arguments.Where(a => !a.Hidden);
    }

    /// <summary>The root and every visible command under it, depth first, parents before children.</summary>
    public static IEnumerable<Node> Walk(Command root)
    {
        var stack = new Stack<(Command Command, List<string> Path, List<Option> Inherited)>();
        stack.Push((root, [], []));
        while (stack.Count > 0)
        {
            var (command, path, inherited) = stack.Pop();
            var own = command.Options.Where(o => !o.Hidden).ToList();
            // An option an ancestor marks recursive (--socket, --json, --help) applies here too, listed after the command's own.
            var options = own.Concat(inherited.Where(o => !own.Contains(o))).ToList();
            yield return new Node(command, path, options);
            var passDown = inherited.Concat(own.Where(o => o.Recursive && !inherited.Contains(o))).ToList();
            foreach (var sub in command.Subcommands.Where(c => !c.Hidden).Reverse())
                stack.Push((sub, [.. path, sub.Name], passDown));
        }
    }

    /// <summary>
    /// The names a user types for an option (its name, then its aliases) as help shows them: without the Windows-style
    /// "/h" and "/?" System.CommandLine also accepts. With <paramref name="completion"/>, without "-?" too: a glob in both shells.
    /// </summary>
    public static IEnumerable<string> Names(Option option, bool completion = true) =>
        new[] { option.Name }.Concat(option.Aliases).Where(n => !n.StartsWith('/') && !(completion && n == "-?")).Distinct();

    /// <summary>The names of a command: its name, then its aliases.</summary>
    public static IEnumerable<string> Names(Command command) => new[] { command.Name }.Concat(command.Aliases);

    /// <summary>Whether the option reads the next word as its value (a flag such as --json does not).</summary>
    public static bool TakesValue(Option option) =>
        option.Arity.MaximumNumberOfValues > 0 && !IsFlag(option.ValueType);

    /// <summary>Whether the option may be given more than once (--ip CIDR --ip CIDR).</summary>
    public static bool Repeatable(Option option) => option.Arity.MaximumNumberOfValues > 1;

    /// <summary>The values the parser accepts for an option, when it knows them (AcceptOnlyFromAmong, enums); empty otherwise.</summary>
    public static IReadOnlyList<string> Values(Option option) =>
        TakesValue(option) ? option.GetCompletions(CompletionContext.Empty).Select(c => c.Label).Distinct().ToList() : [];

    /// <summary>Whether an option's value is a file system path (its help name is PATH or FILE), for file name completion.</summary>
    public static bool TakesPath(Option option) => option.HelpName is "PATH" or "FILE" or "DIR";

    /// <summary>The name help shows for an option's value (--subnet &lt;CIDR&gt;): its help name, else its type's.</summary>
    public static string ValueName(Option option) =>
        option.HelpName ?? (Values(option) is { Count: > 0 } v ? string.Join('|', v) : "VALUE");

    /// <summary>
    /// What help says of an option or argument: its description, then "[default: ...]" as help shows it, and
    /// "(REQUIRED)" (System.CommandLine 2.0.0 keeps its HelpBuilder internal, so its rules are repeated here).
    /// </summary>
    public static string HelpText(Symbol symbol)
    {
        string text = symbol.Description ?? "";
        object? value = symbol switch
        {
            Option { HasDefaultValue: true } o when !IsFlag(o.ValueType) => o.GetDefaultValue(),
            Argument { HasDefaultValue: true } a => a.GetDefaultValue(),
            _ => null,
        };
        string? shown = value switch
        {
            null => null,
            string s => s.Length > 0 ? s : null,
            System.Collections.IEnumerable e => string.Join('|', e.Cast<object?>()),
            IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
            _ => value.ToString(),
        };
        if (shown is { Length: > 0 }) text += $" [default: {shown}]";
        if (symbol is Option { Required: true }) text += " (REQUIRED)";
        return text;
    }

    private static bool IsFlag(Type type) => type == typeof(bool) || type == typeof(bool?);

    /// <summary>The first line of a description, for the one-line lists of the completion menus.</summary>
    public static string Summary(string? description) =>
        (description ?? "").Split('\n', 2)[0].Trim();
}
