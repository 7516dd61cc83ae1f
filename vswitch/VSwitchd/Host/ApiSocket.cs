using Tmds.Linux;
using VSwitch.Core.Ports.Linux;

namespace VSwitchd.Host;

/// <summary>
/// The API's listening Unix socket, made with plain system calls and given to Kestrel as a handle. Two reasons:
/// its descriptor can be handed to a successor process (a hitless restart: the socket never closes, connections
/// wait in its backlog), and no .NET socket object knows its path, so none removes the file when this process exits
/// while the successor listens on it.
/// </summary>
public static unsafe class ApiSocket
{
    private const int Backlog = 512;

    /// <summary>Binds and listens on <paramref name="path"/>; returns the descriptor (close-on-exec).</summary>
    public static int Listen(string path)
    {
        byte[] name = System.Text.Encoding.UTF8.GetBytes(path);
        if (name.Length >= 108) throw new IOException($"the socket path '{path}' is longer than 107 bytes");
        int fd = LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0);
        if (fd < 0) throw new IOException($"socket(AF_UNIX): errno {NativeError.Last}");
        byte* addr = stackalloc byte[110];
        new Span<byte>(addr, 110).Clear();
        *(ushort*)addr = (ushort)LibC.AF_UNIX;
        name.CopyTo(new Span<byte>(addr + 2, 108));
        if (LibC.bind(fd, (sockaddr*)addr, (uint)(2 + name.Length + 1)) < 0 || LibC.listen(fd, Backlog) < 0)
        {
            int e = NativeError.Last;
            LibC.close(fd);
            throw new IOException($"bind/listen: {NativeError.Name(e)}");
        }
        return fd;
    }
}
