using System.Text.Json;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.State;

namespace NvDinoPipeline.Orchestrator;

/// <summary>
/// Picks up after a process that stopped mid-pipeline when the transport kept nothing: at start-up it
/// sends the commands of jobs still waiting, and from then on it sends again the commands of jobs whose
/// worker stopped renewing its claim and the completions the orchestrator never handled.
/// </summary>
public sealed class RecoveryService(
    IDbContextFactory<StateDbContext> contexts,
    StateDatabase database,
    IBus bus,
    TimeProvider clock,
    IOptions<OrchestratorOptions> options,
    ILogger<CommandDispatcher> dispatcherLogger,
    ILogger<RecoveryService> logger) : BackgroundService
{
    private readonly CommandDispatcher _dispatcher = new(bus, dispatcherLogger);

    private static readonly Dictionary<string, Type> CompletionTypes = typeof(IStageMessage).Assembly.GetTypes()
        .Where(t => typeof(IStageMessage).IsAssignableFrom(t) && !t.IsInterface)
        .ToDictionary(t => t.FullName!);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await database.EnsureCreatedAsync(stoppingToken);
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
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var running = db.Pipelines.Where(p => p.Status == JobStatus.Running).Select(p => p.Id);
        var lost = await db.Jobs
            .Where(j => running.Contains(j.PipelineId)
                && ((includePending && j.Status == JobStatus.Pending)
                    || (j.Status == JobStatus.Running && j.LeaseExpiresAt < now)))
            .ToListAsync(cancellationToken);
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
