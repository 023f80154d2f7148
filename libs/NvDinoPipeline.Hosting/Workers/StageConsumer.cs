using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Specs;
using NvDinoPipeline.State;
using NvDinoPipeline.Storage;
using LogContext = Serilog.Context.LogContext;

namespace NvDinoPipeline.Hosting.Workers;

/// <summary>
/// Runs one job of a stage: records and claims it, keeps the claim alive, watches for cancel, then
/// completes, fails or hands it back. Delivery is at-least-once, so a command for a job that is
/// already Done publishes the stored completion again instead of running the stage twice.
/// </summary>
public sealed class StageConsumer<TCommand, TCompleted>(
    IServiceScopeFactory scopes,
    JobStore jobs,
    WorkerIdentity worker,
    StageDescriptor<TCommand> descriptor,
    IOptions<StateOptions> stateOptions,
    IOptions<WorkerOptions> workerOptions,
    IHostApplicationLifetime lifetime,
    TimeProvider clock,
    ILogger<StageConsumer<TCommand, TCompleted>> logger) : IConsumer<TCommand>
    where TCommand : class, IStageCommand
    where TCompleted : class, IStageMessage
{
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
        switch (job.Status)
        {
            case JobStatus.Done:
                logger.LogInformation("{Stage} job {JobId} is already done; publishing its completion again", stage, job.Id);
                await PublishStoredCompletionAsync(context, job);
                return;
            case JobStatus.Error or JobStatus.Canceled:
                logger.LogInformation("{Stage} job {JobId} is {Status}; not running it", stage, job.Id, job.Status);
                return;
        }

        var lease = stateOptions.Value.JobLease;
        if (!await jobs.TryClaimAsync(job.Id, worker.Id, lease, token))
        {
            logger.LogInformation("{Stage} job {JobId} is held by another live worker; leaving it there", stage, job.Id);
            return;
        }
        logger.LogInformation("{Stage} job {JobId} of pipeline {PipelineId} claimed by {WorkerId}", stage, job.Id, job.PipelineId, worker.Id);
        await context.Publish(new StageStarted
        {
            PipelineId = command.PipelineId,
            JobId = command.JobId,
            ParentJobId = command.ParentJobId,
            Stage = stage,
            WorkerId = worker.Id,
            StartedAt = clock.GetUtcNow(),
        }, token);

        using var jobCanceled = new CancellationTokenSource();
        using var running = CancellationTokenSource.CreateLinkedTokenSource(token, lifetime.ApplicationStopping, jobCanceled.Token);
        using var heartbeatStop = new CancellationTokenSource();
        var heartbeat = KeepClaimAsync(job.Id, lease, jobCanceled, heartbeatStop.Token);
        try
        {
            var result = await RunAsync(context, command, stage, running.Token);
            await StopAsync(heartbeatStop, heartbeat);
            if (!await jobs.CompleteAsync(job.Id, worker.Id, result.Completed, result.Artifacts, result.Metrics, CancellationToken.None))
            {
                logger.LogWarning("{Stage} job {JobId} was canceled or taken over while it finished; its result is not recorded", stage, job.Id);
                return;
            }
            logger.LogInformation("{Stage} job {JobId} done", stage, job.Id);
            await context.Publish(result.Completed, CancellationToken.None);
        }
        catch (OperationCanceledException) when (jobCanceled.IsCancellationRequested)
        {
            await StopAsync(heartbeatStop, heartbeat);
            await jobs.MarkCanceledAsync(job.Id, CancellationToken.None);
            logger.LogInformation("{Stage} job {JobId} canceled", stage, job.Id);
            await context.Publish(new StageCanceled
            {
                PipelineId = command.PipelineId,
                JobId = command.JobId,
                ParentJobId = command.ParentJobId,
                Stage = stage,
                CanceledAt = clock.GetUtcNow(),
            }, CancellationToken.None);
        }
        catch (OperationCanceledException) when (running.IsCancellationRequested)
        {
            // The process is stopping: hand the job back so another worker (or this one, restarted) resumes it.
            await StopAsync(heartbeatStop, heartbeat);
            await jobs.ReleaseAsync(job.Id, worker.Id, CancellationToken.None);
            logger.LogWarning("{Stage} job {JobId} handed back: this worker is stopping", stage, job.Id);
            throw;
        }
        catch (Exception exception) when (StageFailures.IsTransient(exception) && context.GetRetryAttempt() < descriptor.RetryLimit)
        {
            await StopAsync(heartbeatStop, heartbeat);
            await jobs.ReleaseAsync(job.Id, worker.Id, CancellationToken.None);
            logger.LogWarning(exception, "{Stage} job {JobId} hit a transient fault; it will be retried", stage, job.Id);
            throw;
        }
        catch (Exception exception)
        {
            await StopAsync(heartbeatStop, heartbeat);
            var reason = StageFailures.Describe(exception);
            await jobs.FailAsync(job.Id, reason, CancellationToken.None);
            logger.LogError(exception, "{Stage} job {JobId} failed: {Reason}", stage, job.Id, reason);
            await context.Publish(new StageFailed
            {
                PipelineId = command.PipelineId,
                JobId = command.JobId,
                ParentJobId = command.ParentJobId,
                Stage = stage,
                Reason = reason,
                FailedAt = clock.GetUtcNow(),
            }, CancellationToken.None);
        }
    }

    private async Task<StageResult<TCompleted>> RunAsync(ConsumeContext<TCommand> context, TCommand command,
        PipelineStage stage, CancellationToken cancellationToken)
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
            await jobs.ReportProgressAsync(command.JobId, progress.Fraction, progress.Message, progress.Metrics, ct);
            await context.Publish(new StageProgressed
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
        var stageContext = new StageContext(command, stage, spec, command.OutputUri, scratch, logger, Report);
        return await runner.RunAsync(command, stageContext, cancellationToken);
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

    /// <summary>Renews the claim; a job marked Canceled (or taken away) cancels the run.</summary>
    private async Task KeepClaimAsync(Guid jobId, TimeSpan lease, CancellationTokenSource jobCanceled, CancellationToken stop)
    {
        var period = lease / 3;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(period, clock, stop);
                JobStatus? status;
                try
                {
                    status = await jobs.RenewLeaseAsync(jobId, worker.Id, lease, stop);
                }
                catch (Exception exception) when (exception is not OperationCanceledException)
                {
                    logger.LogWarning(exception, "Could not renew the claim on job {JobId}; trying again", jobId);
                    continue;
                }
                if (status is not JobStatus.Running)
                {
                    logger.LogInformation("Job {JobId} is now {Status}; stopping it", jobId, status);
                    await jobCanceled.CancelAsync();
                    return;
                }
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

    private static async Task PublishStoredCompletionAsync(ConsumeContext<TCommand> context, JobRecord job)
    {
        if (job.Completion is null)
        {
            return;
        }
        var completion = JsonSerializer.Deserialize<TCompleted>(job.Completion)
            ?? throw new InvalidOperationException($"Job {job.Id} has an empty completion record.");
        await context.Publish(completion, context.CancellationToken);
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
