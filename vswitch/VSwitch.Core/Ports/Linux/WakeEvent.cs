using Tmds.Linux;

namespace VSwitch.Core.Ports.Linux;

/// <summary>An eventfd another thread raises to wake a datapath thread out of epoll_wait (the control plane waiting for quiescence, stop).</summary>
public sealed unsafe class WakeEvent : IDisposable
{
    private int _fd;

    public WakeEvent()
    {
        _fd = LibC.eventfd(0, LibC.EFD_NONBLOCK | LibC.EFD_CLOEXEC);
        if (_fd < 0) NativeError.Throw("datapath wake-up", "eventfd");
    }

    public int Fd => _fd;

    /// <summary>Makes <see cref="Fd"/> readable (from any thread).</summary>
    public void Raise()
    {
        ulong one = 1;
        int fd = _fd;
        if (fd >= 0) LibC.write(fd, &one, sizeof(ulong));
    }

    /// <summary>Reads the count back to zero, so that the fd stops waking its reader.</summary>
    public void Clear()
    {
        ulong v;
        LibC.read(_fd, &v, sizeof(ulong));
    }

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) LibC.close(fd);
    }
}
