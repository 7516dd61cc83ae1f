using System.Text;

namespace VSwitch.Fuzz;

/// <summary>
/// One parser under fuzz. <see cref="Execute"/> feeds it bytes and swallows only the exceptions the
/// parser documents for bad input; anything else escapes, and AFL++ (through SharpFuzz) records it as
/// a crash. The corpus replay in VSwitch.Core.Tests calls the same method.
/// </summary>
public abstract class FuzzTarget
{
    /// <summary>The name tools/fuzz.sh takes, and the folder of its corpus.</summary>
    public abstract string Name { get; }

    /// <summary>What the target reads, for `tools/fuzz.sh list`.</summary>
    public abstract string Description { get; }

    /// <summary>
    /// The assemblies SharpFuzz instruments for this target, each with the type prefixes to instrument
    /// (none: all of it). Only the code under test feeds AFL's coverage map, so its paths mean something.
    /// </summary>
    public abstract IReadOnlyList<Instrumented> Instrument { get; }

    /// <summary>The AFL dictionary (tokens of the input's syntax) in tests/VSwitch.Fuzz/dict, if any.</summary>
    public virtual string? Dictionary => null;

    /// <summary>
    /// Runs one input; throws only what the parser must never throw. Set-up belongs here (on first
    /// use), never in a constructor: instrumented code that runs before SharpFuzz's loop has no
    /// shared memory to write to and crashes the fork server.
    /// </summary>
    public abstract void Execute(byte[] input);

    /// <summary>Text parsers get the input as UTF-8 (invalid sequences become U+FFFD, as a reader would make them).</summary>
    protected static string Text(byte[] input) => Encoding.UTF8.GetString(input);
}

/// <summary>An assembly file to instrument and the namespaces or types in it (empty: everything).</summary>
public sealed record Instrumented(string Assembly, params string[] Prefixes);
