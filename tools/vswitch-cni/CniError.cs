using System.Text.Json.Nodes;

namespace VSwitch.Cni;

/// <summary>
/// A CNI error (spec section "Error"): printed as JSON on stdout, exit code 1. Codes 1-99 are the
/// spec's; 999 is this plugin's "anything else" (vswitchd refused the request, and says why).
/// </summary>
public sealed class CniException(int code, string msg, string? details = null) : Exception(msg)
{
    public const int IncompatibleVersion = 1;
    public const int UnsupportedField = 2;
    public const int UnknownContainer = 3;
    public const int InvalidEnvironment = 4;
    public const int IoFailure = 5;
    public const int DecodeFailure = 6;
    public const int InvalidConfig = 7;
    public const int TryAgainLater = 11;
    public const int NotAvailable = 50;
    public const int NotAvailableLimited = 51;
    public const int Other = 999;

    public int Code { get; } = code;
    public string? Details { get; } = details;

    public JsonObject ToJson(string cniVersion)
    {
        var o = new JsonObject { ["cniVersion"] = cniVersion, ["code"] = Code, ["msg"] = Message };
        if (Details is not null) o["details"] = Details;
        return o;
    }
}
