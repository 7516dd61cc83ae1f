namespace VSwitchd.Runtime;

/// <summary>
/// One daemon per state database, as ovsdb-server locks its database: the running vswitchd holds an
/// exclusive lock on <c>STATE.lock</c> (flock, through .NET's FileShare.None), released by the kernel
/// when the process ends, even by SIGKILL. A second vswitchd on the same state would attach the same
/// devices and write what the first never sees (split brain), so it refuses to start.
/// </summary>
public sealed class StateLock : IDisposable
{
    private readonly FileStream _file;

    private StateLock(FileStream file) => _file = file;

    public string Path => _file.Name;

    /// <summary>
    /// Takes the lock, writing this process's id into the file (for people: `cat STATE.lock`); null
    /// when another process holds it. The holder's id cannot be read back here: .NET takes a shared
    /// flock to open a file for reading, which the holder's exclusive lock refuses.
    /// </summary>
    public static StateLock? TryAcquire(string statePath)
    {
        string path = statePath + ".lock";
        string? dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        try
        {
            var f = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            f.SetLength(0);
            var pid = System.Text.Encoding.ASCII.GetBytes(Environment.ProcessId + "\n");
            f.Write(pid);
            f.Flush(flushToDisk: false);
            return new StateLock(f);
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>The lock's descriptor, which a hitless restart hands to the successor (flock belongs to the open file, so it holds the lock too).</summary>
    public int Fd => (int)_file.SafeFileHandle.DangerousGetHandle();

    /// <summary>The lock as a predecessor handed it over (its descriptor, received with SCM_RIGHTS): already held.</summary>
    public static StateLock Adopt(int fd, string statePath) =>
        new(new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true), FileAccess.ReadWrite));

    private bool _handedOver;

    /// <summary>
    /// A successor holds the lock now. Disposing must then leave it alone: .NET unlocks (flock LOCK_UN) a file it
    /// locked before closing it, and that would unlock the successor's copy too. The process's exit closes the fd.
    /// </summary>
    public void HandedOver() => _handedOver = true;

    public void Dispose()
    {
        if (!_handedOver) _file.Dispose();
    }
}
