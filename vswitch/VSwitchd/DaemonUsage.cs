using System.Reflection;
using System.Text;

namespace VSwitchd;

/// <summary>
/// vswitchd's command line described once: <c>--help</c> prints it as a usage text, <c>--man</c> (hidden) as the manual
/// page vswitchd(8) in roff, which tools/install.sh installs. The daemon parses three options by hand (Program.Main)
/// rather than through System.CommandLine, so a table here, next to that parser, is the single source for both texts;
/// converting the --help text afterwards (help2man) would lose the details only a manual has room for.
/// </summary>
public static class DaemonUsage
{
    /// <summary>One option: its value's name, the line --help prints, and what the manual adds to it.</summary>
    public sealed record Option(string Name, string Value, string Help, string Manual);

    public static readonly IReadOnlyList<Option> Options =
    [
        new("--config", "FILE", "JSON configuration of networks, ports and datapath (see README)",
            "A JSON configuration of networks, ports, the overlay and the datapath. It seeds an empty state database; " +
            "once the database holds a configuration, that is what runs, and at start vswitchd logs whether FILE says the " +
            "same or each difference, and that FILE was not applied (see --config-wins). Without it, vswitchd starts with " +
            "no network and is built through vsctl."),
        new("--config-wins", "", "apply FILE's networks, ports and overlay over the stored ones (API additions are kept)",
            "With --config: apply FILE's networks, ports and overlay over those stored in the database, in one " +
            "transaction. Rules, routes, static neighbours, remote MACs and attachments added through the API are kept " +
            "and applied again where they still fit."),
        new("--socket", "PATH", "management API socket (default $VSWITCH_SOCKET or /run/vswitch/vswitchd.sock)",
            "The management API (HTTP/JSON) on a Unix socket, mode 0666: every request is authorised by the caller's " +
            "peer credentials (see --admin-group, --read-group). Default: $VSWITCH_SOCKET, else " +
            "/run/vswitch/vswitchd.sock. vswitchd refuses to start when another vswitchd answers on it."),
        new("--state", "PATH", "state database (default /var/lib/vswitch/state.db)",
            "The SQLite state database, default /var/lib/vswitch/state.db. Networks, ports, rules, routes, static " +
            "neighbours and MACs and attachments added through the API are committed there before the API answers, so " +
            "an acknowledged change survives a crash. Learned state (MAC table, flow cache) is not stored."),
        new("--admin-group", "GROUP", "members may change things through the API, as root may (default vswitch-admin)",
            "Members of GROUP (and root) may make every API request. The caller is identified by the Unix socket's peer " +
            "credentials (SO_PEERCRED) and its process's supplementary groups. Default: vswitch-admin, which " +
            "tools/install.sh creates."),
        new("--read-group", "GROUP", "members may read (GET) through the API (default vswitch-read)",
            "Members of GROUP may read: every GET, and POST /v1/trace (a made-up packet, nothing changes). Anyone who is " +
            "neither root nor in either group is refused with 403 and a message naming the group that would allow it. " +
            "Default: vswitch-read, which tools/install.sh creates."),
        new("--audit-keep", "N", "audit records kept in the state database (default 10000)",
            "Every API request that may change something (all but reads), allowed or refused, is recorded in the state " +
            "database with its time, caller (uid, user, pid) and status; vsctl audit shows them. The newest N are kept " +
            "(default 10000); the number pruned is counted."),
        new("--tls-listen", "ADDR:PORT", "also serve the API over TCP with mutual TLS (needs the three --tls-* files)",
            "Also serve the API on ADDR:PORT over HTTPS, where each caller must present a client certificate that chains " +
            "to --tls-client-ca. Its subject gives the role, as Kubernetes reads one: O=vswitch-admin (the --admin-group " +
            "name) may change things, O=vswitch-read (the --read-group name) may read; the subject is what the audit log " +
            "records. Off by default."),
        new("--tls-cert", "FILE", "the TLS listener's certificate (PEM)",
            "The server certificate of --tls-listen, PEM."),
        new("--tls-key", "FILE", "the TLS listener's private key (PEM)",
            "The private key of --tls-cert, PEM (PKCS#8, or the key's own PEM format)."),
        new("--tls-client-ca", "FILE", "CA certificate(s) that client certificates must chain to (PEM)",
            "One or more CA certificates, PEM: a client certificate is trusted when it chains to one of them. Revocation is " +
            "not checked (a private CA seldom publishes lists): withdraw certificates by changing the CA."),
        new("--docker-plugin", "PATH", "serve Docker's remote network and IPAM driver on PATH (/run/docker/plugins/vswitch.sock)",
            "Serve libnetwork's remote NetworkDriver and IpamDriver protocol on the Unix socket PATH. dockerd finds NAME.sock " +
            "in /run/docker/plugins by itself: docker network create -d NAME [--ipam-driver NAME] makes a vswitch network, " +
            "and each container's endpoint is a TAP the switch makes and Docker moves into the container. Off by default."),
        new("--docker-host", "SOCKET", "dockerd's API socket (unix:///var/run/docker.sock), for container names and labels",
            "dockerd's API socket (unix:///var/run/docker.sock, or a path). Docker does not tell a remote driver which " +
            "container an endpoint belongs to; with this option vswitchd asks dockerd after each join, and records the " +
            "container's name and labels on its attachment. Without it, endpoints are named by their id."),
    ];

