using System.Text.Json.Serialization;

namespace VSwitch.Api;

// /v1/mirrors: port mirroring (SPAN), like Open vSwitch's Mirror table.

/// <summary>
/// POST /v1/mirrors. <see cref="Sources"/>: the ports whose frames are copied; <see cref="Direction"/>: those they receive
/// (rx), send (tx) or both (the default); <see cref="Vlan"/>: only frames of that VLAN; <see cref="Output"/>: the port the
/// copies go out of (it may not be a source of any mirror, nor the tunnel port).
/// </summary>
public sealed record MirrorRequest(
    string? Name,
    string[]? Sources,
    string? Output,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Direction = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Vlan = null);

/// <summary>A mirror, with the copies it sent out of its output port and their bytes since it was made.</summary>
public sealed record MirrorView(string Name, string[] Sources, string Direction, int? Vlan, string Output, long Packets, long Bytes);
