using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Health;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Hosting.Observability;
using NvDinoPipeline.Specs;
using NvDinoPipeline.State;
using NvDinoPipeline.Storage;
using LogContext = Serilog.Context.LogContext;

namespace NvDinoPipeline.Hosting.Workers;

/// <summary>
/// Runs one job of a stage: records and claims it, keeps the claim alive, watches for cancel, then completes, fails
/// or hands it back, each together with the event others must hear (through the outbox). Delivery is at-least-once:
/// a command for a job that is finished, or held by a live claim, changes nothing; a job whose worker died is
/// rearmed by the orchestrator's recovery once its lease runs out. The run does not depend on the broker delivery
/// that started it: a broker that drops the channel (a restart, its consumer timeout) does not stop the job.
/// </summary>
public sealed class StageConsumer<TCommand, TCompleted>(
    IServiceScopeFactory scopes,
    JobStore jobs,
    PipelineStore pipelines,
    IOutbox outbox,
    IBus bus,
    WorkerIdentity worker,
    StageDescriptor<TCommand> descriptor,
    IOptions<StateOptions> stateOptions,
    IOptions<WorkerOptions> workerOptions,
    IOptions<ShutdownOptions> shutdownOptions,
    IHostApplicationLifetime lifetime,
    TimeProvider clock,
    PipelineMetrics metrics,
    ILogger<StageConsumer<TCommand, TCompleted>> logger) : IConsumer<TCommand>
    where TCommand : class, IStageCommand
    where TCompleted : class, IStageCompleted
{
    /// <summary>How long finishing writes (done, failed, handed back) wait for a database that is away.</summary>
    private static readonly TimeSpan FinishPatience = TimeSpan.FromMinutes(5);

    /// <summary>How long a progress event may wait for the broker's confirm before the job goes on without it.</summary>
    private static readonly TimeSpan ProgressPatience = TimeSpan.FromSeconds(5);

    private readonly StateResilience _resilience = new(logger, FinishPatience);

    public async Task Consume(ConsumeContext<TCommand> context)
    {
        var command = context.Message;
        var stage = descriptor.Stage;
        using var pipelineScope = LogContext.PushProperty("PipelineId", command.PipelineId);
        using var jobScope = LogContext.PushProperty("JobId", command.JobId);
        var token = context.CancellationToken;

        var job = await jobs.FindAsync(command.JobId, token);
        if (job is null)
        {
            // A command sent by someone other than the orchestrator: the job is recorded here.
            await jobs.AddIfMissingAsync(NewJob(command, stage), token);
            job = await jobs.FindAsync(command.JobId, token)
                ?? throw new InvalidOperationException($"Job {command.JobId} vanished from the state database.");
        }
        if (job.Status is JobStatus.Done or JobStatus.Error or JobStatus.Canceled)
        {
            logger.LogInformation("{Stage} job {JobId} is {Status} already; the command changes nothing", stage, job.Id, job.Status);
            return;
        }

        var lease = stateOptions.Value.JobLease;
        var started = outbox.Publish(new StageStarted
        {
            PipelineId = command.PipelineId,
            JobId = command.JobId,
            ParentJobId = command.ParentJobId,
            Stage = stage,
            WorkerId = worker.Id,
            StartedAt = clock.GetUtcNow(),
        }, command.PipelineId);
        if (!await jobs.TryClaimAsync(job.Id, worker.Id, lease, [started], token))
        {
            logger.LogInformation(
                "{Stage} job {JobId} is held by a live worker; leaving it there (should that worker die, the job is rearmed when its lease runs out)",
                stage, job.Id);
            return;
        }
        logger.LogInformation("{Stage} job {JobId} of pipeline {PipelineId} claimed by {WorkerId}", stage, job.Id, job.PipelineId, worker.Id);
        await outbox.DeliverAsync([started], CancellationToken.None);
        // UpdatedAt is when the job was recorded, or last handed back or rearmed: the wait of this claim.
        metrics.Claimed(stage, clock.GetUtcNow().UtcDateTime - DateTime.SpecifyKind(job.UpdatedAt, DateTimeKind.Utc));
        var claimed = clock.GetTimestamp();
        var outcome = PipelineMetrics.Outcomes.Failed;
        IReadOnlyDictionary<string, double>? figures = null;
        using var span = PipelineTracing.StartStage(stage, command, worker.Id, await TraceParentAsync(command.PipelineId, token));
        using var traceScope = LogContext.PushProperty("TraceId", span?.TraceId.ToString());
        using (metrics.Running(stage))
        {
            try
            {
                (outcome, figures) = await RunClaimedAsync(context, command, stage, lease);
            }
            catch
            {
                // RunClaimedAsync throws when a transient fault gives the job back for a retry (or its end could not be recorded).
                outcome = PipelineMetrics.Outcomes.Retried;
                throw;
            }
            finally
            {
                metrics.Finished(stage, outcome, clock.GetElapsedTime(claimed), figures);
                span?.SetTag("nvdino.outcome", outcome);
                if (outcome is PipelineMetrics.Outcomes.Failed)
                    span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error);
            }
        }
    }

    /// <summary>The pipeline's trace context; none when the job has no pipeline record or the database does not answer.</summary>
    private async Task<string?> TraceParentAsync(Guid pipelineId, CancellationToken cancellationToken)
    {
        if (!PipelineTracing.Source.HasListeners())
        {
            // No span is recorded: the query would be for nothing.
            return null;
        }
        try
        {
            return await pipelines.TraceParentAsync(pipelineId, cancellationToken);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            logger.LogDebug(exception, "The trace context of pipeline {PipelineId} could not be read; the job's span starts a trace of its own", pipelineId);
            return null;
        }
    }

    /// <returns>How the job left this worker (<see cref="PipelineMetrics.Outcomes"/>) and, when done, its figures.</returns>
    private async Task<(string Outcome, IReadOnlyDictionary<string, double>? Figures)> RunClaimedAsync(ConsumeContext<TCommand> context,
        TCommand command, PipelineStage stage, TimeSpan lease)
    {
        using var canceled = new CancellationTokenSource();
        using var lost = new CancellationTokenSource();
        using var running = CancellationTokenSource.CreateLinkedTokenSource(lifetime.ApplicationStopping, canceled.Token, lost.Token);
        using var saving = new CancellationTokenSource();
        var saveWindow = SaveWindow();
        using var onStop = running.Token.Register(() =>
        {
            if (lost.IsCancellationRequested)
            {
                saving.Cancel();
            }
            else
            {
                saving.CancelAfter(saveWindow);
            }
        });
        using var onLost = lost.Token.Register(saving.Cancel);
        using var heartbeatStop = new CancellationTokenSource();
        var heartbeat = KeepClaimAsync(command.JobId, lease, canceled, lost, heartbeatStop.Token);
        try
        {
            var result = await RunAsync(command, stage, running.Token, saving.Token);
            await StopAsync(heartbeatStop, heartbeat);
            if (lost.IsCancellationRequested)
            {
                logger.LogWarning("{Stage} job {JobId} finished after its claim was lost; its result is not recorded", stage, command.JobId);
                return (PipelineMetrics.Outcomes.Lost, null);
            }
            var completed = outbox.Publish(result.Completed, command.PipelineId);
            if (!await _resilience.RunAsync(ct => jobs.CompleteAsync(command.JobId, worker.Id, result.Completed, result.Artifacts, result.Metrics,
                    [completed], ct, result.Summary), CancellationToken.None))
            {
                logger.LogWarning("{Stage} job {JobId} was canceled or taken over while it finished; its result is not recorded", stage, command.JobId);
                return (PipelineMetrics.Outcomes.Lost, null);
            }
            logger.LogInformation("{Stage} job {JobId} done", stage, command.JobId);
            await outbox.DeliverAsync([completed], CancellationToken.None);
            return (PipelineMetrics.Outcomes.Done, result.Metrics);
        }
        catch (Exception exception)
        {
            await StopAsync(heartbeatStop, heartbeat);
            // Why the run ended decides what is recorded: a run told to stop may end in any exception its work threw.
            if (lost.IsCancellationRequested)
            {
                logger.LogWarning("{Stage} job {JobId} stopped: its claim was lost to another worker; nothing of this run is recorded", stage, command.JobId);
                return (PipelineMetrics.Outcomes.Lost, null);
            }
            if (canceled.IsCancellationRequested)
            {
                await RecordCanceledAsync(command, stage);
                return (PipelineMetrics.Outcomes.Canceled, null);
            }
            if (lifetime.ApplicationStopping.IsCancellationRequested)
            {
                await HandBackAsync(command, stage);
                return (PipelineMetrics.Outcomes.HandedBack, null);
            }
            if (StageFailures.IsTransient(exception) && context.GetRetryAttempt() < descriptor.RetryLimit)
            {
                await _resilience.RunAsync(ct => jobs.ReleaseAsync(command.JobId, worker.Id, [], ct), CancellationToken.None);
                logger.LogWarning(exception, "{Stage} job {JobId} hit a transient fault; it will be retried", stage, command.JobId);
                throw;
            }
            await RecordFailedAsync(command, stage, exception);
            return (PipelineMetrics.Outcomes.Failed, null);
        }
    }

    private async Task RecordCanceledAsync(TCommand command, PipelineStage stage)
    {
        var message = outbox.Publish(new StageCanceled
        {
            PipelineId = command.PipelineId,
            JobId = command.JobId,
            ParentJobId = command.ParentJobId,
            Stage = stage,
            CanceledAt = clock.GetUtcNow(),
        }, command.PipelineId);
        if (await _resilience.RunAsync(ct => jobs.MarkCanceledAsync(command.JobId, worker.Id, [message], ct), CancellationToken.None))
        {
            await outbox.DeliverAsync([message], CancellationToken.None);
        }
        logger.LogInformation("{Stage} job {JobId} canceled", stage, command.JobId);
    }

    /// <summary>
    /// The process is stopping: the job goes back to Pending with its command queued again, so another worker (or this
    /// one, restarted) continues it; the delivery that brought it is done with.
    /// </summary>
    private async Task HandBackAsync(TCommand command, PipelineStage stage)
    {
        var again = outbox.Send(descriptor.Queue, typeof(TCommand).FullName!, JsonSerializer.Serialize(command), command.PipelineId);
        if (await _resilience.RunAsync(ct => jobs.ReleaseAsync(command.JobId, worker.Id, [again], ct), CancellationToken.None))
        {
            await outbox.DeliverAsync([again], CancellationToken.None);
        }
        logger.LogWarning("{Stage} job {JobId} handed back: this worker is stopping", stage, command.JobId);
    }

    private async Task RecordFailedAsync(TCommand command, PipelineStage stage, Exception exception)
    {
        var reason = StageFailures.Describe(exception);
        logger.LogError(exception, "{Stage} job {JobId} failed: {Reason}", stage, command.JobId, reason);
        var failed = outbox.Publish(new StageFailed
        {
            PipelineId = command.PipelineId,
            JobId = command.JobId,
            ParentJobId = command.ParentJobId,
            Stage = stage,
            Reason = reason,
            FailedAt = clock.GetUtcNow(),
        }, command.PipelineId);
        if (await _resilience.RunAsync(ct => jobs.FailAsync(command.JobId, worker.Id, reason, [failed], ct), CancellationToken.None))
        {
            await outbox.DeliverAsync([failed], CancellationToken.None);
        }
    }

    /// <summary>How long a stopped job may save its work: most of the shutdown time, leaving some for the hand-back.</summary>
    private TimeSpan SaveWindow()
    {
        var timeout = shutdownOptions.Value.Timeout;
        return timeout - TimeSpan.FromTicks(Math.Max(timeout.Ticks / 5, Math.Min(TimeSpan.FromSeconds(5).Ticks, timeout.Ticks / 2)));
    }

    private async Task<StageResult<TCompleted>> RunAsync(TCommand command, PipelineStage stage, CancellationToken cancellationToken,
        CancellationToken saveOnStop)
    {
        var spec = ParseSpec(command);
        var scratch = Path.Combine(workerOptions.Value.ScratchDirectory, command.PipelineId.ToString(), command.JobId.ToString());
        Directory.CreateDirectory(scratch);
        var lastReport = DateTimeOffset.MinValue;
        var interval = workerOptions.Value.ProgressInterval;

        async Task Report(StageProgress progress, bool always, CancellationToken ct)
        {
            var now = clock.GetUtcNow();
            if (!always && now - lastReport < interval)
            {
                return;
            }
            lastReport = now;
            await jobs.ReportProgressAsync(command.JobId, worker.Id, progress.Fraction, progress.Message, progress.Metrics, ct);
            // Progress is a view of the job's row, which holds the truth: it goes out at once, not through the outbox.
            await PublishProgressAsync(new StageProgressed
            {
                PipelineId = command.PipelineId,
                JobId = command.JobId,
                ParentJobId = command.ParentJobId,
                Stage = stage,
                Fraction = progress.Fraction,
                Message = progress.Message,
                Metrics = progress.Metrics ?? new Dictionary<string, double>(),
                At = now,
            }, ct);
        }

        await using var scope = scopes.CreateAsyncScope();
        using var confinement = scope.ServiceProvider.GetRequiredService<IArtifactStore>().ConfineToJob(command.PipelineId, command.JobId, command.OutputUri);
        var runner = scope.ServiceProvider.GetRequiredService<IStageRunner<TCommand, TCompleted>>();
        var stageContext = new StageContext(command, stage, spec, command.OutputUri, scratch, logger, Report, saveOnStop);
        return await runner.RunAsync(command, stageContext, cancellationToken);
    }

    /// <summary>
    /// Best effort, and bounded: a broker restarting may close the channel without answering the confirm it owed, and
    /// the job must not wait for that (the job's row already holds the progress).
    /// </summary>
    private async Task PublishProgressAsync(StageProgressed progressed, CancellationToken cancellationToken)
    {
        using var patience = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        patience.CancelAfter(ProgressPatience);
        try
        {
            await bus.Publish(progressed, patience.Token);
        }
        catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            logger.LogDebug(exception, "A progress event of job {JobId} was not published", progressed.JobId);
        }
    }

    private static ResolvedSpec ParseSpec(TCommand command)
    {
        try
        {
            return ResolvedSpec.FromJson(command.Spec);
        }
        catch (Exception exception)
        {
            throw new StageInputException($"The spec carried by job {command.JobId} is not valid: {exception.Message}", exception);
        }
    }

    /// <summary>
    /// Renews the claim. A job marked Canceled cancels the run; a claim another worker now holds, or one this worker
    /// could not renew for a whole lease (the database was away that long, so another worker may have taken the job),
    /// stops the run without recording anything.
    /// </summary>
    private async Task KeepClaimAsync(Guid jobId, TimeSpan lease, CancellationTokenSource canceled, CancellationTokenSource lost, CancellationToken stop)
    {
        var period = lease / 3;
        var renewedAt = clock.GetUtcNow();
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(period, clock, stop);
                ClaimState state;
                try
                {
                    state = await jobs.RenewLeaseAsync(jobId, worker.Id, lease, stop);
                }
                catch (Exception exception) when (exception is not OperationCanceledException)
                {
                    if (clock.GetUtcNow() - renewedAt >= lease)
                    {
                        logger.LogWarning(exception, "The claim on job {JobId} could not be renewed for {Lease}; stopping the job, which may have been taken over",
                            jobId, lease);
                        await lost.CancelAsync();
                        return;
                    }
                    logger.LogWarning(exception, "Could not renew the claim on job {JobId}; trying again", jobId);
                    continue;
                }
                if (state.Status == JobStatus.Canceled && state.Owned)
                {
                    logger.LogInformation("Job {JobId} was canceled; stopping it", jobId);
                    await canceled.CancelAsync();
                    return;
                }
                if (state.Status != JobStatus.Running || !state.Owned)
                {
                    logger.LogWarning("Job {JobId} is {Status} and no longer this worker's; stopping it", jobId, state.Status);
                    await lost.CancelAsync();
                    return;
                }
                renewedAt = clock.GetUtcNow();
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    private static async Task StopAsync(CancellationTokenSource heartbeatStop, Task heartbeat)
    {
        await heartbeatStop.CancelAsync();
        await heartbeat;
    }

    private static JobRecord NewJob(TCommand command, PipelineStage stage) => new()
    {
        Id = command.JobId,
        PipelineId = command.PipelineId,
        ParentJobId = command.ParentJobId,
        Step = $"{stage.ToString().ToLowerInvariant()}-{command.JobId.ToString("N")[..8]}",
        Stage = stage,
        Status = JobStatus.Pending,
        Spec = command.Spec,
        CommandType = typeof(TCommand).FullName!,
        Command = JsonSerializer.Serialize(command),
        CreatedAt = DateTime.UtcNow,
        UpdatedAt = DateTime.UtcNow,
    };
}
