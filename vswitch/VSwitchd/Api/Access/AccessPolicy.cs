namespace VSwitchd.Api.Access;

/// <summary>What a caller of the API may do.</summary>
public enum ApiRole
{
    /// <summary>Nothing: every request is refused (403).</summary>
    None,
    /// <summary>Reads: GET (and HEAD), and POST /v1/trace, which traces a made-up packet and changes nothing.</summary>
    Reader,
    /// <summary>Everything.</summary>
    Admin,
}

/// <summary>
/// The API's roles, decided from the caller's uid and groups: root, the user vswitchd itself runs as (a daemon started
/// by a user for its own tests trusts that user, as a socket's owner would) and members of the admin group may change
/// things, members of the read group may read, anyone else is refused. Like Docker's socket group and polkit's unix-group
/// rules, membership is by group id of the process; the names are resolved when a connection is accepted, so a group
/// created after vswitchd started counts from the next connection on.
/// </summary>
public sealed record AccessPolicy(string AdminGroup = AccessPolicy.DefaultAdminGroup, string ReadGroup = AccessPolicy.DefaultReadGroup)
{
    public const string DefaultAdminGroup = "vswitch-admin", DefaultReadGroup = "vswitch-read";

    /// <summary>
    /// The role of a caller, given the uid vswitchd runs as and the current ids of the two groups (null: no such group
    /// on this host).
    /// </summary>
    public static ApiRole RoleOf(uint uid, IReadOnlyCollection<uint> groups, uint ownUid, uint? adminGid, uint? readGid)
    {
        if (uid == 0 || uid == ownUid) return ApiRole.Admin;
        if (adminGid is uint a && groups.Contains(a)) return ApiRole.Admin;
        if (readGid is uint r && groups.Contains(r)) return ApiRole.Reader;
        return ApiRole.None;
    }

    /// <summary>The role of a caller with the groups as this host's name service has them now.</summary>
    public ApiRole RoleOf(PeerIdentity who) => RoleOf(who.Uid, who.Groups, UserDb.EffectiveUid, UserDb.GroupId(AdminGroup), UserDb.GroupId(ReadGroup));

    /// <summary>The role of a TLS client: from the organizations (O=) of its certificate's subject, as Kubernetes maps them to groups.</summary>
    public ApiRole RoleOfCertificate(IReadOnlyCollection<string> organizations) =>
        organizations.Contains(AdminGroup, StringComparer.Ordinal) ? ApiRole.Admin
        : organizations.Contains(ReadGroup, StringComparer.Ordinal) ? ApiRole.Reader
        : ApiRole.None;

    /// <summary>Why a TLS client is refused: "certificate 'CN=alice, O=vswitch-read' may only read: changing vswitchd takes O=vswitch-admin in the subject".</summary>
    public string CertificateRefusal(string subject, ApiRole role, bool isRead) =>
        isRead ? $"certificate '{subject}' may not use vswitchd's API: reading takes O={ReadGroup} or O={AdminGroup} in the subject"
        : role == ApiRole.Reader ? $"certificate '{subject}' may only read: changing vswitchd takes O={AdminGroup} in the subject"
        : $"certificate '{subject}' may not change vswitchd: that takes O={AdminGroup} in the subject; reading takes O={ReadGroup}";

    /// <summary>A request that changes nothing: a reader may make it, and it is not audited.</summary>
    public static bool IsRead(string method, string path) =>
        HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method)
        || HttpMethods.IsPost(method) && string.Equals(path.TrimEnd('/'), "/v1/trace", StringComparison.OrdinalIgnoreCase);

    /// <summary>Whether a role may make a request.</summary>
    public static bool Allows(ApiRole role, bool isRead) => role == ApiRole.Admin || role == ApiRole.Reader && isRead;

    /// <summary>
    /// Why a request is refused, naming the caller, its groups and what would let it through:
    /// "user alice (uid 1001, groups alice, users) may not change vswitchd: that takes root or group vswitch-admin (usermod -aG vswitch-admin alice, then log in again)".
    /// </summary>
    public string Refusal(PeerIdentity who, ApiRole role, bool isRead, Func<uint, string?>? groupName = null)
    {
        groupName ??= UserDb.GroupName;
        string groups = who.Groups.Length == 0 ? "no groups" : "groups " + string.Join(", ", who.Groups.Select(g => groupName(g) ?? g.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        string caller = $"user {who.User} (uid {who.Uid}, {groups})";
        return isRead
            ? $"{caller} may not use vswitchd's API: reading takes group {ReadGroup} or {AdminGroup}, changing takes root or group {AdminGroup} (usermod -aG {ReadGroup} {who.User}, then log in again)"
            : role == ApiRole.Reader
                ? $"{caller} may only read: changing vswitchd takes root or group {AdminGroup} (usermod -aG {AdminGroup} {who.User}, then log in again)"
                : $"{caller} may not change vswitchd: that takes root or group {AdminGroup}; reading takes group {ReadGroup} (usermod -aG {AdminGroup} {who.User}, then log in again)";
    }

    /// <summary>"root and group vswitch-admin (gid 990) change; group vswitch-read (gid 991) reads", for the start-up log.</summary>
    public string Describe()
    {
        static string Group(string name) => UserDb.GroupId(name) is uint gid ? $"group {name} (gid {gid})" : $"group {name} (no such group on this host)";
        string self = UserDb.EffectiveUid == 0 ? "" : $", uid {UserDb.EffectiveUid} (vswitchd's own)";
        return $"root{self} and {Group(AdminGroup)} change; {Group(ReadGroup)} reads; anyone else is refused";
    }
}
