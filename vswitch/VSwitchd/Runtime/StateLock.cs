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

    public void Dispose() => _file.Dispose();
}
