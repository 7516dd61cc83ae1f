using System.Runtime.InteropServices;

namespace VSwitch.Core.Ports.Linux;

/// <summary>A port or link operation failed. The message names the device, the call and the errno.</summary>
public sealed class PortException : IOException
{
    public PortException(string message, int errno = 0, Exception? inner = null) : base(message, inner) => Errno = errno;

    /// <summary>The errno of the failing call, 0 when the failure was not a syscall.</summary>
    public int Errno { get; }
}

/// <summary>Turns errno into exceptions that say which device and which call failed.</summary>
public static class NativeError
{
    public const int EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, EBADF = 9, EAGAIN = 11, ENOMEM = 12, EACCES = 13,
        EBUSY = 16, EEXIST = 17, ENODEV = 19, EINVAL = 22, EMSGSIZE = 90, EOPNOTSUPP = 95, ENOBUFS = 105, ENETDOWN = 100, ENXIO = 6,
        /// <summary>A TAP whose device is gone (its namespace deleted, the link removed): tun answers every read with it.</summary>
        EBADFD = 77;

    /// <summary>errno of the last P/Invoke (Tmds.LibC and our DllImports both set it).</summary>
    public static int Last => Marshal.GetLastPInvokeError();

    public static string Name(int errno) => errno switch
    {
        EPERM => "EPERM", ENOENT => "ENOENT", EINTR => "EINTR", EIO => "EIO", ENXIO => "ENXIO", EBADF => "EBADF",
        EAGAIN => "EAGAIN", ENOMEM => "ENOMEM", EACCES => "EACCES", EBUSY => "EBUSY", EEXIST => "EEXIST",
        ENODEV => "ENODEV", EINVAL => "EINVAL", EMSGSIZE => "EMSGSIZE", EOPNOTSUPP => "EOPNOTSUPP", ENETDOWN => "ENETDOWN", ENOBUFS => "ENOBUFS",
        _ => "errno " + errno,
    };

    public static PortException Error(string device, string call, int errno) =>
        new($"{device}: {call} failed: {Name(errno)} ({Marshal.GetPInvokeErrorMessage(errno)})", errno);

    /// <summary>Throws for the last errno.</summary>
    public static PortException Throw(string device, string call) => throw Error(device, call, Last);

    /// <summary>Throws when <paramref name="result"/> is negative; returns it otherwise.</summary>
    public static int Check(int result, string device, string call) => result < 0 ? throw Error(device, call, Last) : result;
}
