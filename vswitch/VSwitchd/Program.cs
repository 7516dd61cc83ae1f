using System.Net.Sockets;
using VSwitch.Core;
using VSwitchd.Api;
using VSwitchd.Api.Access;
using VSwitchd.Config;
using VSwitchd.Host;
using VSwitchd.Runtime;
using VSwitchd.Runtime.Handover;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace VSwitchd;

public static class Program
{
    public const string DefaultSocket = "/run/vswitch/vswitchd.sock";
    public const string DefaultState = "/var/lib/vswitch/state.db";

    /// <summary>The API socket's mode: rw for everyone; the daemon authorises each request (README: "Access control and audit").</summary>
    public const UnixFileMode SocketMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;

    public static int Main(string[] args)
    {
        string? configPath = null, socket = Environment.GetEnvironmentVariable("VSWITCH_SOCKET"), state = null, takeoverPath = null;
        bool configWins = false;
        string adminGroup = AccessPolicy.DefaultAdminGroup, readGroup = AccessPolicy.DefaultReadGroup;
        int auditKeep = AuditLog.DefaultKeep;
        string? tlsListen = null, tlsCert = null, tlsKey = null, tlsClientCa = null, http = null;
        string? dockerPlugin = null, dockerHost = null;
        string? etcdEndpoints = null, etcdPrefix = null, publicIp = null, leaseTtl = null, clusterFile = null;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string? Next() => i + 1 < args.Length ? args[++i] : null;
            switch (a)
            {
                case "--config": configPath = Next() ?? UsageError("--config needs a file"); break;
                case "--socket": socket = Next() ?? UsageError("--socket needs a path"); break;
                case "--state": state = Next() ?? UsageError("--state needs a path"); break;
                case "--config-wins": configWins = true; break;
                case "--admin-group": adminGroup = Next() ?? UsageError("--admin-group needs a group name") ?? ""; break;
                case "--read-group": readGroup = Next() ?? UsageError("--read-group needs a group name") ?? ""; break;
                case "--audit-keep":
                    string? keep = Next();
                    if (keep is null || !int.TryParse(keep, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out auditKeep) || auditKeep < 1)
                        return UsageExit($"--audit-keep: '{keep}' is not a number of records (1 or more)");
                    break;
                case "--http": http = Next() ?? UsageError("--http needs ADDR:PORT"); break;
                case "--tls-listen": tlsListen = Next() ?? UsageError("--tls-listen needs ADDR:PORT"); break;
                case "--tls-cert": tlsCert = Next() ?? UsageError("--tls-cert needs a PEM file"); break;
                case "--tls-key": tlsKey = Next() ?? UsageError("--tls-key needs a PEM file"); break;
                case "--tls-client-ca": tlsClientCa = Next() ?? UsageError("--tls-client-ca needs a PEM file"); break;
                case "--docker-plugin": dockerPlugin = Next() ?? UsageError("--docker-plugin needs a socket path (/run/docker/plugins/vswitch.sock)"); break;
                case "--docker-host": dockerHost = Next() ?? UsageError("--docker-host needs dockerd's API socket (unix:///var/run/docker.sock)"); break;
                case "--etcd-endpoints": etcdEndpoints = Next() ?? UsageError("--etcd-endpoints needs URLS (http://127.0.0.1:2379,...)"); break;
                case "--etcd-prefix": etcdPrefix = Next() ?? UsageError("--etcd-prefix needs a key prefix"); break;
                case "--public-ip": publicIp = Next() ?? UsageError("--public-ip needs an IPv4 address"); break;
                case "--lease-ttl": leaseTtl = Next() ?? UsageError("--lease-ttl needs a number of seconds"); break;
                case "--cluster-file": clusterFile = Next() ?? UsageError("--cluster-file needs a file"); break;
                // Not for people: a running vswitchd starts its successor with it (POST /v1/restart, SIGUSR2).
                case "--takeover": takeoverPath = Next() ?? UsageError("--takeover needs the hand-over socket"); break;
                case "-h" or "--help": Console.Write(DaemonUsage.Help); return 0;
                case "--man": Console.Write(DaemonUsage.Manual()); return 0; // vswitchd(8), for tools/install.sh
                default: return UsageExit($"unknown argument '{a}'");
            }
        }
        if (configPath == "" || socket == "" || state == "" || adminGroup == "" || readGroup == "" || takeoverPath == "") return 2;
        if (configWins && configPath is null) return UsageExit("--config-wins needs --config FILE");
        if (dockerPlugin == "" || dockerHost == "") return 2;
        if (dockerHost is not null && dockerPlugin is null) return UsageExit("--docker-host goes with --docker-plugin PATH");
        if (dockerPlugin is not null && !dockerPlugin.EndsWith(".sock", StringComparison.Ordinal))
            return UsageExit($"--docker-plugin: '{dockerPlugin}' must end in .sock (dockerd finds NAME.sock in /run/docker/plugins and calls the driver NAME)");
        if (dockerHost is not null) dockerHost = dockerHost.StartsWith("unix://", StringComparison.Ordinal) ? dockerHost["unix://".Length..] : dockerHost;
        if (dockerHost is not null && !dockerHost.StartsWith('/'))
            return UsageExit($"--docker-host: '{dockerHost}' is not a Unix socket (unix:///var/run/docker.sock or a path)");
        if (tlsListen == "" || tlsCert == "" || tlsKey == "" || tlsClientCa == "") return 2;
        TlsListener? tls = null;
        if (tlsListen is not null || tlsCert is not null || tlsKey is not null || tlsClientCa is not null)
        {
            if (tlsListen is null || tlsCert is null || tlsKey is null || tlsClientCa is null)
                return UsageExit("the TLS listener needs all of --tls-listen ADDR:PORT, --tls-cert FILE, --tls-key FILE and --tls-client-ca FILE");
            if (TlsListener.ParseEndpoint(tlsListen) is not { } endpoint)
                return UsageExit($"--tls-listen: '{tlsListen}' is not ADDR:PORT (e.g. 127.0.0.1:6650 or [::]:6650)");
            tls = new TlsListener(endpoint, tlsCert, tlsKey, tlsClientCa);
        }
        System.Net.IPEndPoint? httpEndpoint = null;
        if (http == "") return 2;
        if (http is not null && TlsListener.ParseEndpoint(http) is not { } he)
            return UsageExit($"--http: '{http}' is not ADDR:PORT (e.g. 127.0.0.1:8080)");
        else if (http is not null) httpEndpoint = TlsListener.ParseEndpoint(http);
        socket ??= DefaultSocket;
        state ??= DefaultState;

