using System.Diagnostics;
using System.Text.Json.Nodes;
using static VSwitch.Integration.Tests.VsctlHarness;

namespace VSwitch.Integration.Tests;

/// <summary>
/// The API's roles and audit log with real users: groups and users made for the test (random names, removed in
/// finally), a vswitchd told their names (--admin-group, --read-group), and vsctl run as each user through
/// setpriv --init-groups, so the daemon sees their uid by SO_PEERCRED and their groups in /proc/PID/status.
/// </summary>
public sealed class ApiAccessTests
{
    private const int Forbidden = 7;

    [RootFact]
    public void Root_and_admins_change_readers_read_others_are_refused_and_every_write_is_audited_with_its_caller()
    {
        using var users = new TestUsers();
        using var d = Vswitchd.Start(null, "--admin-group", users.AdminGroup, "--read-group", users.ReadGroup);
        users.OpenToAll(d.Dir);
        Assert.Contains($"group {users.AdminGroup} (gid", d.Log); // the start-up log names the roles' groups
        string s = d.Socket;

        // Root: everything.
        Ok("--socket", s, "network", "add", "blue", "--subnet", "10.91.0.0/24");

        // A reader: reads work (and a trace of a made-up packet), a change is refused with 403, exit 7, naming the user and the group.
        var ls = users.Vsctl(users.Reader, s, "network", "ls");
        Assert.True(ls.ExitCode == 0, ls.ToString());
        Assert.Contains("blue", ls.Stdout);
        var show = users.Vsctl(users.Reader, s, "show");
        Assert.True(show.ExitCode == 0, show.ToString());
        var write = users.Vsctl(users.Reader, s, "network", "add", "red", "--subnet", "10.92.0.0/24");
        Assert.True(write.ExitCode == Forbidden, write.ToString());
        Assert.Contains($"vsctl: user {users.Reader} (uid {users.Uid(users.Reader)}", write.Stderr);
        Assert.Contains($"may only read: changing vswitchd takes root or group {users.AdminGroup}", write.Stderr);
        Assert.Equal("", write.Stdout);
        var jsonWrite = users.Vsctl(users.Reader, s, "--json", "network", "rm", "blue");
        Assert.True(jsonWrite.ExitCode == Forbidden, jsonWrite.ToString());
        var err = JsonNode.Parse(jsonWrite.Stdout)!;
        Assert.Equal("forbidden", (string?)err["code"]);
        Assert.Equal(403, (int)err["status"]!);
        Assert.Contains("blue", Ok("--socket", s, "network", "ls").Stdout); // refused means not done

        // A member of the admin group: changes work.
        var admin = users.Vsctl(users.Admin, s, "network", "add", "green", "--subnet", "10.93.0.0/24");
        Assert.True(admin.ExitCode == 0, admin.ToString());

        // Anyone else: 403 for reads and changes, saying which groups would let them in.
        var otherRead = users.Vsctl(users.Other, s, "show");
        Assert.True(otherRead.ExitCode == Forbidden, otherRead.ToString());
        Assert.Contains($"user {users.Other} (uid {users.Uid(users.Other)}", otherRead.Stderr);
        Assert.Contains($"reading takes group {users.ReadGroup} or {users.AdminGroup}", otherRead.Stderr);
        var otherWrite = users.Vsctl(users.Other, s, "network", "rm", "green");
        Assert.True(otherWrite.ExitCode == Forbidden, otherWrite.ToString());
        Assert.Contains("may not change vswitchd", otherWrite.Stderr);
        Assert.Contains("green", Ok("--socket", s, "network", "ls").Stdout);

        // Every change, allowed or refused, is in the audit log with its caller; no read is.
        var audit = users.Vsctl(users.Reader, s, "--json", "audit");
        Assert.True(audit.ExitCode == 0, audit.ToString());
        var entries = JsonNode.Parse(audit.Stdout)!["entries"]!.AsArray().Select(e => e!).ToList();
        string rootUser = "root";
        (string User, string Method, string Path, int Status)[] expected =
        [
            (rootUser, "POST", "/v1/networks", 201),
            (users.Reader, "POST", "/v1/networks", 403),
            (users.Reader, "DELETE", "/v1/networks/blue", 403),
            (users.Admin, "POST", "/v1/networks", 201),
            (users.Other, "DELETE", "/v1/networks/green", 403),
        ];
        Assert.True(entries.Count == expected.Length, $"audit: {audit.Stdout}");
        for (int i = 0; i < expected.Length; i++)
        {
            var (user, method, path, status) = expected[i];
            var e = entries[i];
            Assert.Equal(user, (string?)e["user"]);
            Assert.Equal(user == rootUser ? 0 : users.Uid(user), (long)e["uid"]!);
            Assert.True((int)e["pid"]! > 0, e.ToJsonString());
            Assert.Equal(method, (string?)e["method"]);
            Assert.Equal(path, (string?)e["path"]);
            Assert.Equal(status, (int)e["status"]!);
        }
        Assert.Equal("name=blue subnet=10.91.0.0/24", (string?)entries[0]["summary"]);
        Assert.Equal("name=red subnet=10.92.0.0/24", (string?)entries[1]["summary"]); // what the refused caller tried

        // The table: a row per record with user, uid and the status in words; --since selects by time.
        var table = Ok("--socket", s, "audit", "--since", "10m");
        string[] lines = Lines(table.Stdout);
        Assert.StartsWith("TIME (UTC)", lines[0]);
        var readerRow = lines.Single(l => l.Contains("DELETE /v1/networks/blue"));
        Assert.Contains($" {users.Reader} ", readerRow);
        Assert.Contains($" {users.Uid(users.Reader)} ", readerRow);
        Assert.EndsWith("403 forbidden", readerRow);
        Assert.Contains("5 record(s) shown; vswitchd keeps the newest 10000, 0 older pruned", table.Stdout);
        var future = Ok("--socket", s, "audit", "--since", DateTime.UtcNow.AddHours(1).ToString("yyyy-MM-dd'T'HH:mm'Z'"));
        Assert.StartsWith("no audit records", future.Stdout);
        var last = Ok("--socket", s, "audit", "--limit", "1");
        Assert.Contains("DELETE /v1/networks/green", last.Stdout);
        Assert.DoesNotContain("/v1/networks/blue", last.Stdout);
    }

