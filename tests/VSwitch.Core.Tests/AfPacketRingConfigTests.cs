using VSwitch.Api;
using VSwitch.Core.Ports;
using VSwitchd.Config;
using Xunit;

namespace VSwitch.Core.Tests;

/// <summary>
/// An afpacket port's receive ring (ringFrames × frameSize) as the config file, the API and vsctl give it: a bad value
/// comes back as an error naming the field, the value and the allowed range, from the same check everywhere, before
/// any socket exists; the defaults stay 120 slots of 68 KiB.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class AfPacketRingConfigTests
{
    private static string Config(string afpacket, string type = "afpacket") =>
        $$"""{ "networks": [ { "name": "blue" } ], "ports": [ { "name": "veth0", "type": "{{type}}", "network": "blue", "afpacket": {{afpacket}} } ] }""";

    [Theory]
    [InlineData("""{ "frameSize": 1000 }""", "ports[0].afpacket.frameSize: 1000 must be a multiple of 16, 1600..131072")]
    [InlineData("""{ "frameSize": 2050 }""", "ports[0].afpacket.frameSize: 2050 must be a multiple of 16, 1600..131072")]
    [InlineData("""{ "frameSize": 262144 }""", "ports[0].afpacket.frameSize: 262144 must be a multiple of 16, 1600..131072")]
    [InlineData("""{ "ringFrames": 7 }""", "ports[0].afpacket.ringFrames: 7 must be at least 8")]
    [InlineData("""{ "ringFrames": -1, "frameSize": 2048 }""", "ports[0].afpacket.ringFrames: -1 must be at least 8")]
    [InlineData("""{ "ringFrames": 200000, "frameSize": 2048 }""", "ports[0].afpacket.ringFrames: 200000 slots of 2048 bytes is 390 MiB; a ring may have at most 256 MiB (131072 slots of 2048)")]
    [InlineData("""{ "ringFrames": 4000 }""", "ports[0].afpacket.ringFrames: 4000 slots of 69632 bytes is 265 MiB; a ring may have at most 256 MiB (3855 slots of 69632)")]
    public void A_bad_ring_in_the_config_file_is_refused_naming_the_field_the_value_and_the_range(string afpacket, string error)
    {
        var e = Assert.Throws<ConfigException>(() => VSwitchConfig.Parse(Config(afpacket)));
        Assert.Contains(error, e.Message);
    }

    [Fact]
    public void Ring_options_on_a_port_that_is_not_afpacket_are_refused()
    {
        var tap = Assert.Throws<ConfigException>(() => VSwitchConfig.Parse(Config("""{ "ringFrames": 2048 }""", "tap")));
        Assert.Contains("ports[0].afpacket: AF_PACKET ring options are for afpacket ports (type is 'tap')", tap.Message);
        var xdp = Assert.Throws<ConfigException>(() => VSwitchConfig.Parse(Config("""{ "ringFrames": 2048 }""", "afxdp")));
        Assert.Contains("ports[0].afpacket: AF_PACKET ring options are for afpacket ports (type is 'afxdp'", xdp.Message);
    }

    [Theory]
    [InlineData("""{ "ringFrames": 2048, "frameSize": 2048 }""", 2048, 2048)]
    [InlineData("""{ "ringFrames": 8, "frameSize": 1600 }""", 8, 1600)]
    [InlineData("""{ "frameSize": 4096 }""", 120, 4096)]
    [InlineData("""{ "ringFrames": 3855 }""", 3855, 69632)]
    public void A_good_ring_reaches_the_ports_options(string afpacket, int frames, int frameSize)
    {
        var p = VSwitchConfig.Parse(Config(afpacket)).Ports[0];
        var o = p.Afpacket!.ToOptions("veth0", 2);
        Assert.Equal((frames, frameSize, 2, "veth0"), (o.RingFrameCount, o.RingFrameSize, o.Queues, o.Interface));
    }

    [Fact]
    public void Without_options_the_ring_keeps_its_defaults()
    {
        var p = VSwitchConfig.Parse("""{ "networks": [ { "name": "blue" } ], "ports": [ { "name": "veth0", "type": "afpacket", "network": "blue" } ] }""").Ports[0];
        Assert.Null(p.Afpacket);
        var o = new AfpacketConfig().ToOptions("veth0", 1);
        Assert.Equal((120, 68 * 1024), (o.RingFrameCount, o.RingFrameSize));
        Assert.Equal((120, 68 * 1024), (new AfPacketOptions().RingFrameCount, new AfPacketOptions().RingFrameSize));
    }

    [Fact]
    public void The_API_request_maps_to_the_same_configuration_and_the_same_check()
    {
        var p = PortConfig.FromRequest(new PortRequest { Name = "veth0", Type = "afpacket", Network = "blue", Afpacket = new AfpacketSettings { RingFrames = 2048 } });
        Assert.Equal((2048, 68 * 1024), (p.Afpacket!.RingFrames, p.Afpacket.FrameSize));
        var bad = PortConfig.FromRequest(new PortRequest { Name = "veth0", Type = "afpacket", Network = "blue", Afpacket = new AfpacketSettings { FrameSize = 1024 } });
        var errors = new VSwitchConfig { Networks = [new NetworkConfig { Name = "blue" }], Ports = [bad] }.Validate(_ => true, _ => true);
        Assert.Contains(errors, e => e.StartsWith("ports[0].afpacket.frameSize: 1024 must be a multiple of 16, 1600..131072", StringComparison.Ordinal));
    }

    [Fact]
    public void The_port_refuses_a_bad_ring_before_opening_a_socket()
    {
        // No root needed: the check comes first, so no interface or socket is involved.
        var e = Assert.Throws<ArgumentException>(() => AfPacketPort.Open(new AfPacketOptions { Interface = "nosuch0", RingFrameCount = 4, RingFrameSize = 2048 }));
        Assert.Contains("nosuch0: ring frames: 4 must be at least 8", e.Message);
        e = Assert.Throws<ArgumentException>(() => AfPacketPort.Open(new AfPacketOptions { Interface = "nosuch0", Queues = 65 }));
        Assert.Contains("queues: 65 must be 1..64", e.Message);
    }

    [Fact]
    public void The_smallest_slot_holds_a_full_size_frame()
    {
        Assert.True(AfPacketOptions.LargestFrame(AfPacketOptions.MinRingFrameSize) >= 1514);
        Assert.True(AfPacketOptions.LargestFrame(AfPacketOptions.DefaultRingFrameSize) >= 65535 + 14 + 4);
    }

    private static (int Code, string Err) Vsctl(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = VSwitch.Ctl.Program.Run(["--socket", "/tmp/nonexistent-afpring.sock", .. args], stdout, stderr).GetAwaiter().GetResult();
        return (code, stderr.ToString());
    }

    [Theory]
    [InlineData("tap", "--ring-frames", "2048")]
    [InlineData("afxdp", "--frame-size", "2048")]
    public void Vsctl_refuses_ring_flags_on_another_port_type_before_contacting_the_daemon(string type, string flag, string value)
    {
        var (code, err) = Vsctl("port", "add", "p1", "--network", "blue", "--type", type, flag, value);
        Assert.Equal(2, code);
        Assert.Contains("--ring-frames and --frame-size are for --type afpacket", err);
    }

    [Fact]
    public async Task Vsctl_completes_the_ring_flags_and_documents_port_show()
    {
        var stdout = new StringWriter();
        Assert.Equal(0, await VSwitch.Ctl.Program.Run(["completion", "bash"], stdout, new StringWriter()));
        Assert.Contains("--ring-frames", stdout.ToString());
        Assert.Contains("--frame-size", stdout.ToString());
        Assert.Contains("REPLY=\"port show\"", stdout.ToString());
    }

    [Fact]
    public void Vsctl_refuses_a_ring_flag_that_is_not_a_number()
    {
        var (code, err) = Vsctl("port", "add", "p1", "--network", "blue", "--type", "afpacket", "--frame-size", "2k");
        Assert.Equal(2, code);
        Assert.Contains("--frame-size: '2k' is not a number", err);
    }
}
