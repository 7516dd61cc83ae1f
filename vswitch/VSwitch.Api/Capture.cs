using System.Text.Json.Serialization;

namespace VSwitch.Api;

// POST /v1/capture: tcpdump on a switch port, or on the pipeline's drops. The answer is not JSON but a pcapng
// stream (application/x-pcapng) that ends with an Interface Statistics Block per interface: frames captured,
// frames lost because the reader was slower than the traffic (the ring was full), frames delivered.

/// <summary>
/// POST /v1/capture. Null fields take the daemon's defaults: both directions, every frame, no count, 262144-byte
/// snap length, no time limit. <see cref="Drops"/> captures the frames the pipeline drops (on <see cref="Port"/>, or on
/// every port when it is null), each with its reason and stage as the packet's comment; <see cref="Reason"/> keeps one reason.
/// </summary>
public sealed record CaptureRequest(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Port,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Direction = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Filter = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? Count = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? SnapLength = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? DurationSeconds = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? Drops = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Reason = null)
{
    /// <summary>The media type of a capture's answer.</summary>
    public const string MediaType = "application/x-pcapng";
}