    [RootFact]
    public void The_audit_log_keeps_the_newest_records_counts_the_pruned_and_refuses_a_bad_since()
    {
        using var d = Vswitchd.Start(null, "--audit-keep", "2");
        string s = d.Socket;
        foreach (string n in new[] { "n1", "n2", "n3" }) Ok("--socket", s, "network", "add", n);
        var audit = JsonNode.Parse(Ok("--socket", s, "--json", "audit").Stdout)!;
        Assert.Equal(["/v1/networks", "/v1/networks"], audit["entries"]!.AsArray().Select(e => (string?)e!["path"]));
        Assert.Equal(["name=n2", "name=n3"], audit["entries"]!.AsArray().Select(e => (string?)e!["summary"]));
        Assert.Equal(2, (int)audit["keep"]!);
        Assert.Equal(1, (long)audit["pruned"]!);
        Assert.Equal(0, (long)audit["lost"]!);

        var bad = Vsctl("--socket", s, "audit", "--since", "yesterday");
        Assert.True(bad.ExitCode == 2, bad.ToString());
        Assert.Contains("--since: 'yesterday'", bad.Stderr);
        var (status, body) = d.Send(HttpMethod.Get, "/v1/audit?since=yesterday");
        Assert.Equal(400, status);
        Assert.Contains("since: 'yesterday' is not a time", (string?)body!["error"]);

        // The audit table survives a restart with the rest of the state database.
        d.KeepDir = true;
        Assert.Equal(0, d.Stop());
        using var again = Vswitchd.StartIn(d.Dir, null, "--audit-keep", "2");
        var kept = JsonNode.Parse(Ok("--socket", again.Socket, "--json", "audit").Stdout)!;
        Assert.Equal(["name=n2", "name=n3"], kept["entries"]!.AsArray().Select(e => (string?)e!["summary"]));
        Assert.Equal(1, (long)kept["pruned"]!);
    }
}

