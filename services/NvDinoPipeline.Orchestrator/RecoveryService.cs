using System.Text.Json;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.State;

namespace NvDinoPipeline.Orchestrator;

/// <summary>
/// Picks up after a process that stopped mid-pipeline when the transport kept nothing: at start-up, once the bus
/// is ready, it sends the commands of jobs still waiting, and from then on it sends again the commands of jobs
/// whose worker stopped renewing its claim or that have waited untouched for three recovery intervals, and the
/// completions the orchestrator never handled.
/// </summary>
public sealed class RecoveryService(
    IDbContextFactory<StateDbContext> contexts,
    StateDatabase database,
    IBus bus,
    IBusControl busControl,
    TimeProvider clock,
    IOptions<OrchestratorOptions> options,
    ILogger<CommandDispatcher> dispatcherLogger,
    ILogger<RecoveryService> logger) : BackgroundService
{
    private readonly CommandDispatcher _dispatcher = new(bus, dispatcherLogger);
    private readonly Dictionary<Guid, DateTime> _resentAt = [];

    private static readonly Dictionary<string, Type> CompletionTypes = typeof(IStageMessage).Assembly.GetTypes()
        .Where(t => typeof(IStageMessage).IsAssignableFrom(t) && !t.IsInterface)
        .ToDictionary(t => t.FullName!);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await database.EnsureCreatedAsync(stoppingToken);
        await busControl.WaitUntilReadyAsync(stoppingToken);
        var first = true;
        using var timer = new PeriodicTimer(options.Value.RecoveryInterval, clock);
        do
        {
            try
            {
                await RecoverAsync(includePending: first, stoppingToken);
                first = false;
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                logger.LogWarning(exception, "Recovery pass failed; trying again later");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    public async Task RecoverAsync(bool includePending, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        // A job left waiting this long with nothing touching it lost its command (for example, a worker handed it back
        // while a predecessor process stopped, after the start-up pass had seen it running); a duplicate command is
        // harmless, since only one claim of a job succeeds.
        var stale = now - 3 * options.Value.RecoveryInterval;
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var running = db.Pipelines.Where(p => p.Status == JobStatus.Running).Select(p => p.Id);
        var lost = await db.Jobs
            .Where(j => running.Contains(j.PipelineId)
                && ((j.Status == JobStatus.Pending && (includePending || j.UpdatedAt < stale))
                    || (j.Status == JobStatus.Running && j.LeaseExpiresAt < now)))
            .ToListAsync(cancellationToken);
        // A job still waiting is sent again at most once per such period, not on every pass.
        lost.RemoveAll(j => j.Status == JobStatus.Pending && !includePending && _resentAt.TryGetValue(j.Id, out var resent) && resent >= stale);
        foreach (var id in _resentAt.Where(p => p.Value < stale).Select(p => p.Key).ToList())
            _resentAt.Remove(id);
        foreach (var job in lost)
            _resentAt[job.Id] = now;
        if (lost.Count > 0)
        {
            logger.LogInformation("Sending again the commands of {Count} waiting or abandoned jobs", lost.Count);
            await _dispatcher.SendAsync(lost, cancellationToken);
        }
        var unhandled = await db.Jobs
            .Where(j => running.Contains(j.PipelineId) && j.Status == JobStatus.Done && j.HandledAt == null && j.Completion != null)
            .ToListAsync(cancellationToken);
        foreach (var job in unhandled)
        {
            if (CompletionTypes.TryGetValue(job.CompletionType ?? "", out var type)
                && JsonSerializer.Deserialize(job.Completion!, type) is { } completion)
            {
                logger.LogInformation("Publishing again the unhandled completion of {Stage} job {JobId}", job.Stage, job.Id);
                await bus.Publish(completion, type, cancellationToken);
            }
        }
    }
}
