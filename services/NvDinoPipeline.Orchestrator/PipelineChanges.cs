using System.Data.Common;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using NvDinoPipeline.Checkpoints;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.State;
using NvDinoPipeline.Storage;
using LogContext = Serilog.Context.LogContext;

namespace NvDinoPipeline.Orchestrator;

/// <summary>
/// Saves what a message does to its pipeline: the state machine's transition with the commands and events it implies
/// (outbox) and the message it handled (inbox) in one transaction; then delivers them. A message handled before changes
/// nothing. Shared by every consumer of the orchestrator's queue.
/// </summary>
public sealed class PipelineChanges(PipelineStore pipelines, IOutbox outbox, PipelineStateMachine machine, IArtifactStore artifacts,
    ILogger<PipelineChanges> logger)
{
    /// <summary>Who the inbox records as having handled a message: the orchestrator's queue.</summary>
    public const string InboxName = Queues.Orchestrator;

    /// <summary>Applies <paramref name="change"/> to the pipeline the handled message belongs to.</summary>
    public Task ApplyAsync(ConsumeContext context, Guid pipelineId, Func<PipelineState, Transition> change) =>
        ApplyAsync(pipelineId, Handled(context), context.SupportedMessageTypes.FirstOrDefault()?.Split(':').LastOrDefault() ?? "a message", change,
            context.CancellationToken);

    /// <summary>
    /// Applies <paramref name="change"/>, which <paramref name="what"/> (a message's type) brings, to the pipeline;
    /// <paramref name="handled"/> is recorded in the inbox with it (null: the orchestrator acts on its own).
    /// </summary>
    public async Task ApplyAsync(Guid pipelineId, HandledMessage? handled, string what, Func<PipelineState, Transition> change,
        CancellationToken cancellationToken)
    {
        using var scope = LogContext.PushProperty("PipelineId", pipelineId);
        Exception? defect = null;
        Transition? applied = null;
        PipelineChange saved;
        try
        {
            saved = await pipelines.UpdateAsync(pipelineId, handled, (pipeline, jobs) =>
            {
                try
                {
                    applied = change(new PipelineState(pipeline, jobs));
                    return Messages(pipeline, applied);
                }
                catch (Exception exception) when (IsDefect(exception))
                {
                    defect = exception;
                    throw;
                }
            }, cancellationToken);
        }
        catch (Exception) when (defect is { } exception)
        {
            // Deciding the transition threw (a defect, or a state row it cannot read), and will throw again on every
            // delivery: nothing of it was saved. Left there, the message would go to the error queue and the pipeline
            // would stay Running with nothing left to move it. It fails instead, with the reason, and can be resumed.
            var reason = $"The orchestrator could not apply {what} to the pipeline: {exception.GetType().Name}: {exception.Message}";
            logger.LogError(exception, "Applying {MessageType} to pipeline {PipelineId} failed; the pipeline is failed with the reason", what, pipelineId);
            applied = null;
            saved = await pipelines.UpdateAsync(pipelineId, handled, (pipeline, jobs) =>
            {
                try
                {
                    return Messages(pipeline, machine.Halt(new PipelineState(pipeline, jobs), reason));
                }
                catch (Exception again) when (IsDefect(again))
                {
                    // Not even its plan can be read: the record alone says why the pipeline stopped.
                    logger.LogError(again, "Pipeline {PipelineId} cannot be read as a plan of steps; only its record is failed", pipelineId);
                    return Messages(pipeline, machine.HaltRecord(pipeline, reason));
                }
            }, cancellationToken);
        }
        switch (saved.Outcome)
        {
            case ChangeOutcome.Missing:
                logger.LogWarning("{MessageType} for unknown pipeline {PipelineId} ignored", what, pipelineId);
                return;
            case ChangeOutcome.AlreadyHandled:
                logger.LogInformation("{MessageType} {MessageId} of pipeline {PipelineId} was handled before; it changes nothing",
                    what, handled?.MessageId, pipelineId);
                return;
        }
        if (applied is { PruneCheckpoints.Count: > 0 })
        {
            // Before the commands go: what they start (export of the winner, the pipeline's end) comes after the pruning.
            await PruneAsync(applied.PruneCheckpoints, cancellationToken);
        }
        await outbox.DeliverAsync(saved.Outbox, cancellationToken);
    }

    /// <summary>
    /// Deletes the checkpoints under each job folder, after the transition that chose them was saved. A failure is
    /// logged and the rest go on: what is left is kept, never lost, and the pipeline does not depend on it.
    /// </summary>
    private async Task PruneAsync(IReadOnlyList<Uri> folders, CancellationToken cancellationToken)
    {
        foreach (var folder in folders)
        {
            try
            {
                var checkpoints = await StoredCheckpoints.ListAsync(artifacts, folder.Append(CheckpointNames.Folder), cancellationToken);
                foreach (var checkpoint in checkpoints)
                {
                    await artifacts.DeleteAsync(checkpoint.Uri, cancellationToken);
                }
                logger.LogInformation("Deleted the {Count} checkpoints of {Folder} (automl_delete_intermediate_ckpt)", checkpoints.Count, folder);
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                logger.LogWarning(exception, "The checkpoints of {Folder} could not be deleted; they are kept", folder);
            }
        }
    }

    /// <summary>
    /// The transition's commands (each job's stored command, to its stage's queue), events, and messages for the
    /// pipeline's results queue, as outbox rows.
    /// </summary>
    public IReadOnlyList<OutboxMessage> Messages(PipelineRecord pipeline, Transition transition)
    {
        var pipelineId = pipeline.Id;
        foreach (var message in transition.Publish)
        {
            logger.LogInformation("Pipeline event {Event}", message.GetType().Name);
        }
        foreach (var job in transition.Dispatch)
        {
            logger.LogInformation("Sending {Command} for {Stage} job {JobId} (step {Step}, attempt {Attempt})",
                job.CommandType[(job.CommandType.LastIndexOf('.') + 1)..], job.Stage, job.Id, job.Step, job.Attempt);
        }
        return
        [
            .. transition.Publish.Select(message => outbox.Publish(message, pipelineId)),
            .. transition.Dispatch.Select(job => outbox.Send(StageCatalog.For(job.Stage).Queue, job.CommandType, job.Command, pipelineId)),
            .. transition.Results.Select(message => outbox.Send(pipeline.ResultsQueue!, message, pipelineId, pipeline.ResultsContentType)),
        ];
    }

    /// <summary>
    /// Whether an exception thrown while a transition was decided (in memory, from the loaded state) will recur on every
    /// delivery; a canceled delivery or the state database being away will not.
    /// </summary>
    public static bool IsDefect(Exception exception) =>
        exception is not (OperationCanceledException or DbException or DbUpdateException) && !StateFailures.IsTransient(exception);

    /// <summary>The inbox entry of the handled message; null for a message without an id.</summary>
    public static HandledMessage? Handled(ConsumeContext context) =>
        context.MessageId is { } id ? new HandledMessage(id, InboxName) : null;
}
