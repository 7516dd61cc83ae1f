using System.Runtime.InteropServices;

namespace VSwitchd.Api.Access;

/// <summary>
/// Users and groups through the C library's name service (getpwuid_r, getgrnam_r, getgrgid_r, getgrouplist), so that
/// users from LDAP or systemd-homed are found as well as those of /etc/passwd. Nothing here is on the datapath: it runs
/// when an API connection is accepted.
/// </summary>
public static class UserDb
{
    private const int ERANGE = 34;

    /// <summary>The user's name, or null when the uid has none.</summary>
    public static string? UserName(uint uid) => Lookup((IntPtr s, byte[] b, out IntPtr r) => getpwuid_r(uid, s, b, (nuint)b.Length, out r), NameAt0);

    /// <summary>The user's primary group, or null when the uid has no entry.</summary>
    public static uint? PrimaryGid(uint uid) => Lookup((IntPtr s, byte[] b, out IntPtr r) => getpwuid_r(uid, s, b, (nuint)b.Length, out r),
        p => (uint?)(uint)Marshal.ReadInt32(p, 2 * IntPtr.Size + 4)); // struct passwd: name, passwd, uid, gid

    /// <summary>The group's id, or null when no group has that name.</summary>
    public static uint? GroupId(string name) => Lookup((IntPtr s, byte[] b, out IntPtr r) => getgrnam_r(name, s, b, (nuint)b.Length, out r),
        p => (uint?)(uint)Marshal.ReadInt32(p, 2 * IntPtr.Size)); // struct group: name, passwd, gid, members

    /// <summary>The group's name, or null when no group has that id.</summary>
    public static string? GroupName(uint gid) => Lookup((IntPtr s, byte[] b, out IntPtr r) => getgrgid_r(gid, s, b, (nuint)b.Length, out r), NameAt0);

    /// <summary>The groups the name service gives the user (its primary group included), as initgroups(3) would set them.</summary>
    public static uint[] GroupList(string user, uint primaryGid)
    {
        int n = 64;
        for (int attempt = 0; attempt < 8; attempt++)
        {
            var groups = new uint[n];
            int count = n;
            if (getgrouplist(user, primaryGid, groups, ref count) >= 0) return groups[..count];
            n = Math.Max(count, n * 2);
        }
        return [primaryGid];
    }

    /// <summary>The uid vswitchd runs as.</summary>
    public static uint EffectiveUid { get; } = geteuid();

    private delegate int Call(IntPtr entry, byte[] buffer, out IntPtr result);

    private static T? Lookup<T>(Call call, Func<IntPtr, T?> read)
    {
        IntPtr entry = Marshal.AllocHGlobal(128); // struct passwd / struct group are at most 48 bytes
        try
        {
            for (int size = 1024; size <= 1 << 20; size *= 4)
            {
                var buffer = new byte[size];
                var pin = GCHandle.Alloc(buffer, GCHandleType.Pinned); // the entry's strings point into it
                try
                {
                    int rc = call(entry, buffer, out IntPtr result);
                    if (rc == ERANGE) continue;
                    return rc == 0 && result != IntPtr.Zero ? read(result) : default;
                }
                finally { pin.Free(); }
            }
            return default;
        }
        finally { Marshal.FreeHGlobal(entry); }
    }

    private static string? NameAt0(IntPtr entry) => Marshal.PtrToStringUTF8(Marshal.ReadIntPtr(entry));

    [DllImport("libc", SetLastError = false)]
    private static extern uint geteuid();

    [DllImport("libc", SetLastError = false)]
    private static extern int getpwuid_r(uint uid, IntPtr pwd, byte[] buf, nuint buflen, out IntPtr result);

    [DllImport("libc", SetLastError = false)]
    private static extern int getgrnam_r([MarshalAs(UnmanagedType.LPUTF8Str)] string name, IntPtr grp, byte[] buf, nuint buflen, out IntPtr result);

    [DllImport("libc", SetLastError = false)]
    private static extern int getgrgid_r(uint gid, IntPtr grp, byte[] buf, nuint buflen, out IntPtr result);

    [DllImport("libc", SetLastError = false)]
    private static extern int getgrouplist([MarshalAs(UnmanagedType.LPUTF8Str)] string user, uint group, [In, Out] uint[] groups, ref int ngroups);
}
