namespace VSwitch.Core.Pipeline;

/// <summary>
/// Why a frame did not leave the switch. Every drop is counted under one of these; the names
/// (<see cref="DropReasons.Name"/>) are what the API, metrics and traces show.
/// </summary>
public enum DropReason : byte
{
    None = 0,
    // Parsing (Classify)
    RuntFrame,
    TruncatedEthernet,
    TruncatedVlan,
    TruncatedArp,
    BadArp,
    TruncatedIPv4,
    BadIpVersion,
    BadIhl,
    BadIpTotalLength,
    TruncatedIPv6,
    BadIPv6PayloadLength,
    TruncatedTcp,
    BadTcpOffset,
    TruncatedUdp,
    BadUdpLength,
    TruncatedIcmp,
    OversizedFrame,
    // Bridge
    VlanNotAllowed,
    TaggedOnAccessPort,
    OutputIsIngress,
    MacTableFull,
    NoOutput,
    NoNetwork,
    PortDown,
    // Buffers and I/O
    PoolExhausted,
    TxFailed,
    TxQueueFull,
    // Rules
    RuleDrop,
    Count
}

public static class DropReasons
{
    private static readonly string[] Names = Build();

    public static string Name(this DropReason reason) =>
        (uint)reason < (uint)Names.Length ? Names[(int)reason] : "unknown";

    public static bool TryParse(string name, out DropReason reason)
    {
        for (int i = 0; i < Names.Length; i++)
        {
            if (Names[i] == name) { reason = (DropReason)i; return true; }
        }
        reason = DropReason.None;
        return false;
    }

    // "TruncatedIPv4" -> "truncated-ipv4": kebab case, the style of OVS and the kernel's drop reasons.
    private static string[] Build()
    {
        var names = new string[(int)DropReason.Count];
        for (int i = 0; i < names.Length; i++)
        {
            string s = ((DropReason)i).ToString();
            var sb = new System.Text.StringBuilder();
            for (int j = 0; j < s.Length; j++)
            {
                char c = s[j];
                bool boundary = j > 0 && char.IsUpper(c) && (char.IsLower(s[j - 1]) || (j + 1 < s.Length && char.IsLower(s[j + 1]) && char.IsUpper(s[j - 1])));
                if (boundary && !(s[j - 1] == 'I' && c == 'P')) sb.Append('-');
                sb.Append(char.ToLowerInvariant(c));
            }
            names[i] = sb.ToString();
        }
        return names;
    }
}
