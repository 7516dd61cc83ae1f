using System.Threading.Channels;
using VSwitchd.Runtime;

namespace VSwitchd.Api.Access;

/// <summary>
/// The audit log's writer. A request hands its record over (<see cref="Record"/>: a non-blocking queue write) and gets
/// its answer at once; a background task commits the queue to the state database in batches and keeps the newest
/// <see cref="Keep"/> records. Neither the datapath nor the answer waits for the disk: a record that cannot be written
/// (the queue full, the database failing) is logged and counted, never turned into an error of the request.
/// </summary>
public sealed class AuditLog(StateStore store, AuditOptions options, ILogger<AuditLog> log) : BackgroundService
{
    public const int DefaultKeep = 10_000;
    private const int QueueCapacity = 4096, BatchSize = 256;

    private readonly Channel<AuditRecord> _queue = Channel.CreateBounded<AuditRecord>(new BoundedChannelOptions(QueueCapacity)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.DropWrite,
    });
    private long _queued, _written, _dropped, _failed;
    private TaskCompletionSource _progress = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Keep => options.Keep;

    /// <summary>Records that never reached the database: the queue was full, or the write failed.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Batches whose write failed (their records are in <see cref="Dropped"/> too).</summary>
    public long WriteFailures => Interlocked.Read(ref _failed);

    /// <summary>The audit log's two bounds, as rows of vsctl stats' LIMITS: the records kept, and the queue to the database.</summary>
    public VSwitch.Api.LimitView[] Limits() =>
    [
        new("audit-log", store.AuditCount, options.Keep, store.AuditPruned, "the oldest records are pruned (counted)", "--audit-keep"),
        new("audit-queue", _queue.Reader.Count, QueueCapacity, Dropped, "the record is lost (counted and logged)", ""),
    ];

    /// <summary>Queues a record for the database; never blocks and never throws.</summary>
    public void Record(AuditRecord record)
    {
        if (_queue.Writer.TryWrite(record))
        {
            Interlocked.Increment(ref _queued);
            return;
        }
        if (Interlocked.Increment(ref _dropped) is var n && (n & (n - 1)) == 0) // 1, 2, 4, 8...: a full queue does not flood the log
            log.LogWarning("audit: {Why}, {Method} {Path} by {Who} not recorded ({Dropped} record(s) lost so far)",
                _stopping ? "vswitchd is stopping" : $"more than {QueueCapacity} records wait for the database", record.Method, record.Path, record.User ?? record.Subject, n);
    }

    /// <summary>
    /// Waits (up to <paramref name="timeout"/>) until what was queued before the call is in the database, so that a
    /// reader of the log sees its own earlier changes.
    /// </summary>
    public async Task FlushAsync(TimeSpan timeout, CancellationToken ct)
    {
        long target = Interlocked.Read(ref _queued);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        while (Interlocked.Read(ref _written) < target)
        {
            var progress = Volatile.Read(ref _progress).Task;
            if (Interlocked.Read(ref _written) >= target) break;
            try { await progress.WaitAsync(deadline.Token); }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested) { return; }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<AuditRecord>(BatchSize);
        try
        {
            while (await _queue.Reader.WaitToReadAsync(stoppingToken))
                WriteBatch(batch);
        }
        catch (OperationCanceledException) { }
        WriteBatch(batch); // what came in before the stop
    }

    private volatile bool _stopping;

    public override Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping = true;
        _queue.Writer.TryComplete();
        return base.StopAsync(cancellationToken);
    }

    private void WriteBatch(List<AuditRecord> batch)
    {
        while (true)
        {
            batch.Clear();
            while (batch.Count < BatchSize && _queue.Reader.TryRead(out var r)) batch.Add(r);
            if (batch.Count == 0) return;
            try
            {
                long pruned = store.AppendAudit(batch, options.Keep);
                if (pruned > 0) log.LogDebug("audit: pruned {Pruned} old record(s), keeping {Keep}", pruned, options.Keep);
            }
            // Any failure: a fault here must not end the background task (the host would stop with it) nor reach a request.
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Interlocked.Increment(ref _failed);
                Interlocked.Add(ref _dropped, batch.Count);
                log.LogError("audit: cannot write {Count} record(s) to {Path}: {Error}", batch.Count, store.Path, e.Message);
            }
            Interlocked.Add(ref _written, batch.Count);
            Interlocked.Exchange(ref _progress, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }
    }
}

/// <summary>How many audit records to keep (vswitchd --audit-keep).</summary>
public sealed record AuditOptions(int Keep = AuditLog.DefaultKeep);
