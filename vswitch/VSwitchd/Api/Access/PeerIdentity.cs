using System.Net.Sockets;

namespace VSwitchd.Api.Access;

/// <summary>
/// Who is at the other end of an API connection: the kernel's peer credentials of the Unix socket (SO_PEERCRED:
/// pid, uid, gid as of connect(2), which the client cannot forge), the user's name and the process's groups.
/// </summary>
public sealed record PeerIdentity(int Pid, uint Uid, uint Gid, string User, uint[] Groups)
{
    /// <summary>"alice (uid 1001)"; a uid with no user entry shows as its number.</summary>
    public override string ToString() => $"{User} (uid {Uid})";

    private const int SOL_SOCKET = 1, SO_PEERCRED = 17;

    /// <summary>The peer of an accepted Unix socket, or null when it has none (not a Unix socket).</summary>
    public static PeerIdentity? Of(Socket socket)
    {
        if (socket.AddressFamily != AddressFamily.Unix) return null;
        Span<byte> ucred = stackalloc byte[12]; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        if (socket.GetRawSocketOption(SOL_SOCKET, SO_PEERCRED, ucred) != 12) return null;
        int pid = BitConverter.ToInt32(ucred);
        uint uid = BitConverter.ToUInt32(ucred[4..]), gid = BitConverter.ToUInt32(ucred[8..]);
        return Resolve(pid, uid, gid);
    }

    /// <summary>
    /// Names the user and finds its groups. The groups are the calling process's own supplementary groups, read from
    /// /proc/PID/status at accept time: the groups the kernel would check a file's group against, so that access
    /// follows the same rules as a 0660 socket would (a user added to a group with usermod has it after a new login;
    /// `sg`, `newgrp` and `setpriv --groups` count). When the process is gone, or /proc/PID is no longer the caller
    /// (its uid differs: a recycled pid), the name service's list for the user (getgrouplist) stands in.
    /// </summary>
    public static PeerIdentity Resolve(int pid, uint uid, uint gid)
    {
        string user = UserDb.UserName(uid) ?? uid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        uint[]? groups = ProcessGroups(pid, uid);
        if (groups is null)
            groups = UserDb.UserName(uid) is { } name ? UserDb.GroupList(name, gid) : [];
        if (Array.IndexOf(groups, gid) < 0) groups = [gid, .. groups];
        return new PeerIdentity(pid, uid, gid, user, groups);
    }

    /// <summary>The "Groups:" of /proc/PID/status when its effective uid is <paramref name="uid"/>; null otherwise.</summary>
    public static uint[]? ProcessGroups(int pid, uint uid)
    {
        if (pid <= 0) return null;
        string[] lines;
        try { lines = File.ReadAllLines($"/proc/{pid}/status"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        return ParseStatus(lines, uid);
    }

    /// <summary>
    /// The Groups: line of a /proc/PID/status text, when its Uid: line's effective uid (the second: SO_PEERCRED gives
    /// the effective uid) is <paramref name="uid"/>.
    /// </summary>
    public static uint[]? ParseStatus(IEnumerable<string> lines, uint uid)
    {
        bool sameUser = false;
        uint[]? groups = null;
        foreach (string line in lines)
        {
            if (line.StartsWith("Uid:", StringComparison.Ordinal))
                sameUser = line[4..].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries) is [_, var effective, ..] && effective == uid.ToString(System.Globalization.CultureInfo.InvariantCulture);
            else if (line.StartsWith("Groups:", StringComparison.Ordinal))
            {
                var list = new List<uint>();
                foreach (string g in line[7..].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
                    if (uint.TryParse(g, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out uint v)) list.Add(v);
                groups = [.. list];
            }
        }
        return sameUser ? groups : null;
    }
}
