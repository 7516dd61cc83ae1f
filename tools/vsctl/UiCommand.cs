using System.CommandLine;
using System.Net;
using System.Net.Sockets;

namespace VSwitch.Ctl;

/// <summary>
/// <c>vsctl ui</c>: the web dashboard through the API's Unix socket. vsctl listens on a loopback TCP port and joins each
/// browser connection to a new connection of its own to the socket, byte for byte: vswitchd sees vsctl's process as the
/// caller, so the dashboard has this user's role (an admin may run a live trace; a reader only reads), and vswitchd
/// needs no TCP listener at all.
/// </summary>
public static class UiCommand
{
    public static Command Create(Cli cli)
    {
        var port = Cli.IntOption("--port", "The loopback port to serve on (default 8088; 0 picks a free one)");
        var ui = new Command("ui", "Serve the web dashboard on 127.0.0.1 through vswitchd's socket, with this user's role (Ctrl-C stops)") { port };
        cli.SetAction(ui, async (ctx, ct) =>
        {
            int p = ctx.Get(port) ?? 8088;
            if (p is < 0 or > 65535) throw new CtlException($"--port {p} must be 0..65535", kind: ErrorKind.Usage);
            await ctx.Api.GetAsync("v1/show", ct); // says now, not at the first page, when vswitchd cannot be reached
            using var listener = new TcpListener(IPAddress.Loopback, p);
            try { listener.Start(); }
            catch (SocketException e) { throw new CtlException($"--port {p}: {e.Message}", kind: ErrorKind.Invalid); }
            int bound = ((IPEndPoint)listener.LocalEndpoint).Port;
            ctx.Out.WriteLine($"dashboard: http://127.0.0.1:{bound}/ui/ (through {ctx.Api.SocketPath}; Ctrl-C stops)");
            ctx.Out.Flush();
            try
            {
                while (true)
                {
                    var client = await listener.AcceptTcpClientAsync(ct);
                    _ = Task.Run(() => Join(client, ctx.Api.SocketPath, ct), ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return Program.Ok; }
        });
        return ui;
    }

    /// <summary>Copies both ways between a browser's connection and a new one to the socket until either side closes.</summary>
    private static async Task Join(TcpClient client, string socketPath, CancellationToken ct)
    {
        using var _ = client;
        using var unix = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await unix.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
            await using var a = client.GetStream();
            await using var b = new NetworkStream(unix, ownsSocket: false);
            var up = a.CopyToAsync(b, ct);
            var down = b.CopyToAsync(a, ct);
            await Task.WhenAny(up, down);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException) { } // one side went away
    }
}
