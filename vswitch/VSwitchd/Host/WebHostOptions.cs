namespace VSwitchd.Host;

/// <summary>
/// How vswitchd's web servers (the management API, the Docker plugin) are built. Its configuration is its own
/// (the config file, the state store, the command line), never ASP.NET's: WebApplication's defaults would read an
/// appsettings.json from the working directory (where a stray file could configure Kestrel, even open a TCP
/// listener) and watch that directory with inotify for changes, waking a thread of the daemon for every file
/// written there (seen: a benchmark writing its results next to where vswitchd was started).
/// </summary>
public static class WebHostOptions
{
    public static WebApplicationOptions Isolated() => new()
    {
        Args = ["--hostBuilder:reloadConfigOnChange=false"],
        // The daemon's own folder, where no appsettings.json ships: none of the caller's can be picked up.
        ContentRootPath = AppContext.BaseDirectory,
    };
}
