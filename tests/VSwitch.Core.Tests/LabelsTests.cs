using VSwitch.Api;

namespace VSwitch.Core.Tests;

/// <summary>Attachment labels follow Kubernetes' rules, so a pod's or a Docker container's labels are taken as they are.</summary>
public class LabelsTests
{
    [Fact]
    public void Parse_takes_comma_separated_pairs_from_several_options_and_a_later_key_wins()
    {
        var l = Labels.Parse(["app=web,tier=front", "example.com/team=blue", "tier=back", "empty="]);
        Assert.Equal("web", l["app"]);
        Assert.Equal("back", l["tier"]);
        Assert.Equal("blue", l["example.com/team"]);
        Assert.Equal("", l["empty"]);
        Assert.Equal("app=web,empty=,example.com/team=blue,tier=back", Labels.Format(l));
    }

    [Theory]
    [InlineData("app", "write KEY=VALUE")]
    [InlineData("=web", "write KEY=VALUE")]
    [InlineData("app=-web", "'-web'")]
    [InlineData("bad key=x", "'bad key'")]
    [InlineData("Example.com/app=x", "'Example.com'")]
    [InlineData("a/b/c=x", "'a/b/c'")]
    public void Parse_names_the_bad_label(string spec, string named)
    {
        var e = Assert.Throws<FormatException>(() => Labels.Parse([spec]));
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public void Keys_and_values_longer_than_63_characters_are_refused()
    {
        Assert.NotNull(Labels.WhyNotKey(new string('a', 64)));
        Assert.Null(Labels.WhyNotKey(new string('a', 63)));
        Assert.NotNull(Labels.WhyNotValue("k", new string('a', 64)));
        var many = Enumerable.Range(0, Labels.MaxLabels + 1).ToDictionary(i => "k" + i, i => "v");
        Assert.Contains("at most", Labels.WhyNot(many));
    }
}
