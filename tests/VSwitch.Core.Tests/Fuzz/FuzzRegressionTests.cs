using System.Runtime.Versioning;
using VSwitch.Cni;
using VSwitchd.Config;

namespace VSwitch.Core.Tests.Fuzz;

/// <summary>
/// What the fuzz runs found, each refused now with the parser's own error (the inputs are in
/// tests/VSwitch.Fuzz/regressions, replayed by <see cref="FuzzCorpusTests"/> as well).
/// </summary>
[SupportedOSPlatform("linux")]
public class FuzzRegressionTests
{
    [Theory]
    [InlineData("""{"networks": null}""", "networks")]
    [InlineData("""{"datapath": null}""", "datapath")]
    [InlineData("""{"networks":[null]}""", "networks[0]")]
    [InlineData("""{"networks":[{"name":"a","vteps":null}]}""", "networks[0].vteps")]
    [InlineData("""{"networks":[{"name":"a","vteps":["10.0.0.1",null]}]}""", "networks[0].vteps[1]")]
    [InlineData("""{"networks":[{"name":"a"}],"ports":[{"name":"p","network":"a","addresses":[null]}]}""", "ports[0].addresses[0]")]
    public void A_config_null_is_a_config_error_naming_the_field(string json, string field)
    {
        var e = Assert.Throws<ConfigException>(() => VSwitchConfig.Parse(json, "test.json"));
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public void A_netconf_key_given_twice_is_invalid_json_and_peek_version_never_throws()
    {
        const string twice = """{"cniVersion":"1.0.0","cniVersion":"1.0.0","name":"x","type":"vswitch-cni"}""";
        var e = Assert.Throws<CniException>(() => NetConf.Parse(twice));
        Assert.Equal(CniException.InvalidConfig, e.Code);
        Assert.Null(NetConf.PeekVersion(twice));
        // The plugin calls PeekVersion before its error handling: a version that is not a string is just unknown.
        Assert.Null(NetConf.PeekVersion("""{"cniVersion":5}"""));
        Assert.Equal("1.1.0", NetConf.PeekVersion("""{"cniVersion":"1.1.0"}"""));
    }
}
