using System.Text.Json;

namespace VSwitchd.Runtime.Handover;

// The hand-over's messages, in the order they go (README "Restart and upgrade without loss"):
//   successor -> predecessor  Hello     (it started and connected)
//   predecessor -> successor  Offer     + the fds it lists (SCM_RIGHTS)
//   successor -> predecessor  Ready     (its runtime is built over the fds; it reads nothing yet) or Failed
//   predecessor -> successor  Learned   (its datapath has stopped reading: MAC table, neighbours, ring positions)
//   successor -> predecessor  Running   (its datapath reads now) or Failed
//   predecessor -> successor  Released  (its API listener is closed; the successor's may accept now)
// Both sides are one build or two builds of vswitchd: an upgrade. Version says which protocol a message speaks;
// a successor refuses an offer of another version, and the predecessor keeps running.

public static class HandoverJson
{
    public const int Version = 1;
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    /// <summary>
    /// Runs every message through the serializer once, so that its first real use, between the predecessor's stop
    /// and the successor's start, pays no reflection or JIT (measured: tens of milliseconds of the gap otherwise).
    /// </summary>
    public static void Warm()
    {
        var learned = new LearnedMessage([new LearnedMac("n", 0, 1, "p", 0, 0)], [new LearnedNeighbor("n", 1, 1)], new() { ["p"] = 0 }, 0)
        {
            XdpTxFree = new() { ["p"] = [0] },
        };
        Envelope.Of("learned", learned).Read<LearnedMessage>();
        Envelope.Of("running", new RunningMessage(0, 0)).Read<RunningMessage>();
        Envelope.Of("failed", new FailedMessage("")).Read<FailedMessage>();
        JsonSerializer.Deserialize<Envelope>(JsonSerializer.SerializeToUtf8Bytes(Envelope.Of("ready", new ReadyMessage(0)), Options), Options);
    }
}

public sealed record HelloMessage(int Version, int Pid)
{
    /// <summary>
    /// The kinds of port the successor can take over beyond tap, afpacket and vxlan (which every successor takes):
    /// "afxdp". Null from a build that predates the field: the predecessor then offers no afxdp port, and that build
    /// opens it afresh (down until the predecessor's program is gone) instead of inheriting descriptors it cannot use.
    /// </summary>
    public string[]? Adopts { get; init; }
}

/// <summary>
/// A port's open descriptors: Fds index into the offer's descriptor list. For afxdp: the socket, the UMEM memfd, the
/// XDP link, map and program; RingFrameSize/RingFrameCount are the UMEM's frames and the Xdp* fields the rest.
/// </summary>
public sealed record OfferedPort(string Name, string Kind, int[] Fds, bool Offloads = false, bool IoUring = false, string? Netns = null,
    long RingBytes = 0, int RingFrameSize = 0, int RingFrameCount = 0, bool Persistent = false)
{
    /// <summary>afxdp: entries of each of the four rings.</summary>
    public uint XdpRingSize { get; init; }
    public int XdpQueue { get; init; }
    /// <summary>afxdp: the program runs in the driver (native), else generic.</summary>
    public bool XdpNative { get; init; }
    public bool XdpZeroCopy { get; init; }
    /// <summary>afxdp: the better modes the kernel refused when the port opened, so the views say the same after a restart.</summary>
    public string[]? XdpRefused { get; init; }
}

/// <summary>What the predecessor hands over: its ports (TAP, AF_PACKET, the VXLAN endpoint), the API socket, the state lock.</summary>
public sealed record OfferMessage(int Version, int Pid, OfferedPort[] Ports, int ApiFd, int LockFd, int FdCount);

public sealed record ReadyMessage(int AdoptedPorts);

public sealed record FailedMessage(string Error);

/// <summary>
/// One learned MAC entry, by names (port ids are each process's own). Remote is an IPv4 VTEP address (0: none);
/// an IPv6 VTEP comes as Remote6, its text (handles are each process's own, like port ids).
/// A static entry is not sent: the successor has it from the state database.
/// </summary>
public sealed record LearnedMac(string Network, ushort Vlan, ulong Mac, string Port, long AgeMs, uint Remote)
{
    /// <summary>The IPv6 VTEP the MAC lives behind (Remote is then 0); null otherwise, and from a predecessor without IPv6 VTEPs.</summary>
    public string? Remote6 { get; init; }
}

/// <summary>A resolved neighbour (ARP) entry, by network name.</summary>
public sealed record LearnedNeighbor(string Network, uint Address, ulong Mac);

/// <summary>A resolved IPv6 neighbour, by network name; the address as text (System.Text.Json has no UInt128 of its own here).</summary>
public sealed record LearnedNeighbor6(string Network, string Address, ulong Mac);

/// <summary>
/// Sent once the predecessor's datapath threads have stopped; the successor starts reading after it.
/// Conntrack is the tracked connections as raw entries of ConntrackEntrySize bytes (base64), so that
/// NATed and policed connections go on as they were instead of being taken up mid-stream.
/// </summary>
public sealed record LearnedMessage(LearnedMac[] Macs, LearnedNeighbor[] Neighbors, Dictionary<string, int> RingCursors, long StoppedAtUnixMs)
{
    public string? Conntrack { get; init; }
    public int ConntrackEntrySize { get; init; }
    public int ConntrackCount { get; init; }
    /// <summary>Resolved IPv6 neighbours (null from a predecessor without IPv6 routing: they are then learned again).</summary>
    public LearnedNeighbor6[]? Neighbors6 { get; init; }
    /// <summary>
    /// Each handed-over afxdp port's free transmit frames (UMEM addresses), by port name: process state the rings cannot
    /// tell. Ring positions need no message: they live in the shared ring pages.
    /// </summary>
    public Dictionary<string, ulong[]>? XdpTxFree { get; init; }
}

/// <summary>The successor's datapath runs; GapMs is from the predecessor's stop to the successor's start (by the wall clock).</summary>
public sealed record RunningMessage(int Pid, double GapMs);

public sealed record ReleasedMessage(int Pid);

/// <summary>The type of the next message, read first when it may be one of several.</summary>
public sealed record Envelope(string Type, JsonElement Body)
{
    public static Envelope Of<T>(string type, T body) => new(type, JsonSerializer.SerializeToElement(body, HandoverJson.Options));
    public T Read<T>() => Body.Deserialize<T>(HandoverJson.Options) ?? throw new HandoverException($"empty {Type} message");
}
