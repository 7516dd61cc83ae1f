using System.Buffers.Binary;
using System.Text.Json;
using Tmds.Linux;
using VSwitch.Core.Ports.Linux;

namespace VSwitchd.Runtime.Handover;

/// <summary>
/// The hand-over's wire: a connected Unix stream socket carrying JSON messages (a 4-byte big-endian length,
/// then the text) and file descriptors (SCM_RIGHTS, in messages of one byte each carrying up to
/// <see cref="FdsPerMessage"/> fds; the JSON before them says how many). Every read has a deadline, so a
/// peer that hangs or dies is a <see cref="HandoverException"/>, never a wait for ever. Received fds are
/// close-on-exec (MSG_CMSG_CLOEXEC): the ip/nsenter runs of the new daemon never inherit them.
/// </summary>
public sealed unsafe class FdChannel : IDisposable
{
    /// <summary>The kernel takes at most 253 fds in one SCM_RIGHTS message (SCM_MAX_FD).</summary>
    public const int FdsPerMessage = 200;
    private const int MaxMessage = 64 << 20;
    private int _fd;

    public FdChannel(int fd) => _fd = fd;

    /// <summary>Connects to a listening hand-over socket.</summary>
    public static FdChannel Connect(string path)
    {
        var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        try
        {
            s.Connect(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
            return Own(s);
        }
        catch (System.Net.Sockets.SocketException e)
        {
            s.Dispose();
            throw new HandoverException($"cannot connect to the hand-over socket {path}: {e.Message}");
        }
    }

    /// <summary>Takes the socket's fd over from .NET (the channel closes it), in blocking mode.</summary>
    public static FdChannel Own(System.Net.Sockets.Socket s)
    {
        s.Blocking = true;
        var handle = s.SafeHandle;
        bool added = false;
        handle.DangerousAddRef(ref added);
        int fd = LibC.dup((int)handle.DangerousGetHandle());
        handle.DangerousRelease();
        s.Dispose();
        if (fd < 0) throw new HandoverException($"dup of the hand-over socket failed (errno {NativeError.Last})");
        int flags = LibC.fcntl(fd, LibC.F_GETFD, 0);
        LibC.fcntl(fd, LibC.F_SETFD, flags | LibC.FD_CLOEXEC);
        return new FdChannel(fd);
    }

    public void Send<T>(T message)
    {
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(message, HandoverJson.Options);
        var buf = new byte[4 + json.Length];
        BinaryPrimitives.WriteInt32BigEndian(buf, json.Length);
        json.CopyTo(buf, 4);
        fixed (byte* p = buf)
        {
            int off = 0;
            while (off < buf.Length)
            {
                long n = LibC.send(_fd, p + off, buf.Length - off, LibC.MSG_NOSIGNAL);
                if (n < 0)
                {
                    if (NativeError.Last == NativeError.EINTR) continue;
                    throw new HandoverException($"the other daemon closed the hand-over (send: errno {NativeError.Last})");
                }
                off += (int)n;
            }
        }
    }

    /// <summary>The next JSON message, read within <paramref name="timeout"/>.</summary>
    public T Receive<T>(TimeSpan timeout, string waitingFor)
    {
        var deadline = DateTime.UtcNow + timeout;
        Span<byte> len = stackalloc byte[4];
        ReadExact(len, deadline, waitingFor);
        int n = BinaryPrimitives.ReadInt32BigEndian(len);
        if (n <= 0 || n > MaxMessage) throw new HandoverException($"bad hand-over message length {n} while waiting for {waitingFor}");
        var body = new byte[n];
        ReadExact(body, deadline, waitingFor);
        try { return JsonSerializer.Deserialize<T>(body, HandoverJson.Options) ?? throw new HandoverException($"empty message instead of {waitingFor}"); }
        catch (JsonException e) { throw new HandoverException($"unreadable message instead of {waitingFor}: {e.Message}"); }
    }

    public void SendFds(IReadOnlyList<int> fds)
    {
        int maxControl = (int)(ulong)LibC.CMSG_SPACE(FdsPerMessage * sizeof(int));
        byte* control = stackalloc byte[maxControl];
        for (int at = 0; at < fds.Count; at += FdsPerMessage)
        {
            int count = Math.Min(FdsPerMessage, fds.Count - at);
            int controlLen = (int)(ulong)LibC.CMSG_SPACE(count * sizeof(int));
            new Span<byte>(control, maxControl).Clear();
            byte one = (byte)'F';
            var iov = new iovec { iov_base = &one, iov_len = 1 };
            var msg = new msghdr { msg_iov = &iov, msg_iovlen = 1, msg_control = control, msg_controllen = (socklen_t)(uint)controlLen };
            cmsghdr* c = LibC.CMSG_FIRSTHDR(&msg);
            c->cmsg_level = LibC.SOL_SOCKET;
            c->cmsg_type = LibC.SCM_RIGHTS;
            // CMSG_LEN by hand: Tmds.LibC 0.5's rounds the data up, which would pass one fd too many for an odd count.
            c->cmsg_len = (socklen_t)(uint)(sizeof(cmsghdr) + count * sizeof(int));
            int* data = (int*)LibC.CMSG_DATA(c);
            for (int i = 0; i < count; i++) data[i] = fds[at + i];
            long n;
            do n = LibC.sendmsg(_fd, &msg, LibC.MSG_NOSIGNAL);
            while (n < 0 && NativeError.Last == NativeError.EINTR);
            if (n != 1) throw new HandoverException($"sending {count} file descriptors failed (errno {NativeError.Last})");
        }
    }

    /// <summary>Receives <paramref name="count"/> fds (as many messages as <see cref="SendFds"/> made).</summary>
    public int[] ReceiveFds(int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var fds = new List<int>(count);
        int controlLen = (int)(ulong)LibC.CMSG_SPACE(FdsPerMessage * sizeof(int));
        byte* control = stackalloc byte[controlLen];
        try
        {
            while (fds.Count < count)
            {
                int expect = Math.Min(FdsPerMessage, count - fds.Count);
                WaitReadable(deadline, "file descriptors");
                byte one;
                var iov = new iovec { iov_base = &one, iov_len = 1 };
                var msg = new msghdr { msg_iov = &iov, msg_iovlen = 1, msg_control = control, msg_controllen = (socklen_t)(uint)controlLen };
                long n;
                do n = LibC.recvmsg(_fd, &msg, LibC.MSG_CMSG_CLOEXEC);
                while (n < 0 && NativeError.Last == NativeError.EINTR);
                if (n <= 0) throw new HandoverException("the other daemon closed the hand-over while sending file descriptors");
                if ((msg.msg_flags & LibC.MSG_CTRUNC) != 0) throw new HandoverException("file descriptors were cut off (MSG_CTRUNC): is RLIMIT_NOFILE too low?");
                int got = 0;
                for (cmsghdr* c = LibC.CMSG_FIRSTHDR(&msg); c is not null; c = LibC.CMSG_NXTHDR(&msg, c))
                {
                    if (c->cmsg_level != LibC.SOL_SOCKET || c->cmsg_type != LibC.SCM_RIGHTS) continue;
                    int k = (int)(((ulong)(uint)c->cmsg_len - (ulong)sizeof(cmsghdr)) / sizeof(int));
                    int* data = (int*)LibC.CMSG_DATA(c);
                    for (int i = 0; i < k; i++) fds.Add(data[i]);
                    got += k;
                }
                if (got != expect) throw new HandoverException($"expected {expect} file descriptors in one message, got {got}");
            }
            return [.. fds];
        }
        catch
        {
            foreach (int fd in fds) LibC.close(fd);
            throw;
        }
    }

    private void ReadExact(Span<byte> into, DateTime deadline, string waitingFor)
    {
        int off = 0;
        while (off < into.Length)
        {
            WaitReadable(deadline, waitingFor);
            long n;
            fixed (byte* p = into) n = LibC.recv(_fd, p + off, into.Length - off, 0);
            if (n < 0 && NativeError.Last == NativeError.EINTR) continue;
            if (n <= 0) throw new HandoverException($"the other daemon closed the hand-over while this one waited for {waitingFor}");
            off += (int)n;
        }
    }

    private void WaitReadable(DateTime deadline, string waitingFor)
    {
        while (true)
        {
            int ms = (int)Math.Ceiling((deadline - DateTime.UtcNow).TotalMilliseconds);
            if (ms <= 0) throw new HandoverException($"no {waitingFor} within the time allowed");
            var pfd = new pollfd { fd = _fd, events = LibC.POLLIN };
            int r = LibC.poll(&pfd, 1, Math.Min(ms, 1000));
            if (r > 0) return;
            if (r < 0 && NativeError.Last != NativeError.EINTR) throw new HandoverException($"poll on the hand-over socket failed (errno {NativeError.Last})");
        }
    }

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) LibC.close(fd);
    }
}

/// <summary>A hand-over that did not happen: why, in words for the operator (the API answers it).</summary>
public sealed class HandoverException(string message) : Exception(message);
