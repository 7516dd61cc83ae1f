using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using static VSwitch.Integration.Tests.VsctlHarness;

namespace VSwitch.Integration.Tests;

/// <summary>
/// The API over TCP with mutual TLS (vswitchd --tls-listen): a CA, a server certificate and client certificates made
/// for the test, curl as the client. The subject's O= gives the role; an untrusted certificate gets a 403 saying so;
/// every change lands in the audit log with the certificate's subject.
/// </summary>
public sealed class ApiTlsTests
{
    [RootFact]
    public void Client_certificates_give_roles_by_their_organization_and_writes_are_audited_with_the_subject()
    {
        string dir = Directory.CreateTempSubdirectory("vst-tls-").FullName;
        try
        {
            var now = DateTimeOffset.UtcNow;
            using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var caRequest = new CertificateRequest("CN=vst test CA", caKey, HashAlgorithmName.SHA256);
            caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
            using var ca = caRequest.CreateSelfSigned(now.AddHours(-1), now.AddDays(1));
            File.WriteAllText(Path.Combine(dir, "ca.pem"), ca.ExportCertificatePem());
            Issue(dir, "server", "CN=localhost", ca, server: true);
            Issue(dir, "admin", "CN=alice, O=ops-admins", ca);
            Issue(dir, "reader", "CN=bob, O=watchers", ca);
            Issue(dir, "other", "CN=carol, O=finance", ca);
            using (var rogueKey = ECDsa.Create(ECCurve.NamedCurves.nistP256))
            using (var rogue = new CertificateRequest("CN=rogue CA", rogueKey, HashAlgorithmName.SHA256) { CertificateExtensions = { new X509BasicConstraintsExtension(true, false, 0, true) } }
                .CreateSelfSigned(now.AddHours(-1), now.AddDays(1)))
                Issue(dir, "untrusted", "CN=mallory, O=ops-admins", rogue);

            int port = FreePort();
            using var d = Vswitchd.Start(null, "--admin-group", "ops-admins", "--read-group", "watchers",
                "--tls-listen", $"127.0.0.1:{port}", "--tls-cert", Path.Combine(dir, "server.pem"), "--tls-key", Path.Combine(dir, "server.key"),
                "--tls-client-ca", Path.Combine(dir, "ca.pem"));
            string url = $"https://127.0.0.1:{port}";
            // The Unix socket answering does not mean the TCP listener is bound yet (seen under load): wait for it too.
            Wait.Until(() =>
            {
                try { using var c = new System.Net.Sockets.TcpClient(); c.Connect("127.0.0.1", port); return true; }
                catch (System.Net.Sockets.SocketException) { return false; }
            }, TimeSpan.FromSeconds(20), $"the TLS listener on 127.0.0.1:{port}");

            var created = Curl(dir, "admin", "POST", url + "/v1/networks", "{\"name\":\"tlsnet\",\"subnet\":\"10.94.0.0/24\"}");
            Assert.True(created.Status == 201, created.ToString());
            var read = Curl(dir, "reader", "GET", url + "/v1/networks");
            Assert.True(read.Status == 200, read.ToString());
            Assert.Contains("tlsnet", read.Body);
            var readerWrite = Curl(dir, "reader", "DELETE", url + "/v1/networks/tlsnet");
            Assert.True(readerWrite.Status == 403, readerWrite.ToString());
            Assert.Contains("certificate 'CN=bob, O=watchers' may only read: changing vswitchd takes O=ops-admins in the subject", readerWrite.Body);
            var other = Curl(dir, "other", "GET", url + "/v1/show");
            Assert.True(other.Status == 403, other.ToString());
            Assert.Contains("reading takes O=watchers or O=ops-admins", other.Body);
            var untrusted = Curl(dir, "untrusted", "POST", url + "/v1/networks", "{\"name\":\"evil\"}");
            Assert.True(untrusted.Status == 403, untrusted.ToString());
            Assert.Contains("client certificate 'CN=mallory, O=ops-admins' is not trusted", untrusted.Body);
            var none = Curl(dir, null, "GET", url + "/v1/show");
            Assert.True(none.Status == 0 && none.ExitCode != 0, $"no client certificate must fail the handshake: {none}");
            Assert.DoesNotContain("evil", Ok("--socket", d.Socket, "network", "ls").Stdout);

            var entries = JsonNode.Parse(Ok("--socket", d.Socket, "--json", "audit").Stdout)!["entries"]!.AsArray();
            Assert.Equal(
                ["CN=alice, O=ops-admins POST /v1/networks 201", "CN=bob, O=watchers DELETE /v1/networks/tlsnet 403", "CN=mallory, O=ops-admins POST /v1/networks 403"],
                entries.Select(e => $"{e!["subject"]} {e["method"]} {e["path"]} {e["status"]}"));
            Assert.All(entries, e => Assert.Null(e!["uid"]));
            var table = Ok("--socket", d.Socket, "audit", "--wide");
            Assert.Contains("CN=bob, O=watchers", table.Stdout);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [RootFact]
    public void A_partial_or_bad_tls_setup_stops_the_start_naming_what_is_wrong()
    {
        string dir = Directory.CreateTempSubdirectory("vst-tls-").FullName;
        try
        {
            var partial = Proc.Run(TimeSpan.FromSeconds(30), Repo.Vswitchd, "--socket", Path.Combine(dir, "s.sock"), "--state", Path.Combine(dir, "state.db"), "--tls-listen", "127.0.0.1:6650");
            Assert.Equal(2, partial.ExitCode);
            Assert.Contains("needs all of --tls-listen ADDR:PORT, --tls-cert FILE, --tls-key FILE and --tls-client-ca FILE", partial.StdErr);
            string missing = Path.Combine(dir, "nope.pem");
            var bad = Proc.Run(TimeSpan.FromSeconds(30), Repo.Vswitchd, "--socket", Path.Combine(dir, "s.sock"), "--state", Path.Combine(dir, "state.db"),
                "--tls-listen", "127.0.0.1:6650", "--tls-cert", missing, "--tls-key", missing, "--tls-client-ca", missing);
            Assert.Equal(2, bad.ExitCode);
            Assert.Contains($"--tls-cert '{missing}'", bad.StdErr);
            var endpoint = Proc.Run(TimeSpan.FromSeconds(30), Repo.Vswitchd, "--socket", Path.Combine(dir, "s.sock"), "--state", Path.Combine(dir, "state.db"),
                "--tls-listen", "localhost:x", "--tls-cert", missing, "--tls-key", missing, "--tls-client-ca", missing);
            Assert.Equal(2, endpoint.ExitCode);
            Assert.Contains("--tls-listen: 'localhost:x' is not ADDR:PORT", endpoint.StdErr);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    private static void Issue(string dir, string name, string subject, X509Certificate2 issuer, bool server = false)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(server ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
        if (server)
        {
            var san = new SubjectAlternativeNameBuilder();
            san.AddIpAddress(IPAddress.Loopback);
            san.AddDnsName("localhost");
            request.CertificateExtensions.Add(san.Build());
        }
        var now = DateTimeOffset.UtcNow;
        using var cert = request.Create(issuer, now.AddMinutes(-30), now.AddHours(12), RandomNumberGenerator.GetBytes(16));
        File.WriteAllText(Path.Combine(dir, name + ".pem"), cert.ExportCertificatePem());
        File.WriteAllText(Path.Combine(dir, name + ".key"), key.ExportPkcs8PrivateKeyPem());
    }

    private sealed record CurlResult(int ExitCode, int Status, string Body, string Error)
    {
        public override string ToString() => $"curl exit {ExitCode}, HTTP {Status}: {Body} {Error}";
    }

    /// <summary>curl with the test CA and, unless null, the client certificate NAME.pem/NAME.key; the status and body.</summary>
    private static CurlResult Curl(string dir, string? cert, string method, string url, string? json = null)
    {
        var args = new List<string> { "-sS", "--max-time", "20", "--cacert", Path.Combine(dir, "ca.pem"), "-X", method, "-w", "\n%{http_code}" };
        if (cert is not null) args.AddRange(["--cert", Path.Combine(dir, cert + ".pem"), "--key", Path.Combine(dir, cert + ".key")]);
        if (json is not null) args.AddRange(["-H", "Content-Type: application/json", "--data", json]);
        args.Add(url);
        var r = Proc.Run(TimeSpan.FromSeconds(30), "curl", [.. args]);
        int nl = r.StdOut.LastIndexOf('\n');
        int status = nl >= 0 && int.TryParse(r.StdOut[(nl + 1)..].Trim(), out int s) ? s : 0;
        return new CurlResult(r.ExitCode, status, nl >= 0 ? r.StdOut[..nl] : r.StdOut, r.StdErr);
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
