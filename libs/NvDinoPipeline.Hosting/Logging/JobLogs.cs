using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NvDinoPipeline.State;
using Serilog.Core;
using Serilog.Events;
using Serilog.Parsing;

namespace NvDinoPipeline.Hosting.Logging;

/// <summary>
/// Takes the log lines written inside a job (those carrying a <c>JobId</c>, see <c>StageConsumer</c>) for
/// <see cref="JobLogWriter"/> to keep in the state database, where the API reads them while the job runs and after.
/// Never blocks the logging thread: past <see cref="Capacity"/> waiting lines, further lines are not kept.
/// </summary>
public sealed class JobLogSink : ILogEventSink
{
    public const int Capacity = 10_000;

    private readonly Channel<JobLogRecord> _lines = Channel.CreateBounded<JobLogRecord>(
        new BoundedChannelOptions(Capacity) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });

    internal ChannelReader<JobLogRecord> Lines => _lines.Reader;

    public void Emit(LogEvent logEvent)
    {
        if (!logEvent.Properties.TryGetValue("JobId", out var value) || value is not ScalarValue { Value: var raw }
            || !Guid.TryParse(raw?.ToString(), out var jobId))
        {
            return;
        }
        using var text = new StringWriter();
        foreach (var token in logEvent.MessageTemplate.Tokens)
        {
            // As the console shows it: strings without quotes.
            if (token is PropertyToken property && logEvent.Properties.TryGetValue(property.PropertyName, out var propertyValue)
                && propertyValue is ScalarValue { Value: string literal })
            {
                text.Write(literal);
            }
            else
            {
                token.Render(logEvent.Properties, text);
            }
        }
        var message = text.ToString();
        if (logEvent.Exception is { } exception)
        {
            message += Environment.NewLine + exception.GetType().FullName + ": " + exception.Message;
        }
        var line = new JobLogRecord
        {
            JobId = jobId,
            Time = logEvent.Timestamp.UtcDateTime,
            Level = logEvent.Level.ToString(),
            Message = message.Length > 8_000 ? message[..8_000] + " …" : message,
        };
        _lines.Writer.TryWrite(line);
    }
}

/// <summary>
/// Writes what <see cref="JobLogSink"/> took to the state database, a batch about every half second, and what is left
/// when the process stops. A job keeps at most <see cref="JobLogStore.MaxLinesPerJob"/> lines, then one line saying how
/// further lines are not kept. A failed write is logged (without a job id, so it is not itself kept) and its lines are dropped.
/// </summary>
public sealed class JobLogWriter(JobLogSink sink, JobLogStore store, ILogger<JobLogWriter> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(500);

    /// <summary>How long after a job ends its last lines may still be on their way (a reader that waits this long has them all).</summary>
    public static readonly TimeSpan Settled = TimeSpan.FromSeconds(3);

    private readonly Dictionary<Guid, int> _kept = [];
    private readonly HashSet<Guid> _noted = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await Task.Delay(Interval, stoppingToken);
                await WriteAsync(CancellationToken.None);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        await WriteAsync(cancellationToken);
    }

    private async Task WriteAsync(CancellationToken cancellationToken)
    {
        var batch = new List<JobLogRecord>();
        while (batch.Count < 2_000 && sink.Lines.TryRead(out var line))
        {
            if (!_kept.ContainsKey(line.JobId))
            {
                // A job that ran here before, or on another host, may have lines already.
                try
                {
                    var counts = await store.CountAsync([line.JobId], cancellationToken);
                    _kept[line.JobId] = counts.GetValueOrDefault(line.JobId);
                }
                catch (Exception exception) when (exception is not OperationCanceledException)
                {
                    _kept[line.JobId] = 0;
                    logger.LogDebug(exception, "Counting a job's kept log lines failed");
                }
            }
            var kept = _kept[line.JobId];
            if (kept < JobLogStore.MaxLinesPerJob)
            {
                batch.Add(line);
                _kept[line.JobId] = kept + 1;
            }
            else if (_noted.Add(line.JobId))
            {
                batch.Add(new JobLogRecord
                {
                    JobId = line.JobId, Time = line.Time, Level = nameof(LogEventLevel.Warning),
                    Message = $"this job's further log lines are not kept here (at most {JobLogStore.MaxLinesPerJob} are); the process's own log has them",
                });
            }
        }
        if (batch.Count == 0)
        {
            return;
        }
        try
        {
            await store.AddAsync(batch, cancellationToken);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            logger.LogWarning(exception, "Keeping {Count} job log lines in the state database failed; they are only in this process's log", batch.Count);
        }
    }
}
