using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Makaretu.Dns;
using VSwitchd.Host;

namespace VSwitchd.Services;

/// <summary>
/// Name discovery: a DNS server (UDP and TCP 53) in the switch's services namespace, reached by
/// containers at their gateway's address (the gateway's port 53 is destination-NATed to it, see
/// <see cref="LoadBalancer"/>). It answers A records for service names (their VIP) and containers'
/// names (attachments' names, their address), as given or under the search domain <c>vswitch</c>
/// (<c>web</c> and <c>web.vswitch</c>); a known name asked for another type gets an empty answer, any other
/// name NXDOMAIN. It forwards nothing: names outside the switch are not its business, and a container
/// that needs them gets another resolver. Messages are read and written by Makaretu.Dns.
/// </summary>
public sealed class DnsServer(Func<IReadOnlyDictionary<string, IPAddress>> names, ILogger log) : IDisposable
{
    /// <summary>The search domain written into containers' resolv.conf.</summary>
    public const string Domain = "vswitch";
    public static readonly TimeSpan Ttl = TimeSpan.FromSeconds(5);

    private Socket? _udp, _tcp;
    private CancellationTokenSource? _stop;
    private string? _netns;

    public long Queries, NxDomain;

    public bool Listening => _udp is not null;

    /// <summary>Starts listening in <paramref name="netns"/> (again if it changed); false when it cannot.</summary>
    public bool Start(string netns)
    {
        if (_netns == netns && _udp is not null) return true;
        Dispose();
        try
        {
            _udp = SocketInNetns.Create(netns, AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            _udp.Bind(new IPEndPoint(IPAddress.Any, 53));
            _tcp = SocketInNetns.Create(netns, AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            _tcp.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            _tcp.Bind(new IPEndPoint(IPAddress.Any, 53));
            _tcp.Listen(64);
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            log.LogWarning("DNS server cannot listen in {Netns}: {Error}", netns, e.Message);
            Dispose();
            return false;
        }
        _netns = netns;
        _stop = new CancellationTokenSource();
        _ = Task.Run(() => UdpLoop(_udp, _stop.Token));
        _ = Task.Run(() => TcpLoop(_tcp, _stop.Token));
        log.LogInformation("DNS server listening on port 53 (UDP and TCP) in {Netns}, reached at each routed network's gateway", netns);
        return true;
    }

    private async Task UdpLoop(Socket s, CancellationToken ct)
    {
        var buf = new byte[4096];
        while (!ct.IsCancellationRequested)
        {
            SocketReceiveFromResult r;
            try { r = await s.ReceiveFromAsync(buf, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), ct); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { return; }
            catch (SocketException) { continue; }
            var answer = Answer(buf.AsSpan(0, r.ReceivedBytes).ToArray(), udp: true);
            if (answer is null) continue;
            try { await s.SendToAsync(answer, SocketFlags.None, r.RemoteEndPoint, ct); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { return; }
            catch (SocketException) { }
        }
    }

    private async Task TcpLoop(Socket listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Socket c;
            try { c = await listener.AcceptAsync(ct); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { return; }
            catch (SocketException) { continue; }
            _ = Task.Run(() => Serve(c, ct));
        }
    }

    /// <summary>One TCP client: messages with a two-byte length (RFC 1035 4.2.2), until it closes or idles 10 s.</summary>
    private async Task Serve(Socket c, CancellationToken ct)
    {
        using (c)
        {
            var len = new byte[2];
            try
            {
                while (!ct.IsCancellationRequested)
                {
                    using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    idle.CancelAfter(TimeSpan.FromSeconds(10));
                    if (!await ReadExactly(c, len, idle.Token)) return;
                    var msg = new byte[BinaryPrimitives.ReadUInt16BigEndian(len)];
                    if (!await ReadExactly(c, msg, idle.Token)) return;
                    var answer = Answer(msg, udp: false);
                    if (answer is null) return;
                    var framed = new byte[answer.Length + 2];
                    BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)answer.Length);
                    answer.CopyTo(framed, 2);
                    await c.SendAsync(framed, SocketFlags.None, idle.Token);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
        }
    }

    private static async Task<bool> ReadExactly(Socket s, byte[] buf, CancellationToken ct)
    {
        int n = 0;
        while (n < buf.Length)
        {
            int r = await s.ReceiveAsync(buf.AsMemory(n), SocketFlags.None, ct);
            if (r == 0) return false;
            n += r;
        }
        return true;
    }

    /// <summary>The answer to one message, or null for what is not a query (dropped, as a resolver would).</summary>
    public byte[]? Answer(byte[] request, bool udp)
    {
        var q = new Message();
        try { q.Read(request, 0, request.Length); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return null; // not DNS: nothing to say to it
        }
        if (q.QR) return null;
        Interlocked.Increment(ref Queries);
        var r = q.CreateResponse();
        r.AA = true;
        r.RA = false;
        if (q.Opcode != MessageOperation.Query || q.Questions.Count != 1)
        {
            r.Status = q.Opcode != MessageOperation.Query ? MessageStatus.NotImplemented : MessageStatus.FormatError;
            return r.ToByteArray();
        }
        var question = q.Questions[0];
        var known = names();
        if (Lookup(question.Name.ToString(), known) is { } address)
        {
            if (question.Type is DnsType.A or DnsType.ANY)
                r.Answers.Add(new ARecord { Name = question.Name, Address = address, TTL = Ttl });
        }
        else
        {
            r.Status = MessageStatus.NameError;
            Interlocked.Increment(ref NxDomain);
        }
        var bytes = r.ToByteArray();
        if (udp && bytes.Length > 512)
        {
            // Never happens with one A record; a truncated answer would send the client to TCP.
            r.Answers.Clear();
            r.TC = true;
            bytes = r.ToByteArray();
        }
        return bytes;
    }

    /// <summary>A name as asked (with or without the final dot, any case) or under <see cref="Domain"/>.</summary>
    public static IPAddress? Lookup(string asked, IReadOnlyDictionary<string, IPAddress> known)
    {
        string n = asked.TrimEnd('.').ToLowerInvariant();
        if (n.EndsWith("." + Domain, StringComparison.Ordinal)) n = n[..^(Domain.Length + 1)];
        return known.TryGetValue(n, out var a) ? a : null;
    }

    public void Dispose()
    {
        _stop?.Cancel();
        _udp?.Dispose();
        _tcp?.Dispose();
        _udp = _tcp = null;
        _netns = null;
    }
}
