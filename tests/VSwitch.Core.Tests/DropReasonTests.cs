using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using Xunit;

namespace VSwitch.Core.Tests;

public class DropReasonTests
{
    [Theory]
    [InlineData(DropReason.TruncatedIPv4, "truncated-ipv4")]
    [InlineData(DropReason.BadIhl, "bad-ihl")]
    [InlineData(DropReason.BadUdpLength, "bad-udp-length")]
    [InlineData(DropReason.BadIPv6PayloadLength, "bad-ipv6-payload-length")]
    [InlineData(DropReason.BadIpTotalLength, "bad-ip-total-length")]
    [InlineData(DropReason.RuntFrame, "runt-frame")]
    [InlineData(DropReason.TruncatedTunnelHeader, "truncated-tunnel-header")]
    public void Names(DropReason reason, string name)
    {
        Assert.Equal(name, reason.Name());
        Assert.True(DropReasons.TryParse(name, out var parsed));
        Assert.Equal(reason, parsed);
    }

    [Fact]
    public void EveryReasonHasAUniqueKebabName()
    {
        var seen = new HashSet<string>();
        for (var r = DropReason.None; r < DropReason.Count; r++)
        {
            string n = r.Name();
            Assert.Matches("^[a-z0-9]+(-[a-z0-9]+)*$", n);
            Assert.True(seen.Add(n), n);
        }
    }
}
