using System.Text.RegularExpressions;

namespace VSwitch.Api;

/// <summary>
/// Labels on attachments (a container's identity for services and network policy), with Kubernetes'
/// rules so that labels copied from a pod or a Docker container are accepted as they are: a key is an
/// optional DNS-subdomain prefix and a slash, then a name of at most 63 characters of letters, digits,
/// '-', '_' and '.', starting and ending with a letter or digit; a value is empty or a name of the same form.
/// Written on the command line as <c>app=web,tier=front</c>.
/// </summary>
public static partial class Labels
{
    public const int MaxLabels = 64;

    [GeneratedRegex("^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex PrefixPattern();

    /// <summary>Why a key is not a label key, or null when it is.</summary>
    public static string? WhyNotKey(string key)
    {
        if (string.IsNullOrEmpty(key)) return "a label key is empty";
        int slash = key.IndexOf('/');
        string name = slash < 0 ? key : key[(slash + 1)..];
        if (slash >= 0)
        {
            string prefix = key[..slash];
            if (prefix.Length is 0 or > 253 || !PrefixPattern().IsMatch(prefix))
                return $"label key '{key}': the prefix '{prefix}' is not a DNS subdomain (lower case letters, digits, '-' and '.')";
        }
        if (!NamePattern().IsMatch(name))
            return $"label key '{key}': the name must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
        return null;
    }

    /// <summary>Why a value is not a label value, or null when it is.</summary>
    public static string? WhyNotValue(string key, string value) =>
        value.Length == 0 || NamePattern().IsMatch(value) ? null
            : $"label '{key}': the value '{value}' must be empty or 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";

    /// <summary>Checks a whole set; the first problem, or null.</summary>
    public static string? WhyNot(IReadOnlyDictionary<string, string>? labels)
    {
        if (labels is null) return null;
        if (labels.Count > MaxLabels) return $"{labels.Count} labels: at most {MaxLabels}";
        foreach (var (k, v) in labels)
            if ((WhyNotKey(k) ?? WhyNotValue(k, v ?? "")) is { } why) return why;
        return null;
    }

    /// <summary>
    /// Parses <c>k=v,k2=v2</c> (several such strings add up; a later key wins over an earlier one);
    /// a bad one throws <see cref="FormatException"/> naming it.
    /// </summary>
    public static Dictionary<string, string> Parse(IEnumerable<string> specs)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var spec in specs)
            foreach (var part in spec.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                int eq = part.IndexOf('=');
                if (eq <= 0) throw new FormatException($"label '{part}': write KEY=VALUE (e.g. app=web)");
                string k = part[..eq], v = part[(eq + 1)..];
                if ((WhyNotKey(k) ?? WhyNotValue(k, v)) is { } why) throw new FormatException(why);
                labels[k] = v;
            }
        if (labels.Count > MaxLabels) throw new FormatException($"{labels.Count} labels: at most {MaxLabels}");
        return labels;
    }

    /// <summary>As people write them: <c>app=web,tier=front</c>, sorted by key.</summary>
    public static string Format(IReadOnlyDictionary<string, string>? labels)
    {
        if (labels is null || labels.Count == 0) return "";
        var keys = labels.Keys.ToArray();
        Array.Sort(keys, StringComparer.Ordinal);
        return string.Join(',', keys.Select(k => k + "=" + labels[k]));
    }
}
