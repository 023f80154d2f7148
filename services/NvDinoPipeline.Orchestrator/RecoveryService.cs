using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.State;

namespace NvDinoPipeline.Orchestrator;

/// <summary>
/// Rearms the jobs of dead workers, on every transport: a Running job whose lease ran out (its worker was killed, or
/// lost the database for longer than the lease) goes back to Pending with its command sent again, in one transaction,
/// so the next free worker continues it. The outbox guarantees every other message; only on the in-memory transport,
/// whose queues die with the process, this process first gives back what a previous one held: the messages it had
/// delivered to the orchestrator without the orchestrator recording them, and the commands of the jobs still waiting.
/// </summary>
public sealed class RecoveryService(
    JobStore jobs,
    OutboxStore outboxStore,
    IOutbox outbox,
    StateDatabase database,
    IBusControl busControl,
    TimeProvider clock,
    IOptions<OrchestratorOptions> options,
    IOptions<MessagingOptions> messaging,
    IOptions<OutboxOptions> outboxOptions,
    PipelineChanges changes,
    PipelineStateMachine machine,
    ILogger<RecoveryService> logger) : BackgroundService
{
    private readonly DateTime _startedAt = clock.GetUtcNow().UtcDateTime;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await database.EnsureCreatedAsync(stoppingToken);
        await busControl.WaitUntilReadyAsync(stoppingToken);
        var restartRecovered = messaging.Value.Transport != TransportKind.InMemory;
        using var timer = new PeriodicTimer(options.Value.RecoveryInterval, clock);
        do
        {
            try
            {
                if (!restartRecovered)
                {
                    await RecoverInMemoryRestartAsync(stoppingToken);
                    restartRecovered = true;
                }
                await RearmAsync(stoppingToken);
                await ApplyUnhandledEndsAsync(stoppingToken);
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                logger.LogWarning(exception, "Recovery pass failed; trying again at the next one");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>Rearms every job whose lease ran out; returns how many.</summary>
    public async Task<int> RearmAsync(CancellationToken cancellationToken)
    {
        var rearmed = await jobs.RearmExpiredAsync(
            job => outbox.Send(StageCatalog.For(job.Stage).Queue, job.CommandType, job.Command, job.PipelineId), 100, cancellationToken);
        foreach (var (job, _) in rearmed)
        {
            logger.LogWarning("{Stage} job {JobId} of pipeline {PipelineId} lost its worker {WorkerId} (lease ran out at {LeaseExpiresAt:O}); sent again",
                job.Stage, job.Id, job.PipelineId, job.WorkerId, job.LeaseExpiresAt);
        }
        await outbox.DeliverAsync(rearmed.Select(r => r.Message).ToList(), cancellationToken);
        return rearmed.Count;
    }

    /// <summary>
    /// Applies, from the state database, the ends of jobs the orchestrator never heard of (see
    /// <see cref="OrchestratorOptions.UnhandledEndAfter"/>), as their completion or failure would have; returns how many.
    /// The message itself, should it come after all, then changes nothing.
    /// </summary>
    public async Task<int> ApplyUnhandledEndsAsync(CancellationToken cancellationToken)
    {
        var before = clock.GetUtcNow().UtcDateTime - options.Value.UnhandledEndAfter;
        var ended = await jobs.UnhandledEndsAsync(before, AutomlSearches.SearchCommandType, 100, cancellationToken);
        foreach (var job in ended)
        {
            logger.LogWarning("{Stage} job {JobId} of pipeline {PipelineId} ended {Status} at {UpdatedAt:O} but the orchestrator never heard of it; applied from the state database",
                job.Stage, job.Id, job.PipelineId, job.Status, job.UpdatedAt);
            var type = StageCatalog.For(job.Stage).Completion;
            var completed = job.Status == JobStatus.Done ? Read(job, type) : null;
            if (completed is not null)
            {
                await changes.ApplyAsync(job.PipelineId, null, type.Name, state => machine.OnStageCompleted(state, completed), cancellationToken);
                continue;
            }
            var failed = new StageFailed
            {
                PipelineId = job.PipelineId, JobId = job.Id, Stage = job.Stage, FailedAt = job.CompletedAt ?? job.UpdatedAt,
                Reason = job.Status == JobStatus.Done
                    ? $"{job.Stage} job {job.Id} is Done but its stored completion ({job.CompletionType ?? "none"}) does not read as the {type.Name} its stage completes with"
                    : job.ErrorReason ?? $"{job.Stage} job {job.Id} failed",
            };
            await changes.ApplyAsync(job.PipelineId, null, nameof(StageFailed), state => machine.OnStageFailed(state, failed), cancellationToken);
        }
        return ended.Count;
    }

    /// <summary>A Done job's stored completion, when it reads as its stage's.</summary>
    private static IStageCompleted? Read(JobRecord job, Type type)
    {
        if (job.CompletionType != type.FullName || job.Completion is not { } json)
            return null;
        try
        {
            return JsonSerializer.Deserialize(json, type) as IStageCompleted;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private async Task RecoverInMemoryRestartAsync(CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        var redelivered = await outboxStore.RedeliverUnhandledAsync(PipelineChanges.InboxName, Queues.Orchestrator, PipelineConsumer.ConsumedTypes,
            now - outboxOptions.Value.Retention, _startedAt, cancellationToken);
        var waiting = await jobs.PendingOfRunningPipelinesAsync(_startedAt, cancellationToken);
        await outboxStore.AddAsync(waiting.Select(job => OutboxMessage.Send(StageCatalog.For(job.Stage).Queue, job.CommandType, job.Command, job.PipelineId, now))
            .ToList(), cancellationToken);
        if (redelivered + waiting.Count > 0)
        {
            logger.LogInformation(
                "Picking up after the previous process: {Redelivered} messages it delivered to the orchestrator without their being handled, and the commands of {Waiting} waiting jobs, go out again",
                redelivered, waiting.Count);
        }
    }
}