        VSwitchConfig cfg;
        try { cfg = configPath is null ? new VSwitchConfig() : VSwitchConfig.Load(configPath); }
        catch (ConfigException e)
        {
            Console.Error.WriteLine($"vswitchd: {e.Message}");
            return 2;
        }

        if (etcdEndpoints == "" || etcdPrefix == "" || publicIp == "" || leaseTtl == "" || clusterFile == "") return 2;
        if (etcdEndpoints is not null || etcdPrefix is not null || publicIp is not null || leaseTtl is not null || clusterFile is not null)
        {
            // Flags win over the file's cluster section, field by field.
            var c = cfg.Cluster ??= new ClusterConfig();
            if (etcdEndpoints is not null) c.EtcdEndpoints = [.. etcdEndpoints.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
            if (etcdPrefix is not null) c.Prefix = etcdPrefix;
            if (publicIp is not null) c.PublicIp = publicIp;
            if (clusterFile is not null) c.StaticFile = clusterFile;
            if (leaseTtl is not null)
            {
                if (!int.TryParse(leaseTtl, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int ttl))
                    return UsageExit($"--lease-ttl: '{leaseTtl}' is not a number of seconds");
                c.LeaseTtlSeconds = ttl;
            }
        }
        VSwitch.Cluster.IClusterStore? clusterStore = null;
        if (cfg.Cluster is { } cluster)
        {
            if (cluster.Validate() is { Count: > 0 } bad) return UsageExit(string.Join("; ", bad));
            try
            {
                clusterStore = cluster.StaticFile is not null ? new VSwitch.Cluster.StaticClusterStore(cluster.StaticFile)
                    : new VSwitch.Cluster.EtcdClusterStore(cluster.EtcdEndpoints, cluster.Prefix);
            }
            catch (VSwitch.Cluster.ClusterConfigException e)
            {
                Console.Error.WriteLine($"vswitchd: {e.Message}");
                return 2;
            }
        }

        // A hitless restart's successor: the predecessor's descriptors (ports, API socket, state lock) come first.
        Takeover? takeover = null;
        if (takeoverPath is not null)
        {
            try { takeover = Takeover.Connect(takeoverPath); }
            catch (HandoverException e)
            {
                Console.Error.WriteLine($"vswitchd: cannot take over: {e.Message}");
                return 1;
            }
        }

        if (takeover is null && IsListening(socket))
        {
            Console.Error.WriteLine($"vswitchd: another vswitchd is already listening on {socket}");
            return 1;
        }

        // One daemon per state database: a second one would attach the same devices and write behind the first's back.
        StateLock? stateLock;
        try { stateLock = takeover is not null ? StateLock.Adopt(takeover.Inventory.LockFd, state) : StateLock.TryAcquire(state); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"vswitchd: cannot lock the state database '{state}': {e.Message} (choose another with --state PATH)");
            return 2;
        }
        if (stateLock is null)
        {
            Console.Error.WriteLine($"vswitchd: another vswitchd is using the state database '{state}' (it holds {state}.lock, which has its pid); stop it, or give this one another --state PATH");
            return 1;
        }
        using var heldLock = stateLock;

