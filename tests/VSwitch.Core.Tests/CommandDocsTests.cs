using System.Text.RegularExpressions;

namespace VSwitch.Core.Tests;

/// <summary>
/// vsctl's completion scripts and manual page (vsctl completion bash|zsh, vsctl man) and vswitchd's (--help, --man) are
/// generated from what parses the command line: every command, alias and option reaches them, and the hidden
/// generators themselves stay out of help. Rendering and shell syntax are checked by the integration tests' install test.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class CommandDocsTests
{
    private static (int Code, string Out, string Err) Vsctl(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = VSwitch.Ctl.Program.Run(args, stdout, stderr).GetAwaiter().GetResult();
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>The commands help lists under "Commands:" for a command path: (name, aliases).</summary>
    private static List<string[]> HelpCommands(params string[] path)
    {
        var (code, text, err) = Vsctl([.. path, "--help"]);
        Assert.True(code == 0, err);
        int at = text.IndexOf("Commands:\n", StringComparison.Ordinal);
        if (at < 0) return [];
        return text[(at + "Commands:\n".Length)..].Split('\n')
            .TakeWhile(l => l.StartsWith("  ", StringComparison.Ordinal))
            .Select(l => Regex.Match(l, @"^  ([^\s,]+(?:, [^\s,]+)*)").Groups[1].Value.Split(", "))
            .ToList();
    }

    [Fact]
    public void Every_command_and_alias_of_help_is_completed_by_both_shells_and_documented_in_the_manual()
    {
        var bash = Vsctl("completion", "bash");
        var zsh = Vsctl("completion", "zsh");
        var man = Vsctl("man");
        Assert.True(bash.Code == 0 && zsh.Code == 0 && man.Code == 0, bash.Err + zsh.Err + man.Err);

        int seen = 0;
        foreach (var group in HelpCommands())
        {
            // Help lists a command's name and aliases sorted ("neigh, neighbor"): each is completed, one of them is canonical.
            foreach (string alias in group)
            {
                Assert.Contains($"\"/{alias}\")", bash.Out.Replace("|", ")"));
                Assert.Matches($@"\(([a-z-]+\|)*{Regex.Escape(alias)}(\|[a-z-]+)*\) _vsctl_", zsh.Out);
            }
            foreach (var sub in HelpCommands(group[0]))
            {
                seen++;
                var paths = group.SelectMany(p => sub.Select(s => $"{p} {s}")).ToList();
                Assert.Contains(paths, path => bash.Out.Contains($"REPLY=\"{path}\"", StringComparison.Ordinal));
                // roff writes a hyphen as "\-" (network host-port).
                Assert.Contains(paths, path => man.Out.Contains($".SS \"{path.Replace("-", "\\-")}\"", StringComparison.Ordinal));
            }
        }
        Assert.True(seen > 20, $"only {seen} subcommands found in help");
    }

    [Fact]
    public void Options_and_their_known_values_are_completed_and_documented()
    {
        var (_, bash, _) = Vsctl("completion", "bash");
        var (_, zsh, _) = Vsctl("completion", "zsh");
        var (_, man, _) = Vsctl("man");
        var (_, help, _) = Vsctl("port", "add", "--help");
        foreach (Match m in Regex.Matches(help, @"^  (--[a-z-]+)", RegexOptions.Multiline))
        {
            string option = m.Groups[1].Value;
            Assert.Matches($"\"port add\"\\).*_vsctl_opts=\"[^\"]*{Regex.Escape(option)}( |\")", bash);
            Assert.Contains($"'{option}[", zsh.Replace("'*--", "'--"));
            Assert.Contains(option.Replace("-", "\\-"), man);
        }
        Assert.Contains("\"port add/--type\") mapfile -t COMPREPLY < <(compgen -W \"afpacket afxdp tap\"", bash);
        Assert.Contains(":afpacket|afxdp|tap:(afpacket afxdp tap)'", zsh);
        Assert.Contains("*/--socket) compopt -o filenames", bash);
        Assert.Contains("[default: /run/vswitch/vswitchd.sock]", man);
        Assert.Contains("(REQUIRED)", man);
    }

    [Fact]
    public void The_generators_are_hidden_from_help_and_refuse_an_unknown_shell()
    {
        var (_, help, _) = Vsctl("--help");
        Assert.DoesNotContain("completion", help);
        Assert.DoesNotMatch(@"^\s+man\s", help);
        var fish = Vsctl("completion", "fish");
        Assert.Equal(2, fish.Code);
        Assert.Contains("fish", fish.Err);
    }

    [Fact]
    public void The_manual_documents_built_in_defaults_whatever_the_environment_says()
    {
        string? before = Environment.GetEnvironmentVariable("VSWITCH_SOCKET");
        Environment.SetEnvironmentVariable("VSWITCH_SOCKET", "/tmp/elsewhere.sock");
        try
        {
            var (_, man, _) = Vsctl("man");
            Assert.DoesNotContain("elsewhere", man);
            Assert.Equal("/tmp/elsewhere.sock", Environment.GetEnvironmentVariable("VSWITCH_SOCKET"));
        }
        finally { Environment.SetEnvironmentVariable("VSWITCH_SOCKET", before); }
    }

    [Fact]
    public void Vswitchd_help_and_manual_come_from_one_option_table()
    {
        Assert.Equal("""
            usage: vswitchd [--config FILE] [--config-wins] [--socket PATH] [--state PATH] [--admin-group GROUP] [--read-group GROUP] [--audit-keep N] [--http ADDR:PORT] [--tls-listen ADDR:PORT] [--tls-cert FILE] [--tls-key FILE] [--tls-client-ca FILE] [--docker-plugin PATH] [--docker-host SOCKET] [--etcd-endpoints URLS] [--etcd-prefix PREFIX] [--public-ip IP] [--lease-ttl SECONDS] [--cluster-file FILE]
              --config FILE            JSON configuration of networks, ports and datapath (see README)
              --config-wins            apply FILE's networks, ports and overlay over the stored ones (API additions are kept)
              --socket PATH            management API socket (default $VSWITCH_SOCKET or /run/vswitch/vswitchd.sock)
              --state PATH             state database (default /var/lib/vswitch/state.db)
              --admin-group GROUP      members may change things through the API, as root may (default vswitch-admin)
              --read-group GROUP       members may read (GET) through the API (default vswitch-read)
              --audit-keep N           audit records kept in the state database (default 10000)
              --http ADDR:PORT         serve the read-only web dashboard (and GET /v1) over plain HTTP, e.g. 127.0.0.1:8080
              --tls-listen ADDR:PORT   also serve the API over TCP with mutual TLS (needs the three --tls-* files)
              --tls-cert FILE          the TLS listener's certificate (PEM)
              --tls-key FILE           the TLS listener's private key (PEM)
              --tls-client-ca FILE     CA certificate(s) that client certificates must chain to (PEM)
              --docker-plugin PATH     serve Docker's remote network and IPAM driver on PATH (/run/docker/plugins/vswitch.sock)
              --docker-host SOCKET     dockerd's API socket (unix:///var/run/docker.sock), for container names and labels
              --etcd-endpoints URLS    cluster mode: etcd client URLs, comma-separated (http://127.0.0.1:2379,...)
              --etcd-prefix PREFIX     cluster mode: the key prefix (default /coreos.com/network)
              --public-ip IP           cluster mode: this host's underlay address (its VTEP and its lease's PublicIP)
              --lease-ttl SECONDS      cluster mode: the TTL of this host's lease (default 86400, 24 h)
              --cluster-file FILE      cluster mode without etcd: a file listing every host (subnet, public IP, VTEP MAC)

            """, VSwitchd.DaemonUsage.Help);
        string man = VSwitchd.DaemonUsage.Manual();
        Assert.StartsWith(".\\\"", man);
        Assert.Contains(".TH VSWITCHD 8", man);
        foreach (var o in VSwitchd.DaemonUsage.Options)
            Assert.Contains(o.Value.Length == 0 ? $".B {o.Name.Replace("-", "\\-")}\n" : $".BI \"{o.Name.Replace("-", "\\-")} \" {o.Value}", man);
        Assert.Contains(".BR vsctl (1)", man);
    }
}
