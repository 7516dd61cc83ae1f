using Microsoft.Extensions.Logging;
using VSwitchd.Logging;

namespace VSwitch.Core.Tests;

/// <summary>The daemon's log budget: N lines a second, the rest counted and summed up in the next line that passes.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class LogRateLimiterTests
{
    private sealed class Sink : ILoggerProvider, ILogger
    {
        public readonly List<string> Lines = [];
        public ILogger CreateLogger(string categoryName) => this;
        public void Dispose() { }
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Add(formatter(state, exception));
    }

    [Fact]
    public void Over_the_budget_lines_are_counted_and_the_next_line_says_how_many()
    {
        var sink = new Sink();
        long now = 1000;
        using var factory = LoggerFactory.Create(b => b.AddProvider(sink).SetMinimumLevel(LogLevel.Trace));
        var budget = new LogRateLimiter(factory, linesPerSecond: 3, nowMs: () => now);
        var log = budget.CreateLogger("test");

        for (int i = 0; i < 10; i++) log.LogInformation("line {I}", i);
        Assert.Equal(["line 0", "line 1", "line 2"], sink.Lines);
        Assert.Equal(7, budget.Suppressed);

        now += 1000; // a second refills the bucket
        log.LogInformation("after");
        Assert.Equal(["line 0", "line 1", "line 2", "7 log line(s) left out: over limits.logLinesPerSecond (3 a second)", "after"], sink.Lines);
        Assert.Equal(7, budget.Suppressed);
    }
}
