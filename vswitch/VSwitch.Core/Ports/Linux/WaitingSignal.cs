using Tmds.Linux;

namespace VSwitch.Core.Ports.Linux;

/// <summary>
/// A port's poll descriptor when frames can wait inside the port (a super-frame half segmented,
/// frames a batched read brought in beyond the batch): an epoll set of the device's fd and an
/// eventfd that is raised exactly while something waits. Such frames do not make the device's fd
/// readable, and the datapath sleeps in epoll on <see cref="PollFd"/>; without the eventfd they
/// would sit until the next frame arrived. <see cref="Set"/> costs a syscall only on a change.
/// </summary>
public sealed unsafe class WaitingSignal : IDisposable
{
    private int _epoll = -1, _event = -1;
    private bool _raised;

    /// <param name="device">Name for errors.</param>
    /// <param name="fd">The device's own descriptor (TAP, socket).</param>
    public WaitingSignal(string device, int fd)
    {
        try
        {
            _event = LibC.eventfd(0, LibC.EFD_NONBLOCK | LibC.EFD_CLOEXEC);
            if (_event < 0) NativeError.Throw(device, "eventfd");
            _epoll = LibC.epoll_create1(LibC.EPOLL_CLOEXEC);
            if (_epoll < 0) NativeError.Throw(device, "epoll_create1");
            var ev = new epoll_event { events = LibC.EPOLLIN };
            if (LibC.epoll_ctl(_epoll, LibC.EPOLL_CTL_ADD, fd, &ev) < 0) NativeError.Throw(device, "epoll_ctl(ADD, device)");
            if (LibC.epoll_ctl(_epoll, LibC.EPOLL_CTL_ADD, _event, &ev) < 0) NativeError.Throw(device, "epoll_ctl(ADD, eventfd)");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Readable when the device is, or while something waits in the port.</summary>
    public int PollFd => _epoll;

    /// <summary>Says whether frames wait in the port now.</summary>
    public void Set(bool waiting)
    {
        if (waiting == _raised) return;
        ulong v = 1;
        if (waiting) LibC.write(_event, &v, sizeof(ulong));
        else LibC.read(_event, &v, sizeof(ulong));
        _raised = waiting;
    }

    public void Dispose()
    {
        if (_epoll >= 0) { LibC.close(_epoll); _epoll = -1; }
        if (_event >= 0) { LibC.close(_event); _event = -1; }
    }
}
