using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.State;

namespace NvDinoPipeline.Hosting.Messaging;

/// <summary>Makes the outbox rows a state change saves, and delivers them once the change is committed.</summary>
public interface IOutbox
{
    /// <summary>A message for <paramref name="queue"/>, in <paramref name="contentType"/> (null: the bus default), held for this process's relay.</summary>
    OutboxMessage Send(string queue, object message, Guid? pipelineId, string? contentType = null);

    /// <summary>A command already stored as JSON (a job's command), for <paramref name="queue"/>.</summary>
    OutboxMessage Send(string queue, string messageType, string body, Guid? pipelineId);

    /// <summary>An event for its subscribers, held for this process's relay.</summary>
    OutboxMessage Publish(object message, Guid? pipelineId);

    /// <summary>
    /// Delivers rows that were just committed. Never throws: what cannot be delivered now (the broker is away, the bus
    /// is stopping) is given back to the relays, this one's or another process's, which deliver it later.
    /// </summary>
    Task DeliverAsync(IReadOnlyList<OutboxMessage> committed, CancellationToken cancellationToken);
}

/// <summary>
/// Delivers the outbox: at once what this process commits, and in the background what waits in the database (rows
/// another process saved, such as a command-line client's request to the embedded host, and rows a relay failed to
/// deliver or died holding). Each row is sent with its own message id, with the broker's confirmation, then marked
/// delivered; a row delivered twice (its relay died between the two) carries the same id, which consumers recognise.
/// Rows of one pipeline go out in the order they were saved.
/// </summary>
public sealed class OutboxRelay(
    OutboxStore store,
    IBus bus,
    IBusControl busControl,
    WorkerIdentity identity,
    TimeProvider clock,
    IOptions<OutboxOptions> options,
    ILogger<OutboxRelay> logger) : BackgroundService, IOutbox
{
    private readonly string _relayId = identity.Id;
    private DateTime _nextPurge;
    private int _failures;

    public OutboxMessage Send(string queue, object message, Guid? pipelineId, string? contentType = null) =>
        Held(OutboxMessage.Send(queue, message, pipelineId, Now, contentType));

    public OutboxMessage Send(string queue, string messageType, string body, Guid? pipelineId) =>
        Held(OutboxMessage.Send(queue, messageType, body, pipelineId, Now));

    public OutboxMessage Publish(object message, Guid? pipelineId) => Held(OutboxMessage.Publish(message, pipelineId, Now));

    public async Task DeliverAsync(IReadOnlyList<OutboxMessage> committed, CancellationToken cancellationToken)
    {
        if (committed.Count == 0)
        {
            return;
        }
        try
        {
            if (busControl.CheckHealth().Status != BusHealthStatus.Healthy)
            {
                await store.ReleaseAsync(committed.Select(m => m.Id).ToList(), _relayId, "the bus was not ready", TimeSpan.Zero, CancellationToken.None);
                return;
            }
            await DeliverBatchAsync(committed, cancellationToken);
        }
        catch (Exception exception)
        {
            // The rows stay locked by this relay until their lock runs out; any relay delivers them then.
            logger.LogWarning(exception, "Delivering {Count} outbox messages failed; they are delivered later", committed.Count);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await busControl.WaitUntilReadyAsync(stoppingToken);
        var settings = options.Value;
        while (!stoppingToken.IsCancellationRequested)
        {
            var delay = settings.PollInterval;
            try
            {
                if (busControl.CheckHealth().Status == BusHealthStatus.Healthy)
                {
                    var rows = await store.ClaimAsync(_relayId, settings.LockDuration, settings.BatchSize, stoppingToken);
                    if (rows.Count > 0)
                    {
                        await DeliverBatchAsync(rows, stoppingToken);
                        if (rows.Count == settings.BatchSize)
                        {
                            delay = TimeSpan.Zero;
                        }
                    }
                }
                await PurgeAsync(settings, stoppingToken);
                _failures = 0;
            }
            catch (Exception exception) when (exception is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                _failures++;
                delay = TimeSpan.FromMilliseconds(Math.Min(10_000, settings.PollInterval.TotalMilliseconds * Math.Pow(2, Math.Min(_failures, 10))));
                if (_failures is 1 or 10 or 100)
                {
                    logger.LogWarning(exception, "The outbox relay could not read the outbox ({Failures} times in a row); trying again in {Delay}",
                        _failures, delay);
                }
            }
            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, clock, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try
        {
            await store.ReleaseAllAsync(_relayId, cancellationToken);
        }
        catch (Exception exception)
        {
            logger.LogDebug(exception, "Could not give back the outbox rows this relay held; they are taken once their lock runs out");
        }
    }

    private async Task DeliverBatchAsync(IReadOnlyList<OutboxMessage> rows, CancellationToken cancellationToken)
    {
        var delivered = new List<long>();
        var failed = new List<(OutboxMessage Row, Exception Error)>();
        // Pipelines at once, each pipeline's rows in order: an awaited confirm takes a round trip to the broker.
        await Task.WhenAll(rows.GroupBy(r => r.PipelineId).Select(async group =>
        {
            foreach (var row in group.OrderBy(r => r.Id))
            {
                try
                {
                    await SendAsync(row, cancellationToken);
                    lock (delivered)
                    {
                        delivered.Add(row.Id);
                    }
                }
                catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    lock (delivered)
                    {
                        failed.Add((row, exception));
                    }
                    break;
                }
            }
        }));
        if (delivered.Count > 0)
        {
            await store.MarkSentAsync(delivered, CancellationToken.None);
        }
        if (failed.Count > 0)
        {
            var (row, error) = failed[0];
            logger.LogWarning(error, "Could not deliver {Count} outbox messages (first: {MessageType} {MessageId}); trying again shortly",
                failed.Count, row.MessageType, row.MessageId);
            var undeliverable = failed.Where(f => f.Error is InvalidOperationException or JsonException).Select(f => f.Row.Id).ToList();
            var retry = rows.Where(r => !delivered.Contains(r.Id) && !undeliverable.Contains(r.Id)).Select(r => r.Id).ToList();
            await store.ReleaseAsync(retry, _relayId, Describe(error), TimeSpan.FromSeconds(1), CancellationToken.None);
            if (undeliverable.Count > 0)
            {
                // A row no build of this version can read: kept for an operator, not retried in a loop.
                await store.ReleaseAsync(undeliverable, _relayId, Describe(failed.First(f => undeliverable.Contains(f.Row.Id)).Error),
                    TimeSpan.FromHours(1), CancellationToken.None);
            }
        }
    }

    private async Task SendAsync(OutboxMessage row, CancellationToken cancellationToken)
    {
        var type = MessageTypes.Resolve(row.MessageType);
        var message = JsonSerializer.Deserialize(row.Body, type)
            ?? throw new InvalidOperationException($"Outbox message {row.MessageId} ({row.MessageType}) has an empty body.");
        var id = row.MessageId;
        var timeout = options.Value.SendTimeout;
        using var confirmed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        confirmed.CancelAfter(timeout);
        try
        {
            if (row.Destination is { } queue)
            {
                var endpoint = await bus.GetSendEndpoint(Queues.Address(queue));
                await endpoint.Send(message, type, Pipe.Execute<SendContext>(context =>
                {
                    context.MessageId = id;
                    context.UseContentType(row.ContentType);
                }), confirmed.Token);
            }
            else
            {
                await bus.Publish(message, type, Pipe.Execute<PublishContext>(context => context.MessageId = id), confirmed.Token);
            }
        }
        catch (OperationCanceledException exception) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"The broker did not confirm {row.MessageType} {row.MessageId} within {timeout}.", exception);
        }
    }

    private async Task PurgeAsync(OutboxOptions settings, CancellationToken cancellationToken)
    {
        var now = Now;
        if (now < _nextPurge)
        {
            return;
        }
        _nextPurge = now + TimeSpan.FromMinutes(10);
        var purged = await store.PurgeAsync(now - settings.Retention, cancellationToken);
        if (purged > 0)
        {
            logger.LogInformation("Purged {Count} delivered outbox and inbox records older than {Retention}", purged, settings.Retention);
        }
    }

    /// <summary>Marks a new row as this relay's, so that no other relay sends it while this one does.</summary>
    private OutboxMessage Held(OutboxMessage row)
    {
        row.LockedBy = _relayId;
        row.LockedUntil = Now + options.Value.LockDuration;
        return row;
    }

    private static string Describe(Exception exception) => $"{exception.GetType().Name}: {exception.Message}";

    private DateTime Now => clock.GetUtcNow().UtcDateTime;
}
