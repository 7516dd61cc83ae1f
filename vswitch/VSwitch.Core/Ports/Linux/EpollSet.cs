using Tmds.Linux;

namespace VSwitch.Core.Ports.Linux;

/// <summary>
/// An epoll instance the datapath thread sleeps on. Each registered fd carries a caller-chosen
/// 64-bit token (a port index). <see cref="Wait"/> fills a preallocated array: nothing is
/// allocated per wait.
/// </summary>
public sealed unsafe class EpollSet : IDisposable
{
    private int _fd;
    private readonly epoll_event* _events;
    private readonly int _capacity;

    public EpollSet(int capacity = 64)
    {
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity));
        _fd = LibC.epoll_create1(LibC.EPOLL_CLOEXEC);
        if (_fd < 0) NativeError.Throw("epoll", "epoll_create1");
        _capacity = capacity;
        _events = (epoll_event*)System.Runtime.InteropServices.NativeMemory.AllocZeroed((nuint)(capacity * sizeof(epoll_event)));
    }

    public int Fd => _fd;

    /// <summary>Watches <paramref name="fd"/> for input (level-triggered).</summary>
    public void Add(int fd, ulong token, bool writable = false)
    {
        var ev = new epoll_event { events = LibC.EPOLLIN | (writable ? LibC.EPOLLOUT : 0) };
        ev.data.u64 = token;
        if (LibC.epoll_ctl(_fd, LibC.EPOLL_CTL_ADD, fd, &ev) < 0) NativeError.Throw($"epoll fd {fd}", "epoll_ctl(ADD)");
    }

    public void Modify(int fd, ulong token, bool writable)
    {
        var ev = new epoll_event { events = LibC.EPOLLIN | (writable ? LibC.EPOLLOUT : 0) };
        ev.data.u64 = token;
        if (LibC.epoll_ctl(_fd, LibC.EPOLL_CTL_MOD, fd, &ev) < 0) NativeError.Throw($"epoll fd {fd}", "epoll_ctl(MOD)");
    }

    public void Remove(int fd)
    {
        var ev = default(epoll_event);
        if (LibC.epoll_ctl(_fd, LibC.EPOLL_CTL_DEL, fd, &ev) < 0) NativeError.Throw($"epoll fd {fd}", "epoll_ctl(DEL)");
    }

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> (-1: forever, 0: poll) and returns how many fds are
    /// ready; read them with <see cref="Token"/> and <see cref="Events"/>. EINTR returns 0.
    /// </summary>
    public int Wait(int timeoutMs)
    {
        int n = LibC.epoll_wait(_fd, _events, _capacity, timeoutMs);
        if (n < 0)
        {
            int e = NativeError.Last;
            if (e == NativeError.EINTR) return 0;
            throw NativeError.Error("epoll", "epoll_wait", e);
        }
        return n;
    }

    public ulong Token(int index) => (uint)index < (uint)_capacity ? _events[index].data.u64 : throw new ArgumentOutOfRangeException(nameof(index));
    public int Events(int index) => (uint)index < (uint)_capacity ? _events[index].events : throw new ArgumentOutOfRangeException(nameof(index));

    public void Dispose()
    {
        if (_fd >= 0)
        {
            LibC.close(_fd);
            _fd = -1;
            System.Runtime.InteropServices.NativeMemory.Free(_events);
        }
    }
}
