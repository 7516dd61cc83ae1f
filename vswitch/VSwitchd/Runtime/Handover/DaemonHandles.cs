namespace VSwitchd.Runtime.Handover;

/// <summary>What a hand-over passes besides the ports: where the daemon runs (its API socket and state database paths)
/// and the two descriptors that make it the one daemon of that state (the API's listening socket and the state lock).</summary>
public sealed record DaemonHandles(string Socket, string State, int ApiFd, StateLock Lock);
