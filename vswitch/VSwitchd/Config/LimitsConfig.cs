namespace VSwitchd.Config;

/// <summary>
/// The "limits" section of the config file: the bounds of the tables and queues a user or a container
/// can grow. Each has a default fit for a host of a few hundred containers; each bound, when hit, is
/// counted (vsctl stats: LIMITS; /metrics: vswitch_limit_hits_total) and refuses the new entry rather
/// than evicting an old one (the Linux bridge's and OVS's choice for their MAC tables).
/// The flow cache (datapath.flowCacheSize) is the exception: it is a cache, so a full set evicts.
/// </summary>
public sealed class LimitsConfig
{
    public const int DefaultMacTable = 65_536;
    public const int DefaultMacPerPort = 16_384;
    public const int DefaultRules = 65_536;
    public const int DefaultRoutes = 65_536;
    public const int DefaultApiBodyBytes = 1 << 20;
    public const int DefaultLogLinesPerSecond = 100;
    public const int DefaultConntrack = VSwitch.Core.Tables.Conntrack.ConntrackTable.DefaultCapacity;

    /// <summary>Addresses in the MAC table, all networks together.</summary>
    public int MacTable { get; set; } = DefaultMacTable;
    /// <summary>Addresses one port may teach the MAC table (OVS's per-port limit): a container flooding made-up source addresses fills only its own share.</summary>
    public int MacPerPort { get; set; } = DefaultMacPerPort;
    /// <summary>Rules in the rule table.</summary>
    public int Rules { get; set; } = DefaultRules;
    /// <summary>Static routes (prefixes) in the route table.</summary>
    public int Routes { get; set; } = DefaultRoutes;
    /// <summary>The largest management API request body, in bytes (Kestrel's MaxRequestBodySize; its own default is 30 MB).</summary>
    public int ApiBodyBytes { get; set; } = DefaultApiBodyBytes;
    /// <summary>Log lines a second, with bursts of as many; the lines over it are counted and summed up in one line later.</summary>
    public int LogLinesPerSecond { get; set; } = DefaultLogLinesPerSecond;

    /// <summary>Connections the conntrack table holds (services, policy, NAT); a new one beyond is dropped (conntrack-full).</summary>
    public int Conntrack { get; set; } = DefaultConntrack;

    public void Validate(List<string> errors)
    {
        if (Conntrack is < 16 or > 16_777_216) errors.Add($"limits.conntrack: {Conntrack} must be 16..16777216");
        if (MacTable is < 16 or > 16_777_216) errors.Add($"limits.macTable: {MacTable} must be 16..16777216");
        if (MacPerPort < 1 || MacPerPort > MacTable) errors.Add($"limits.macPerPort: {MacPerPort} must be 1..limits.macTable ({MacTable})");
        if (Rules is < 1 or > 10_000_000) errors.Add($"limits.rules: {Rules} must be 1..10000000");
        if (Routes is < 1 or > 10_000_000) errors.Add($"limits.routes: {Routes} must be 1..10000000");
        if (ApiBodyBytes is < 1024 or > 256 << 20) errors.Add($"limits.apiBodyBytes: {ApiBodyBytes} must be 1024..268435456");
        if (LogLinesPerSecond is < 1 or > 100_000) errors.Add($"limits.logLinesPerSecond: {LogLinesPerSecond} must be 1..100000");
    }
}