/// <summary>
/// Two groups (admin, read) and three users (one in each group, one in neither), named with a random suffix, removed
/// on Dispose; vsctl run as one of them with setpriv (its uid, its primary group, its supplementary groups).
/// </summary>
public sealed class TestUsers : IDisposable
{
    private readonly string _suffix = Names.Random("")[..6];
    private readonly List<string> _users = [], _groups = [];
    private readonly Dictionary<string, long> _uids = [];
    private readonly string _home;

    public string AdminGroup => "vsadm" + _suffix;
    public string ReadGroup => "vsrd" + _suffix;
    public string Admin => "vsua" + _suffix;
    public string Reader => "vsur" + _suffix;
    public string Other => "vsuo" + _suffix;

    public TestUsers()
    {
        _home = Directory.CreateTempSubdirectory("vsu-").FullName;
        File.SetUnixFileMode(_home, (UnixFileMode)0x1FF | UnixFileMode.StickyBit); // 1777: each user's HOME for dotnet
        try
        {
            foreach (string g in new[] { AdminGroup, ReadGroup })
            {
                Proc.Check("groupadd", "--system", g);
                _groups.Add(g);
            }
            foreach (var (user, group) in new[] { (Admin, AdminGroup), (Reader, ReadGroup), (Other, (string?)null) })
            {
                var args = new List<string> { "--system", "--no-create-home", "--no-user-group", "--gid", "nogroup", "--shell", "/usr/sbin/nologin" };
                if (group is not null) args.AddRange(["--groups", group]);
                args.Add(user);
                Proc.Check("useradd", [.. args]);
                _users.Add(user);
                _uids[user] = long.Parse(Proc.Check("id", "-u", user).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public long Uid(string user) => _uids[user];

    /// <summary>Lets the other users reach a daemon's socket: its temporary folder is 0700.</summary>
    public void OpenToAll(string dir) => File.SetUnixFileMode(dir, File.GetUnixFileMode(dir) | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);

    /// <summary>vsctl --socket SOCKET ARGS as <paramref name="user"/>, with the groups the group database gives it (setpriv --init-groups).</summary>
    public VsctlHarness.Result Vsctl(string user, string socket, params string[] args)
    {
        var psi = new ProcessStartInfo("setpriv") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { $"--reuid={user}", "--regid=nogroup", "--init-groups", "--" }) psi.ArgumentList.Add(a);
        if (NativeClients.Dir is not null) psi.ArgumentList.Add(NativeClients.Program("vsctl"));
        else
        {
            psi.ArgumentList.Add(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet");
            psi.ArgumentList.Add(VsctlHarness.BuiltDll("tools/vsctl", "vsctl"));
        }
        psi.ArgumentList.Add("--socket");
        psi.ArgumentList.Add(socket);
        foreach (string a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("VSWITCH_SOCKET");
        psi.Environment["HOME"] = _home;
        psi.Environment["DOTNET_CLI_HOME"] = _home;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(VsctlHarness.ProcessTimeout))
        {
            Proc.KillQuietly(p);
            throw new TimeoutException($"vsctl {string.Join(' ', args)} as {user} did not finish within {VsctlHarness.ProcessTimeout}");
        }
        p.WaitForExit();
        return new VsctlHarness.Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    public void Dispose()
    {
        foreach (string u in _users) Proc.Run("userdel", u);
        foreach (string g in _groups) Proc.Run("groupdel", g);
        _users.Clear();
        _groups.Clear();
        try { Directory.Delete(_home, recursive: true); } catch (IOException) { }
    }
}
