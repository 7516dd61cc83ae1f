using System.Text.Json.Serialization;

namespace VSwitch.Api;

/// <summary>
/// Every 4xx/5xx answer of the API: <c>{"error": "message naming the bad value"}</c>. Errors about the
/// text of a rule, a match, a trace's packet description or a live trace's filter also say which
/// token was bad and where it starts in the trimmed text (0-based), for a client to point at it:
/// <c>{"error": "...", "token": "nw_dts=1", "position": 0}</c>. Token and Position are left out when
/// there is none; a client reading any error body gets null for them.
/// </summary>
public sealed record ApiErrorBody(string Error)
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Token { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Position { get; init; }
}
