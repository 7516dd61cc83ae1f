namespace VSwitchd.Runtime;

// What a caller can get wrong, as the runtime says it. Each is a refusal caused by the request (an
// unknown name, a name taken, a bad value), never by the switch; its message names the bad value and
// is the whole answer a user sees (vsctl prints it after "vsctl: "). The API turns the type into an
// HTTP status in one place, VSwitchd/Api/ApiErrors.cs; the runtime knows nothing of HTTP.
// Anything else thrown is the switch's own failure (an internal error).

/// <summary>A request refused because of what it asked; see the subclasses.</summary>
public abstract class SwitchRuntimeException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The request names something that is not there: a network, port, route, attachment, MAC entry.</summary>
public sealed class NotFoundException(string message) : SwitchRuntimeException(message);

/// <summary>The request clashes with what exists: a name already taken, a network that still has ports, an address in use.</summary>
public sealed class ConflictException(string message) : SwitchRuntimeException(message);

/// <summary>A value of the request is malformed or not allowed here.</summary>
public class InvalidRequestException(string message, Exception? inner = null) : SwitchRuntimeException(message, inner);

/// <summary>
/// The text of a rule, a match, a packet description or a filter does not parse: which token
/// and where it starts in the trimmed text (0-based), so that a client can point at it.
/// </summary>
public sealed class InvalidSyntaxException(string message, string token, int position) : InvalidRequestException(message)
{
    public string Token { get; } = token;
    public int Position { get; } = position;
}

/// <summary>The switch cannot take the request now (it is stopping); the same request may succeed later.</summary>
public sealed class UnavailableException(string message) : SwitchRuntimeException(message);
