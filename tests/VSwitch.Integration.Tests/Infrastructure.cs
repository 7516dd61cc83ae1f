using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Xunit;

namespace VSwitch.Integration.Tests;

/// <summary>A fact that runs only as root, and says why it is skipped otherwise.</summary>
public sealed class RootFactAttribute : FactAttribute
{
    [DllImport("libc")]
    private static extern uint geteuid();

    public static bool IsRoot => geteuid() == 0;

    public RootFactAttribute()
    {
        if (!IsRoot) Skip = "needs root (creates TAP devices and network namespaces)";
    }
}

/// <summary>A theory that runs only as root, and says why it is skipped otherwise.</summary>
public sealed class RootTheoryAttribute : TheoryAttribute
{
    public RootTheoryAttribute()
    {
        if (!RootFactAttribute.IsRoot) Skip = "needs root (creates TAP devices and network namespaces)";
    }
}

/// <summary>Tests that create namespaces, links and processes run one at a time.</summary>
[CollectionDefinition("netns", DisableParallelization = true)]
public sealed class NetnsCollection { }

public static class Names
{
    /// <summary>A short prefix and a random 6-hex suffix: "vst-a1b2c3". Keep prefixes ≤ 8 characters for link names.</summary>
    public static string Random(string prefix) => prefix + Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3)).ToLowerInvariant();
}

public sealed record ProcessResult(int ExitCode, string StdOut, string StdErr)
{
    public string Output => StdOut + StdErr;
}

public static class Proc
{
    /// <summary>Runs a program to completion, or kills it after <paramref name="timeout"/> and throws.</summary>
    public static ProcessResult Run(TimeSpan timeout, string program, params string[] args) => Run(timeout, null, program, args);

    /// <summary>The same, with these variables added to the environment (a script's VSWITCHD and VSCTL).</summary>
    public static ProcessResult Run(TimeSpan timeout, IReadOnlyDictionary<string, string>? env, string program, params string[] args)
    {
        using var p = Start(env, program, args);
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            KillQuietly(p);
            throw new TimeoutException($"'{program} {string.Join(' ', args)}' did not finish within {timeout.TotalSeconds} s");
        }
        p.WaitForExit();
        return new ProcessResult(p.ExitCode, so.Result, se.Result);
    }

    public static ProcessResult Run(string program, params string[] args) => Run(TimeSpan.FromSeconds(15), program, args);

    /// <summary>Runs and throws with the output when the exit code is not 0.</summary>
    public static string Check(string program, params string[] args)
    {
        var r = Run(program, args);
        if (r.ExitCode != 0)
            throw new InvalidOperationException($"'{program} {string.Join(' ', args)}' exited {r.ExitCode}: {r.Output}");
        return r.StdOut;
    }

    /// <summary>Starts a process with redirected output; the caller stops it by PID (<see cref="KillQuietly"/>).</summary>
    public static Process Start(string program, params string[] args) => Start(null, program, args);

    private static Process Start(IReadOnlyDictionary<string, string>? env, string program, params string[] args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        return Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {program}");
    }

    /// <summary>Kills exactly this process (the one we started), if it still runs.</summary>
    public static void KillQuietly(Process p)
    {
        try { if (!p.HasExited) { p.Kill(); p.WaitForExit(5000); } }
        catch (InvalidOperationException) { }
    }
}

public static class Wait
{
    /// <summary>Polls <paramref name="condition"/> until it holds or the deadline passes (then throws with <paramref name="what"/>).</summary>
    public static void Until(Func<bool> condition, TimeSpan timeout, string what)
    {
        var sw = Stopwatch.StartNew();
        int delay = 5;
        while (!condition())
        {
            if (sw.Elapsed > timeout) throw new TimeoutException($"timed out after {timeout.TotalSeconds} s waiting for {what}");
            Thread.Sleep(delay);
            delay = Math.Min(delay * 2, 100);
        }
    }
}

/// <summary>A network namespace for one test: created with a random name, deleted on Dispose.</summary>
public sealed class TestNetns : IDisposable
{
    public string Name { get; }
    public string Path => "/run/netns/" + Name;

    public TestNetns(string prefix = "vst-")
    {
        Name = Names.Random(prefix);
        Proc.Check("ip", "netns", "add", Name);
        Exec("ip", "link", "set", "lo", "up");
    }

    /// <summary>Runs a command inside the namespace and throws when it fails.</summary>
    public string Exec(string program, params string[] args) => Proc.Check("ip", ["netns", "exec", Name, program, .. args]);

    public ProcessResult TryExec(TimeSpan timeout, string program, params string[] args) =>
        Proc.Run(timeout, "ip", ["netns", "exec", Name, program, .. args]);

    /// <summary>Starts a long-running command inside the namespace (ip netns exec execs it: the PID is the program's).</summary>
    public Process Start(string program, params string[] args) => Proc.Start("ip", ["netns", "exec", Name, program, .. args]);

    public bool HasLink(string dev) => Proc.Run("ip", "-n", Name, "link", "show", "dev", dev).ExitCode == 0;

    public void Dispose()
    {
        // Deleting the namespace destroys the links inside it (a veth's root end goes with its peer).
        Proc.Run("ip", "netns", "del", Name);
    }
}

/// <summary>A veth pair: <see cref="Outer"/> in the root namespace, <see cref="Inner"/> in a test namespace.</summary>
public sealed class TestVeth : IDisposable
{
    public string Outer { get; }
    public string Inner { get; }

    public TestVeth(TestNetns ns, string innerAddress)
    {
        string sfx = Names.Random("");
        Outer = "vso-" + sfx;
        Inner = "vsi-" + sfx;
        Proc.Check("ip", "link", "add", Outer, "type", "veth", "peer", "name", Inner, "netns", ns.Name);
        try
        {
            Proc.Check("ip", "link", "set", Outer, "up");
            ns.Exec("ip", "addr", "add", innerAddress, "dev", Inner);
            ns.Exec("ip", "link", "set", Inner, "up");
        }
        catch { Dispose(); throw; }
    }

    public void Dispose()
    {
        if (Proc.Run("ip", "link", "show", "dev", Outer).ExitCode == 0)
            Proc.Run("ip", "link", "del", Outer);
    }
}

/// <summary>Shell blocks of the project's Markdown files, for the tests that run them as written.</summary>
public static class Markdown
{
    /// <summary>The first ```sh block after <paramref name="anchor"/> in <paramref name="file"/> (relative to the repository).</summary>
    public static string ShBlockAfter(string file, string anchor)
    {
        string text = File.ReadAllText(Path.Combine(Repo.Root, file));
        int at = text.IndexOf(anchor, StringComparison.Ordinal);
        Assert.True(at >= 0, $"{file} has no '{anchor}'");
        int open = text.IndexOf("```sh\n", at, StringComparison.Ordinal);
        Assert.True(open >= 0, $"{file} has no ```sh block after '{anchor}'");
        open += "```sh\n".Length;
        int close = text.IndexOf("\n```", open, StringComparison.Ordinal);
        return text[open..close] + "\n";
    }
}
