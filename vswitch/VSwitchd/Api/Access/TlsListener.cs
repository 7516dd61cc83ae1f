using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Certificate;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace VSwitchd.Api.Access;

/// <summary>
/// The optional TCP listener with mutual TLS (vswitchd --tls-listen ADDR:PORT --tls-cert FILE --tls-key FILE
/// --tls-client-ca FILE): the same API for callers on other hosts, each identified by a client certificate that must
/// chain to the given CA (Microsoft.AspNetCore.Authentication.Certificate validates it). Roles come from the
/// certificate's subject as Kubernetes reads one: CN is the user, each O (organization) a group, so a certificate with
/// O=vswitch-admin may change things and one with O=vswitch-read may read.
/// </summary>
public sealed record TlsListener(IPEndPoint Endpoint, string CertFile, string KeyFile, string ClientCaFile)
{
    /// <summary>"127.0.0.1:6650", "[::1]:6650", "0.0.0.0:6650"; null when it is none.</summary>
    public static IPEndPoint? ParseEndpoint(string text) =>
        IPEndPoint.TryParse(text, out var ep) && ep.Port != 0 ? ep : null;

    /// <summary>Reads the certificate, key and CA now, so that a bad file stops the start with a message naming it.</summary>
    public (X509Certificate2 Server, X509Certificate2Collection ClientCa) Load()
    {
        X509Certificate2 server;
        try { server = X509Certificate2.CreateFromPemFile(CertFile, KeyFile); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            throw new ArgumentException($"--tls-cert '{CertFile}' / --tls-key '{KeyFile}': {e.Message}");
        }
        var ca = new X509Certificate2Collection();
        try { ca.ImportFromPemFile(ClientCaFile); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            throw new ArgumentException($"--tls-client-ca '{ClientCaFile}': {e.Message}");
        }
        if (ca.Count == 0) throw new ArgumentException($"--tls-client-ca '{ClientCaFile}': no certificate in it (PEM expected)");
        return (server, ca);
    }

    /// <summary>The listener on Kestrel and the certificate authentication it relies on.</summary>
    public void Configure(WebApplicationBuilder builder)
    {
        var (server, ca) = Load();
        builder.Services.AddAuthentication(CertificateAuthenticationDefaults.AuthenticationScheme).AddCertificate(o =>
        {
            o.AllowedCertificateTypes = CertificateTypes.Chained;
            o.ChainTrustValidationMode = X509ChainTrustMode.CustomRootTrust;
            o.CustomTrustStore = ca;
            // A private CA seldom publishes revocation lists; a certificate is withdrawn by replacing the CA file.
            o.RevocationMode = X509RevocationMode.NoCheck;
        });
        builder.WebHost.ConfigureKestrel(k => k.Listen(Endpoint, listen =>
        {
            listen.IdentifyPeers(); // no peer credentials on TCP: the certificate is the identity
            listen.UseHttps(https =>
            {
                https.ServerCertificate = server;
                https.ClientCertificateMode = ClientCertificateMode.RequireCertificate;
                // Any certificate passes the handshake; the authentication handler checks its chain, so that an
                // untrusted one gets a 403 saying why instead of a failed handshake.
                https.AllowAnyClientCertificate();
            });
        }));
    }

    /// <summary>The caller of a TLS request: its certificate's subject and organizations, or why it is not trusted.</summary>
    public static async Task<(string? Subject, string[] Organizations, string? Failure)> IdentifyAsync(HttpContext ctx)
    {
        var cert = await ctx.Connection.GetClientCertificateAsync();
        if (cert is null) return (null, [], "no client certificate");
        var result = await ctx.AuthenticateAsync(CertificateAuthenticationDefaults.AuthenticationScheme);
        if (!result.Succeeded)
            return (cert.Subject, [], $"client certificate '{cert.Subject}' is not trusted: {result.Failure?.Message ?? "no chain to --tls-client-ca"}");
        return (cert.Subject, Organizations(cert.SubjectName), null);
    }

    /// <summary>The O= values of a subject, in order.</summary>
    public static string[] Organizations(X500DistinguishedName subject)
    {
        var list = new List<string>();
        foreach (var rdn in subject.EnumerateRelativeDistinguishedNames())
            if (!rdn.HasMultipleElements && rdn.GetSingleElementType().Value == "2.5.4.10" && rdn.GetSingleElementValue() is { } o) list.Add(o);
        return [.. list];
    }
}
