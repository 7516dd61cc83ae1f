namespace VSwitchd.Config;

/// <summary>
/// What a name of a network or a port may be. Names end up in URLs (/v1/networks/NAME), in file
/// and device names and in the state database, so they are kept to a set that is safe in all of
/// them: letters, digits, '-', '_' and '.', starting with a letter or digit (so never '.', '..' or
/// an option such as '-x'), at most 64 characters for a network and 15 for a port (a Linux
/// interface name). No '/', no spaces, no control characters, no NUL.
/// </summary>
public static class Names
{
    public const int MaxNetworkName = 64;
    public const int MaxPortName = 15;

    /// <summary>Why <paramref name="name"/> is not acceptable, naming it (shortened and escaped), or null when it is.</summary>
    public static string? Check(string? name, int maxLength)
    {
        if (string.IsNullOrEmpty(name)) return "must not be empty";
        if (name.Length > maxLength) return $"'{Show(name)}' is {name.Length} characters long; at most {maxLength}";
        if (!char.IsAsciiLetterOrDigit(name[0]) || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            return $"'{Show(name)}' may only have letters, digits, '-', '_' and '.', and must start with a letter or digit";
        return null;
    }

    /// <summary>The name as it can be printed: control characters escaped, long names cut.</summary>
    public static string Show(string name)
    {
        var s = string.Concat(name.Take(40).Select(c => char.IsControl(c) ? $"\\x{(int)c:x2}" : c.ToString()));
        return name.Length > 40 ? s + "..." : s;
    }
}
