using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace VSwitch.Integration.Tests;

/// <summary>
/// Makes root-namespace loopback ports (etcd's members) reachable on the same ports of a test namespace's loopback: a
/// listener created inside the namespace (a dedicated thread enters it with setns, makes the socket and ends; the socket
/// stays in that namespace), each connection relayed to 127.0.0.1:PORT of the test process's namespace. A member that is
/// down refuses the relayed connection, so the client sees what it would see without the relay.
/// </summary>
public sealed class NetnsRelay : IDisposable
{
    private const int CloneNewNet = 0x40000000;
    [DllImport("libc", SetLastError = true)]
    private static extern int setns(int fd, int nstype);

    private readonly List<Socket> _listeners = [];
    private readonly List<Socket> _open = [];
    private readonly CancellationTokenSource _stop = new();

    public NetnsRelay(string netnsName, IEnumerable<int> ports)
    {
        foreach (int port in ports)
        {
            var l = ListenIn("/run/netns/" + netnsName, new IPEndPoint(IPAddress.Loopback, port));
            _listeners.Add(l);
            _ = AcceptLoop(l, port);
        }
    }

    private static Socket ListenIn(string nsPath, IPEndPoint ep)
    {
        Socket? s = null;
        Exception? error = null;
        var t = new Thread(() =>
        {
            try
            {
                using var ns = File.OpenHandle(nsPath);
                if (setns((int)ns.DangerousGetHandle(), CloneNewNet) != 0) throw new IOException($"setns {nsPath}: errno {Marshal.GetLastPInvokeError()}");
                s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                s.Bind(ep);
                s.Listen(64);
            }
            catch (Exception e) { error = e; }
            // The thread ends here, in the namespace it entered: nothing else ever runs on it.
        });
        t.Start();
        t.Join();
        return s ?? throw new IOException($"cannot listen on {ep} in {nsPath}", error);
    }

    private async Task AcceptLoop(Socket listener, int port)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket inner;
            try { inner = await listener.AcceptAsync(_stop.Token); }
            catch (Exception) { return; }
            _ = Relay(inner, port);
        }
    }

    private async Task Relay(Socket inner, int port)
    {
        var outer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        lock (_open) { _open.Add(inner); _open.Add(outer); }
        try
        {
            await outer.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), _stop.Token);
            using var a = new NetworkStream(inner, ownsSocket: false);
            using var b = new NetworkStream(outer, ownsSocket: false);
            // Either way ending closes both: a member that dies drops its clients' connections, as without the relay.
            await Task.WhenAny(a.CopyToAsync(b, _stop.Token), b.CopyToAsync(a, _stop.Token));
        }
        catch (Exception) { }
        finally
        {
            lock (_open) { _open.Remove(inner); _open.Remove(outer); }
            inner.Dispose();
            outer.Dispose();
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        foreach (var l in _listeners) l.Dispose();
        lock (_open) foreach (var s in _open.ToArray()) s.Dispose();
    }
}
