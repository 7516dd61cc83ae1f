using VSwitch.Api;
using VSwitchd.Runtime;
using VSwitchd.Services;

namespace VSwitch.Core.Tests;

/// <summary>A service request's affinity timeout: Kubernetes' bounds, 1 s..24 h, with client-IP affinity.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class ServiceConfigTests
{
    private static ServiceRequest Request(int? timeout, string affinity = "client-ip") =>
        new() { Name = "web", Vip = "10.96.0.10", Ports = ["80/tcp"], Affinity = affinity, AffinityTimeoutSeconds = timeout };

    [Theory]
    [InlineData(0)]      // what vsctl sends for --affinity-timeout 500ms (whole seconds, rounded down)
    [InlineData(86401)]
    [InlineData(-1)]
    public void A_client_ip_timeout_outside_1_to_86400_seconds_is_refused_naming_it(int timeout)
    {
        var e = Assert.Throws<InvalidRequestException>(() => ServiceConfig.FromRequest(Request(timeout)));
        Assert.Contains($"affinityTimeoutSeconds: {timeout} must be 1..86400", e.Message);
    }

    [Fact]
    public void Client_ip_affinity_defaults_to_three_hours_and_none_has_no_timeout()
    {
        Assert.Equal(10800, ServiceConfig.FromRequest(Request(null)).AffinityTimeoutSeconds);
        Assert.Equal(1, ServiceConfig.FromRequest(Request(1)).AffinityTimeoutSeconds);
        Assert.Equal(0, ServiceConfig.FromRequest(Request(null, "none")).AffinityTimeoutSeconds);
    }
}
