namespace VSwitchd.Runtime.Handover;

/// <summary>What a hand-over passes besides the ports: where the daemon runs (its API socket and state database paths)
/// and the two descriptors that make it the one daemon of that state (the API's listening socket and the state lock).</summary>
public sealed record DaemonHandles(string Socket, string State, int ApiFd, StateLock Lock)
{
    /// <summary>
    /// The daemon's own options beyond --socket and --state (--config, the access groups, --audit-keep, TLS), given to
    /// its successor too: a restart must not change the limits, the datapath settings or who may use the API.
    /// </summary>
    public IReadOnlyList<string> CarriedArgs { get; init; } = [];
}
