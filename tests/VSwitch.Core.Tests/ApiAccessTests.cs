using System.Text;
using VSwitchd.Api.Access;
using VSwitchd.Runtime;

namespace VSwitch.Core.Tests;

/// <summary>
/// The management API's roles (who may read, who may change), the refusal's words, the audit log's summary of a body,
/// its bound in the state database, and vsctl's reading of --since. The same through real users and a real daemon:
/// the integration tests' ApiAccessTests.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class ApiAccessTests
{
    private const uint Admin = 990, Read = 991, Other = 100, Daemon = 0;

    [Theory]
    [InlineData(0u, new uint[] { }, ApiRole.Admin)]            // root, in no group
    [InlineData(1001u, new uint[] { Other, Admin }, ApiRole.Admin)]
    [InlineData(1001u, new uint[] { Admin, Read }, ApiRole.Admin)] // both: the larger role
    [InlineData(1001u, new uint[] { Read }, ApiRole.Reader)]
    [InlineData(1001u, new uint[] { Other }, ApiRole.None)]
    [InlineData(1001u, new uint[] { }, ApiRole.None)]
    public void Role_comes_from_root_or_group_membership(uint uid, uint[] groups, ApiRole expected) =>
        Assert.Equal(expected, AccessPolicy.RoleOf(uid, groups, Daemon, Admin, Read));

    [Fact]
    public void A_missing_group_gives_no_role_and_the_daemons_own_user_is_admin()
    {
        Assert.Equal(ApiRole.None, AccessPolicy.RoleOf(1001, [Admin, Read], Daemon, adminGid: null, readGid: null));
        Assert.Equal(ApiRole.Reader, AccessPolicy.RoleOf(1001, [Admin, Read], Daemon, adminGid: null, readGid: Read));
        Assert.Equal(ApiRole.Admin, AccessPolicy.RoleOf(1001, [], ownUid: 1001, Admin, Read)); // vswitchd started by uid 1001
        Assert.Equal(ApiRole.None, AccessPolicy.RoleOf(1002, [], ownUid: 1001, Admin, Read));
    }

    [Theory]
    [InlineData("GET", "/v1/networks", true)]
    [InlineData("HEAD", "/v1/show", true)]
    [InlineData("GET", "/metrics", true)]
    [InlineData("POST", "/v1/trace", true)]       // a made-up packet: nothing changes
    [InlineData("POST", "/v1/trace/", true)]
    [InlineData("POST", "/v1/trace/live", false)] // real traffic, a filter armed in the datapath
    [InlineData("POST", "/v1/networks", false)]
    [InlineData("DELETE", "/v1/fdb", false)]
    [InlineData("PUT", "/v1/overlay", false)]
    public void Reads_are_gets_and_the_made_up_trace(string method, string path, bool read) =>
        Assert.Equal(read, AccessPolicy.IsRead(method, path));

    [Fact]
    public void Who_may_do_what()
    {
        Assert.True(AccessPolicy.Allows(ApiRole.Admin, isRead: false));
        Assert.True(AccessPolicy.Allows(ApiRole.Admin, isRead: true));
        Assert.True(AccessPolicy.Allows(ApiRole.Reader, isRead: true));
        Assert.False(AccessPolicy.Allows(ApiRole.Reader, isRead: false));
        Assert.False(AccessPolicy.Allows(ApiRole.None, isRead: true));
        Assert.False(AccessPolicy.Allows(ApiRole.None, isRead: false));
    }

    [Fact]
    public void A_refusal_names_the_user_its_groups_and_the_group_that_would_allow_it()
    {
        var policy = new AccessPolicy("ops", "watchers");
        var alice = new PeerIdentity(4242, 1001, 100, "alice", [100, 991]);
        string? Name(uint g) => g switch { 100 => "users", 991 => "watchers", _ => null };

        string write = policy.Refusal(alice, ApiRole.Reader, isRead: false, Name);
        Assert.Equal("user alice (uid 1001, groups users, watchers) may only read: changing vswitchd takes root or group ops (usermod -aG ops alice, then log in again)", write);

        var bob = alice with { User = "bob", Uid = 1002, Groups = [100, 5000] };
        string read = policy.Refusal(bob, ApiRole.None, isRead: true, Name);
        Assert.Contains("user bob (uid 1002, groups users, 5000) may not use vswitchd's API", read); // a gid without a name stays a number
        Assert.Contains("reading takes group watchers or ops", read);
        Assert.Contains("usermod -aG watchers bob", read);
        string change = policy.Refusal(bob, ApiRole.None, isRead: false, Name);
        Assert.Contains("may not change vswitchd: that takes root or group ops; reading takes group watchers", change);
    }

    [Fact]
    public void A_client_certificate_gets_its_role_from_the_organizations_of_its_subject()
    {
        var policy = new AccessPolicy("ops", "watchers");
        string[] Orgs(string subject) => TlsListener.Organizations(new System.Security.Cryptography.X509Certificates.X500DistinguishedName(subject));
        Assert.Equal(["watchers", "ops"], Orgs("CN=alice, O=watchers, O=ops, OU=ops2"));
        Assert.Equal(ApiRole.Admin, policy.RoleOfCertificate(Orgs("CN=alice, O=watchers, O=ops")));
        Assert.Equal(ApiRole.Reader, policy.RoleOfCertificate(Orgs("CN=bob, O=watchers")));
        Assert.Equal(ApiRole.None, policy.RoleOfCertificate(Orgs("CN=ops, OU=ops, O=Ops")));  // CN and OU are not groups; names are exact
        Assert.Equal(ApiRole.None, policy.RoleOfCertificate(Orgs("CN=carol")));
        Assert.Equal("certificate 'CN=bob, O=watchers' may only read: changing vswitchd takes O=ops in the subject",
            policy.CertificateRefusal("CN=bob, O=watchers", ApiRole.Reader, isRead: false));
        Assert.Null(TlsListener.ParseEndpoint("localhost:6650"));
        Assert.Null(TlsListener.ParseEndpoint("127.0.0.1:0"));
        Assert.Equal(6650, TlsListener.ParseEndpoint("[::]:6650")!.Port);
    }

    [Fact]
    public void Groups_come_from_proc_status_only_when_it_is_the_same_user()
    {
        string[] status = ["Name:\tvsctl", "Uid:\t1000\t1001\t1001\t1001", "Gid:\t100\t100\t100\t100", "Groups:\t100 991 27 ", "NStgid:\t1"];
        Assert.Equal([100u, 991u, 27u], PeerIdentity.ParseStatus(status, 1001)!); // the effective uid, as SO_PEERCRED gives it
        Assert.Null(PeerIdentity.ParseStatus(status, 1000));                      // the real uid is not the caller's
        Assert.Null(PeerIdentity.ParseStatus(status, 0));                         // a recycled pid: another user's process
        Assert.Equal([], PeerIdentity.ParseStatus(["Uid:\t5\t5\t5\t5", "Groups:\t"], 5)!);
    }

    [Fact]
    public void Our_own_process_is_resolved_with_its_name_and_groups()
    {
        uint uid = UserDb.EffectiveUid;
        var me = PeerIdentity.Resolve(Environment.ProcessId, uid, 0);
        Assert.Equal(uid, me.Uid);
        Assert.Equal(Environment.ProcessId, me.Pid);
        Assert.Contains(0u, me.Groups); // the gid given is always one of them
        if (uid == 0) Assert.Equal("root", me.User);
        Assert.Equal(uid == 0 ? "root" : me.User, UserDb.UserName(uid));
        Assert.Equal(0u, UserDb.GroupId("root"));
        Assert.Equal("root", UserDb.GroupName(0));
        Assert.Null(UserDb.GroupId("no-such-group-" + Guid.NewGuid().ToString("N")[..8]));
    }

    [Theory]
    [InlineData("{\"name\":\"blue\",\"subnet\":\"10.1.0.0/24\",\"mtu\":1500}", "name=blue subnet=10.1.0.0/24 mtu=1500")]
    [InlineData("{\"name\":\"p1\",\"addresses\":[\"10.1.0.2/24\"],\"persistent\":true}", "name=p1 persistent=true")] // arrays left out
    [InlineData("{\"rule\":\"priority=1,actions=drop\",\"opts\":{\"a\":1}}", "rule=priority=1,actions=drop")]
    [InlineData("[1,2]", "(not a JSON object)")]
    [InlineData("not json", "(not JSON)")]
    public void The_audit_summary_is_the_bodys_scalar_fields(string body, string expected) =>
        Assert.Equal(expected, ApiAccess.Summarize(Encoding.UTF8.GetBytes(body)));

    [Fact]
    public void The_audit_summary_is_cut_to_200_characters_and_survives_a_cut_body()
    {
        string s = ApiAccess.Summarize(Encoding.UTF8.GetBytes("{\"name\":\"" + new string('x', 500) + "\"}"));
        Assert.Equal(200, s.Length);
        Assert.EndsWith("…", s);
        Assert.Equal("name=a", ApiAccess.Summarize(Encoding.UTF8.GetBytes("{\"name\":\"a\",\"more\":[1,2,")));
    }

    [Fact]
    public void The_audit_table_keeps_the_newest_records_and_counts_what_it_pruned()
    {
        string dir = Directory.CreateTempSubdirectory("vsa-").FullName;
        try
        {
            using var store = new StateStore(Path.Combine(dir, "state.db"));
            var t0 = new DateTimeOffset(2026, 11, 28, 10, 0, 0, TimeSpan.Zero);
            AuditRecord At(int i) => new(t0.AddMinutes(i), 1000 + (uint)i, "u" + i, 100 + i, null, "POST", "/v1/networks", "name=n" + i, 201);
            Assert.Equal(0, store.AppendAudit([At(0), At(1), At(2)], keep: 4));
            Assert.Equal(2, store.AppendAudit([At(3), At(4), At(5)], keep: 4));
            Assert.Equal(2, store.AuditPruned);
            var all = store.Audit(null, 100);
            Assert.Equal(["u2", "u3", "u4", "u5"], all.Select(r => r.Record.User));
            Assert.Equal(At(5), all[^1].Record);
            Assert.Equal(["u4", "u5"], store.Audit(null, 2).Select(r => r.Record.User));          // the newest, oldest first
            Assert.Equal(["u3", "u4", "u5"], store.Audit(t0.AddMinutes(3), 100).Select(r => r.Record.User));
            Assert.Equal(1, store.AppendAudit([At(6)], keep: 4));
            Assert.Equal(3, store.AuditPruned);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public async Task An_audit_record_the_database_refuses_is_counted_as_lost_and_the_writer_goes_on()
    {
        string dir = Directory.CreateTempSubdirectory("vsa-").FullName;
        try
        {
            var store = new StateStore(Path.Combine(dir, "state.db"));
            var audit = new AuditLog(store, new AuditOptions(Keep: 10), Microsoft.Extensions.Logging.Abstractions.NullLogger<AuditLog>.Instance);
            await audit.StartAsync(CancellationToken.None);
            var record = new AuditRecord(DateTimeOffset.UtcNow, 0, "root", 1, null, "POST", "/v1/networks", "name=a", 201);
            audit.Record(record);
            await audit.FlushAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
            Assert.Single(store.Audit(null, 10));
            Assert.Equal(0, audit.Dropped);

            store.Dispose(); // the database gone: the next write fails
            audit.Record(record with { Summary = "name=b" });
            await audit.FlushAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
            Assert.Equal(1, audit.WriteFailures);
            Assert.Equal(1, audit.Dropped);
            await audit.StopAsync(CancellationToken.None);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Vsctl_audit_since_takes_an_age_or_a_time()
    {
        var now = new DateTimeOffset(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);
        Assert.Equal(now.AddMinutes(-10), VSwitch.Ctl.AuditCommands.ParseSince("10m", now));
        Assert.Equal(now.AddSeconds(-30), VSwitch.Ctl.AuditCommands.ParseSince("30s", now));
        Assert.Equal(now.AddHours(-2), VSwitch.Ctl.AuditCommands.ParseSince("2h", now));
        Assert.Equal(now.AddDays(-7), VSwitch.Ctl.AuditCommands.ParseSince("7d", now));
        Assert.Equal(new DateTimeOffset(2026, 11, 28, 10, 0, 0, TimeSpan.Zero), VSwitch.Ctl.AuditCommands.ParseSince("2026-11-28T10:00Z", now));
        Assert.Equal(new DateTimeOffset(2026, 11, 28, 10, 0, 0, TimeSpan.Zero), VSwitch.Ctl.AuditCommands.ParseSince("2026-11-28T10:00", now)); // no offset: UTC
        Assert.Equal(new DateTimeOffset(2026, 11, 28, 9, 0, 0, TimeSpan.Zero), VSwitch.Ctl.AuditCommands.ParseSince("2026-11-28T10:00+01:00", now));
        foreach (string bad in new[] { "", "10", "m", "10x", "yesterday", "-5m" })
            Assert.Null(VSwitch.Ctl.AuditCommands.ParseSince(bad, now));
    }

    [Fact]
    public void Vsctl_maps_403_to_exit_7_forbidden()
    {
        Assert.Equal(VSwitch.Ctl.ErrorKind.Forbidden, VSwitch.Ctl.CtlException.KindOf(System.Net.HttpStatusCode.Forbidden));
        Assert.Equal(7, VSwitch.Ctl.Program.ExitCode(VSwitch.Ctl.ErrorKind.Forbidden));
        Assert.Equal("forbidden", VSwitch.Ctl.Program.Code(VSwitch.Ctl.ErrorKind.Forbidden));
    }
}