        StateStore store;
        try { store = new StateStore(state); }
        catch (Exception e) when (e is Microsoft.Data.Sqlite.SqliteException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"vswitchd: cannot open state database '{state}': {e.Message} (choose another with --state PATH)");
            takeover?.Fail(e.Message);
            return 2;
        }

        // The API's listening socket: made here rather than by Kestrel, so that its descriptor can be handed to a
        // successor (which listens on it without a moment closed) and no .NET object removes the file on exit.
        int apiFd;
        if (takeover is not null) apiFd = takeover.Inventory.ApiFd;
        else
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(socket))!);
            if (File.Exists(socket)) File.Delete(socket); // stale: nobody answered on it
            try { apiFd = ApiSocket.Listen(socket); }
            catch (IOException e)
            {
                Console.Error.WriteLine($"vswitchd: cannot listen on {socket}: {e.Message}");
                return 2;
            }
            // 0666: anyone may connect, and every request is authorised by the caller's peer credentials (ApiAccess):
            // a user without a role gets a 403 that says which group would let it in, rather than a bare EACCES.
            File.SetUnixFileMode(socket, SocketMode);
        }

        var builder = WebApplication.CreateSlimBuilder(VSwitchd.Host.WebHostOptions.Isolated());
        builder.Logging.ClearProviders();
        // Under systemd (started by it, or NOTIFY_SOCKET set in a container's PID 1): READY=1 once the API listens,
        // STOPPING=1 on SIGTERM, and log lines in journald's format ("<6>category[0] message", the priority as a
        // prefix, no timestamp: the journal adds its own). Anywhere else the console format is unchanged.
        builder.Services.AddSystemd();
        // A successor's parent is its predecessor, not systemd, so AddSystemd does not see the service: the notify
        // socket it inherited says it (it then sends MAINPID= and READY=1 itself; the unit has NotifyAccess=all).
        bool successorUnderSystemd = takeover is not null && !Microsoft.Extensions.Hosting.Systemd.SystemdHelpers.IsSystemdService()
            && !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NOTIFY_SOCKET"));
        if (successorUnderSystemd)
        {
            builder.Services.AddSingleton<Microsoft.Extensions.Hosting.Systemd.ISystemdNotifier, Microsoft.Extensions.Hosting.Systemd.SystemdNotifier>();
            builder.Services.AddSingleton<IHostLifetime, Microsoft.Extensions.Hosting.Systemd.SystemdLifetime>();
        }
        bool underSystemd = Microsoft.Extensions.Hosting.Systemd.SystemdHelpers.IsSystemdService() || successorUnderSystemd;
        // Every line goes through the log budget (limits.logLinesPerSecond) before reaching the console or journald.
        var logSinks = LoggerFactory.Create(b =>
        {
            b.SetMinimumLevel(LogLevel.Trace); // the host's filters below decide what is logged
            if (underSystemd) b.AddSystemdConsole();
            else b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        });
        using var logBudget = new VSwitchd.Logging.LogRateLimiter(logSinks, cfg.Limits.LogLinesPerSecond);
        builder.Logging.AddProvider(logBudget);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Warning);
        builder.Services.AddSingleton(cfg.ToOptions());
        builder.Services.AddSingleton(cfg.Limits);
        builder.Services.AddSingleton(store);
        builder.Services.AddSingleton<SwitchRuntime>();
        builder.Services.AddSingleton<MetricsExporter>();
        builder.Services.AddSingleton(new AccessPolicy(adminGroup, readGroup));
        builder.Services.AddSingleton(new AuditOptions(auditKeep));
        builder.Services.AddSingleton<AuditLog>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<AuditLog>());
        builder.Services.AddOpenApi("v1", ApiDocs.AddExamples);
        // Let malformed bodies reach the JSON error answer (ApiErrors) instead of an empty 400.
        builder.Services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        builder.Services.AddHostedService<SwitchService>();
        // After SwitchService, so that it stops first: the lease is given back while the ports still forward.
        if (clusterStore is not null) builder.Services.AddHostedService(sp => new ClusterService(sp.GetRequiredService<SwitchRuntime>(), cfg.Cluster!, clusterStore,
            sp.GetRequiredService<ILogger<VSwitch.Cluster.ClusterAgent>>()));
        builder.Services.AddSingleton<Attachments>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Attachments>());
        builder.Services.AddSingleton<VSwitchd.Services.LoadBalancer>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<VSwitchd.Services.LoadBalancer>());
        // After the attachments: policies select them by their labels.
        builder.Services.AddSingleton<VSwitchd.Policy.NetworkPolicies>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<VSwitchd.Policy.NetworkPolicies>());
        if (dockerPlugin is not null)
        {
            // After the attachments: the driver serves endpoints they restored.
            builder.Services.AddSingleton(new VSwitchd.Docker.DockerPluginOptions(Path.GetFullPath(dockerPlugin), dockerHost));
            builder.Services.AddSingleton<VSwitchd.Docker.DockerPlugin>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<VSwitchd.Docker.DockerPlugin>());
        }
        builder.Services.AddSingleton(new DaemonHandles(socket, state, apiFd, heldLock) { CarriedArgs = CarriedArgs(args) });
        builder.Services.AddSingleton<WriteGate>();
        builder.Services.AddSingleton<HandoverService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<HandoverService>());
        if (takeover is not null)
        {
            // After the attachments (which adopt their TAPs): it starts the datapath once the predecessor's stopped.
            builder.Services.AddSingleton(takeover);
            builder.Services.AddHostedService<TakeoverService>();
        }
        builder.Services.AddHostedService<SystemdWatchdog>(); // WATCHDOG=1 while the datapath threads are alive
        // The contract's records with ASP.NET Core's web defaults, the options VSwitch.Api.ApiJson is generated with.
        // The daemon keeps reflection-based metadata: a body of the wrong type is then reported by the field's type
        // ("could not be converted to System.Int32" at vlan) where source-generated setters name the record.
        // ApiContractTests checks that both write the same JSON for every record.
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.CamelCase);
        // The socket made above (or handed over); each connection's caller is identified by its peer credentials
        // (ApiAccess), for the roles and the audit log.
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.ListenHandle((ulong)apiFd, listen => listen.IdentifyPeers());
            // The dashboard over plain HTTP (--http): no caller identity on TCP, so it may only read (DashboardAccess).
            if (httpEndpoint is not null) k.Listen(httpEndpoint, listen => listen.MarkDashboard());
            k.Limits.MaxRequestBodySize = cfg.Limits.ApiBodyBytes; // over it: 413, counted (api-request-body-bytes)
        });
        if (tls is not null)
        {
            try { tls.Configure(builder); }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine($"vswitchd: {e.Message}");
                takeover?.Fail(e.Message);
                store.Dispose();
                return 2;
            }
        }
        var app = builder.Build();

        var runtime = app.Services.GetRequiredService<SwitchRuntime>();
        runtime.Adopting = takeover?.Inventory;
        runtime.LogLimiter = logBudget;
        runtime.MoreLimits = app.Services.GetRequiredService<AuditLog>().Limits;
        string origin;
        try { origin = runtime.Apply(cfg, configPath, configWins); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Console.Error.WriteLine($"vswitchd: cannot start: {e.Message}");
            takeover?.Fail(e.Message);
            runtime.Dispose();
            store.Dispose();
            return 2;
        }
        if (takeover is not null) origin = $"taken over from pid {takeover.Inventory.Offer.Pid}, {origin}";

        ManagementApi.Map(app);
        VSwitchd.Dashboard.DashboardApi.Map(app);
        app.Services.GetRequiredService<MetricsExporter>().Map(app);
        app.MapOpenApi("/openapi/{documentName}.json");
        app.UseApiAccess(); // before the error handler: the audit records the status it gives
        app.UseApiErrors();
        app.UseBodyLimitAnswer(runtime);
        app.UseHandoverWriteGate();
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            app.Logger.LogInformation("API access: {Access}", app.Services.GetRequiredService<AccessPolicy>().Describe());
            app.Logger.LogInformation("vswitchd ready ({Origin}): {Networks} network(s), {Ports} port(s), {Rules} rule(s), API on {Socket}",
                origin, runtime.Datapath.Topology.Networks.Count, runtime.Datapath.Topology.Ports.Count, runtime.Datapath.Rules.Rules.Count, socket);
        });
        try
        {
            app.Run();
        }
        catch (Exception e) when (takeover is not null && e is HandoverException or IOException)
        {
            // The take-over failed before this datapath ran: the predecessor forwards on (it heard why).
            Console.Error.WriteLine($"vswitchd: cannot take over: {e.Message}");
            runtime.Dispose();
            store.Dispose();
            return 1;
        }
        finally
        {
            runtime.Dispose();
            store.Dispose();
            // Handed over: the socket file is the successor's now.
            if (runtime.SuccessorPid is null) try { File.Delete(socket); } catch (IOException) { }
        }
        return 0;
    }

    /// <summary>
    /// The arguments a successor gets again (POST /v1/restart): all but --socket, --state and --takeover, which it gets
    /// anew, and --config-wins: the file was applied once; the successor runs what is stored, as a plain restart would.
    /// </summary>
    private static List<string> CarriedArgs(string[] args)
    {
        var carried = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--socket" or "--state" or "--takeover": i++; break;
                case "--config-wins": break;
                case "--config":
                    carried.Add(args[i]);
                    if (i + 1 < args.Length) carried.Add(Path.GetFullPath(args[++i])); // the successor may start elsewhere
                    break;
                default: carried.Add(args[i]); break;
            }
        }
        return carried;
    }

    private static string? UsageError(string message)
    {
        UsageExit(message);
        return "";
    }

    private static int UsageExit(string message)
    {
        Console.Error.WriteLine($"vswitchd: {message}");
        Console.Error.Write(DaemonUsage.Help);
        return 2;
    }

    private static bool IsListening(string socket)
    {
        if (!File.Exists(socket)) return false;
        try
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.Connect(new UnixDomainSocketEndPoint(socket));
            return true;
        }
        catch (SocketException) { return false; }
    }
}