    /// <summary>What --help prints (and a usage error after its message).</summary>
    public static string Help
    {
        get
        {
            var s = new StringBuilder("usage: vswitchd");
            foreach (var o in Options) s.Append(o.Value.Length == 0 ? $" [{o.Name}]" : $" [{o.Name} {o.Value}]");
            s.Append('\n');
            int width = Options.Max(o => o.Name.Length + 1 + o.Value.Length);
            foreach (var o in Options) s.Append($"  {(o.Value.Length == 0 ? o.Name : o.Name + " " + o.Value).PadRight(width)}   {o.Help}\n");
            return s.ToString();
        }
    }

    /// <summary>vswitchd(8) in roff (man(7) macros).</summary>
    public static string Manual()
    {
        string version = typeof(DaemonUsage).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "";
        if (version.IndexOf('+') is int plus and >= 0) version = version[..plus];
        var s = new StringBuilder();
        s.Append($$"""
            .\" vswitchd(8), generated by 'vswitchd --man' from the daemon's option table (VSwitchd/DaemonUsage.cs).
            .TH VSWITCHD 8 "" "VSwitch {{Roff(version)}}" "VSwitch Manual"
            .ad l
            .nh
            .SH NAME
            vswitchd \- the VSwitch daemon: a userspace virtual switch and overlay router
            .SH SYNOPSIS
            .B vswitchd

            """);
        foreach (var o in Options)
            s.Append(o.Value.Length == 0 ? $".RB [ {Roff(o.Name)} ]\n" : $".RB [ {Roff(o.Name)}\n.IR {Roff(o.Value)} ]\n");
        s.Append("""
            .SH DESCRIPTION
            vswitchd reads Ethernet frames from TAP and AF_PACKET ports in batches, learns MAC addresses, runs an
            OpenFlow\-like rule table with an exact\-match flow cache, routes IPv4 between networks and carries
            networks between hosts over VXLAN. It creates the TAP devices of its ports and attachments and moves them
            into network namespaces (containers), and shows every table it uses through a management API on a Unix
            socket, which
            .BR vsctl (1)
            and the CNI plugin
            .B vswitch\-cni
            use. It runs as root (TAP devices, namespaces, AF_PACKET sockets).
            .SH OPTIONS

            """);
        foreach (var o in Options)
            s.Append(o.Value.Length == 0 ? $".TP\n.B {Roff(o.Name)}\n{Roff(o.Manual)}\n" : $".TP\n.BI \"{Roff(o.Name)} \" {Roff(o.Value)}\n{Roff(o.Manual)}\n");
        s.Append("""
            .TP
            .BR \-h ", " \-\-help
            Print the usage and exit.
            .SH SIGNALS
            SIGTERM or SIGINT stops vswitchd cleanly: it removes the TAP devices it created (unless a port is
            \fIpersistent\fR) and the socket. Attachments stay stored and get their TAPs back at the next start when
            their namespaces still exist.
            .PP
            SIGUSR2 restarts vswitchd without losing traffic, as \fBvsctl restart\fR does: a new process of the same
            binary takes over every port, the API socket and the state lock, then this one exits 0 (see the README,
            "Restart and upgrade without loss"). After a crash, attachments' TAPs are still there (persistent) and
            are re-attached at the next start.
            .SH EXIT STATUS
            .TP
            .B 0
            Stopped cleanly.
            .TP
            .B 1
            Another vswitchd already answers on the socket.
            .TP
            .B 2
            A usage error, a bad configuration (the message names the field and the value), a state database that
            cannot be opened, or a port that could not be created at start (everything created is removed first).
            .SH ENVIRONMENT
            .TP
            .B VSWITCH_SOCKET
            The API socket when \fB\-\-socket\fR is not given.
            .SH FILES
            .TP
            .I /run/vswitch/vswitchd.sock
            The management API (HTTP/JSON under /v1; Prometheus text at /metrics; OpenAPI at /openapi/v1.json).
            .TP
            .I /var/lib/vswitch/state.db
            The state database (SQLite, WAL).
            .SH EXAMPLES
            .nf
            vswitchd \-\-config /etc/vswitch/config.json &
            vsctl show
            curl \-\-unix\-socket /run/vswitch/vswitchd.sock http://localhost/metrics
            .fi
            .SH SEE ALSO
            .BR vsctl (1)

            """);
        return s.ToString();
    }

    /// <summary>Text made safe for roff: backslashes, hyphens (minus signs, so options copy as typed), control lines.</summary>
    private static string Roff(string text)
    {
        string t = text.Replace("\\", "\\e").Replace("-", "\\-");
        return t.Length > 0 && (t[0] == '.' || t[0] == '\'') ? "\\&" + t : t;
    }
}
