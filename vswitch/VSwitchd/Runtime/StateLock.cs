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

    /// <summary>Takes the lock, writing this process's id into the file; null when another process holds it.</summary>
    public static StateLock? TryAcquire(string statePath, out string? holder)
    {
        string path = statePath + ".lock";
        string? dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        holder = null;
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
            // flock is advisory: the holder's pid can still be read.
            try
            {
                using var r = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                using var reader = new StreamReader(r);
                holder = reader.ReadLine()?.Trim();
            }
            catch (IOException) { }
            return null;
        }
    }

    public void Dispose() => _file.Dispose();
}
