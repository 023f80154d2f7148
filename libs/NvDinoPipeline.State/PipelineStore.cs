using Microsoft.EntityFrameworkCore;
using NvDinoPipeline.Contracts;

namespace NvDinoPipeline.State;

public enum ChangeOutcome
{
    /// <summary>The change and its messages were saved.</summary>
    Applied,

    /// <summary>The message was handled before; nothing was changed.</summary>
    AlreadyHandled,

    /// <summary>No such pipeline (for a change), or the pipeline exists already (for a creation).</summary>
    Missing,
}

/// <summary>What a change of a pipeline saved: the outcome, and the messages saved with it, for their relay.</summary>
public sealed record PipelineChange(ChangeOutcome Outcome, IReadOnlyList<OutboxMessage> Outbox)
{
    public static PipelineChange Handled { get; } = new(ChangeOutcome.AlreadyHandled, []);

    public static PipelineChange None { get; } = new(ChangeOutcome.Missing, []);
}

/// <summary>
/// Pipelines with their jobs, as the orchestrator changes them and clients read them. A change loads the pipeline,
/// applies the caller's transition, and saves the new state, the messages it implies (the outbox) and the handled
/// message (the inbox) in one transaction. The pipeline's version makes concurrent changes fail and retry instead of
/// interleave; a message already in the inbox changes nothing.
/// </summary>
public sealed class PipelineStore(StateDatabase database, TimeProvider clock)
{
    /// <summary>Saves a new pipeline made by <paramref name="create"/>; <see cref="ChangeOutcome.Missing"/> when it exists already.</summary>
    public Task<PipelineChange> CreateAsync(Guid pipelineId, HandledMessage? message,
        Func<(PipelineRecord Pipeline, List<JobRecord> Jobs, IReadOnlyList<OutboxMessage> Outbox)> create, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async db =>
        {
            if (await AlreadyHandledAsync(db, message, cancellationToken))
            {
                return PipelineChange.Handled;
            }
            if (await db.Pipelines.AnyAsync(p => p.Id == pipelineId, cancellationToken))
            {
                Record(db, message);
                await db.SaveChangesAsync(cancellationToken);
                return PipelineChange.None;
            }
            var (pipeline, jobs, outbox) = create();
            db.Pipelines.Add(pipeline);
            db.Jobs.AddRange(jobs);
            db.Outbox.AddRange(outbox);
            Record(db, message);
            await db.SaveChangesAsync(cancellationToken);
            return new PipelineChange(ChangeOutcome.Applied, outbox);
        }, cancellationToken);

    /// <summary>Applies <paramref name="change"/> to the pipeline and its jobs (in place) and saves what it returns with them.</summary>
    public Task<PipelineChange> UpdateAsync(Guid pipelineId, HandledMessage? message,
        Func<PipelineRecord, List<JobRecord>, IReadOnlyList<OutboxMessage>> change, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async db =>
        {
            if (await AlreadyHandledAsync(db, message, cancellationToken))
            {
                return PipelineChange.Handled;
            }
            var pipeline = await db.Pipelines.SingleOrDefaultAsync(p => p.Id == pipelineId, cancellationToken);
            if (pipeline is null)
            {
                return PipelineChange.None;
            }
            var jobs = await JobsOfAsync(db.Jobs, pipeline, cancellationToken);
            var outbox = change(pipeline, jobs);
            foreach (var job in jobs.Where(j => db.Entry(j).State == EntityState.Detached))
            {
                db.Jobs.Add(job);
            }
            db.Outbox.AddRange(outbox);
            if (db.ChangeTracker.Entries().Any(e => e.Entity is PipelineRecord or JobRecord && e.State != EntityState.Unchanged))
            {
                pipeline.Version++;
            }
            Record(db, message);
            await db.SaveChangesAsync(cancellationToken);
            return new PipelineChange(ChangeOutcome.Applied, outbox);
        }, cancellationToken);

    /// <summary>A pipeline and its jobs as they are now; null when there is no such pipeline.</summary>
    public Task<(PipelineRecord Pipeline, List<JobRecord> Jobs)?> ReadAsync(Guid pipelineId, CancellationToken cancellationToken) =>
        database.ReadAsync<(PipelineRecord, List<JobRecord>)?>(async db =>
        {
            var pipeline = await db.Pipelines.AsNoTracking().SingleOrDefaultAsync(p => p.Id == pipelineId, cancellationToken);
            if (pipeline is null)
            {
                return null;
            }
            return (pipeline, await JobsOfAsync(db.Jobs.AsNoTracking(), pipeline, cancellationToken));
        }, cancellationToken);

    /// <summary>One job and the pipeline it belongs to, as they are now; null when there is no such job.</summary>
    public Task<(PipelineRecord Pipeline, List<JobRecord> Jobs, JobRecord Job)?> ReadJobAsync(Guid jobId, CancellationToken cancellationToken) =>
        database.ReadAsync<(PipelineRecord, List<JobRecord>, JobRecord)?>(async db =>
        {
            var job = await db.Jobs.AsNoTracking().SingleOrDefaultAsync(j => j.Id == jobId, cancellationToken);
            var pipeline = job is null ? null : await db.Pipelines.AsNoTracking().SingleOrDefaultAsync(p => p.Id == job.PipelineId, cancellationToken);
            if (job is null || pipeline is null)
            {
                return null;
            }
            return (pipeline, await JobsOfAsync(db.Jobs.AsNoTracking(), pipeline, cancellationToken), job);
        }, cancellationToken);

    /// <summary>A pipeline's own jobs and the jobs of other pipelines its plan reuses (<see cref="PipelineStep.Reuses"/>).</summary>
    private static async Task<List<JobRecord>> JobsOfAsync(IQueryable<JobRecord> jobs, PipelineRecord pipeline, CancellationToken cancellationToken)
    {
        var id = pipeline.Id;
        var reused = PipelineStep.ReusedJobs(pipeline.Plan);
        return reused.Count == 0
            ? await jobs.Where(j => j.PipelineId == id).ToListAsync(cancellationToken)
            : await jobs.Where(j => j.PipelineId == id || reused.Contains(j.Id)).ToListAsync(cancellationToken);
    }

    /// <summary>The newest <paramref name="limit"/> pipelines with their jobs.</summary>
    public Task<List<(PipelineRecord Pipeline, List<JobRecord> Jobs)>> ListAsync(int limit, CancellationToken cancellationToken) =>
        database.ReadAsync(async db =>
        {
            var pipelines = await db.Pipelines.AsNoTracking().OrderByDescending(p => p.CreatedAt).Take(limit).ToListAsync(cancellationToken);
            var ids = pipelines.Select(p => p.Id).ToList();
            var reused = pipelines.SelectMany(p => PipelineStep.ReusedJobs(p.Plan)).Distinct().ToList();
            var found = await db.Jobs.AsNoTracking().Where(j => ids.Contains(j.PipelineId) || reused.Contains(j.Id)).ToListAsync(cancellationToken);
            var own = found.ToLookup(j => j.PipelineId);
            var byId = found.ToDictionary(j => j.Id);
            return pipelines.Select(p => (p, own[p.Id].Concat(PipelineStep.ReusedJobs(p.Plan).Where(byId.ContainsKey).Select(id => byId[id])).ToList()))
                .ToList();
        }, cancellationToken);

    /// <summary>The W3C trace context recorded with the pipeline's start; null for an unknown pipeline.</summary>
    public Task<string?> TraceParentAsync(Guid pipelineId, CancellationToken cancellationToken) =>
        database.ReadAsync(db => db.Pipelines.Where(p => p.Id == pipelineId).Select(p => p.TraceParent).FirstOrDefaultAsync(cancellationToken), cancellationToken);

    /// <summary>How many pipelines are in each status, and how many jobs of each stage are in each status.</summary>
    public Task<StateCounts> CountAsync(CancellationToken cancellationToken) =>
        database.ReadAsync(async db =>
        {
            var pipelines = await db.Pipelines.GroupBy(p => p.Status).Select(g => new { Status = g.Key, Count = g.Count() })
                .ToListAsync(cancellationToken);
            var jobs = await db.Jobs.GroupBy(j => new { j.Stage, j.Status }).Select(g => new { g.Key.Stage, g.Key.Status, Count = g.Count() })
                .ToListAsync(cancellationToken);
            return new StateCounts(pipelines.ToDictionary(p => p.Status, p => p.Count), jobs.ToDictionary(j => (j.Stage, j.Status), j => j.Count));
        }, cancellationToken);

    /// <summary>Whether a pipeline record, or any job of it (a stage used on its own), exists.</summary>
    public Task<bool> KnownAsync(Guid pipelineId, CancellationToken cancellationToken) =>
        database.ReadAsync(async db => await db.Pipelines.AnyAsync(p => p.Id == pipelineId, cancellationToken)
            || await db.Jobs.AnyAsync(j => j.PipelineId == pipelineId, cancellationToken), cancellationToken);

    /// <summary>Jobs of <paramref name="pipelineId"/> that finished as <paramref name="status"/> in one of <paramref name="stages"/>, newest first.</summary>
    public Task<List<JobRecord>> FinishedJobsAsync(Guid pipelineId, IReadOnlyCollection<PipelineStage> stages, CancellationToken cancellationToken) =>
        database.ReadAsync(db => db.Jobs.AsNoTracking()
            .Where(j => j.PipelineId == pipelineId && j.Status == JobStatus.Done && stages.Contains(j.Stage))
            .OrderByDescending(j => j.CompletedAt).ToListAsync(cancellationToken), cancellationToken);

    private static Task<bool> AlreadyHandledAsync(StateDbContext db, HandledMessage? message, CancellationToken cancellationToken) =>
        message is null
            ? Task.FromResult(false)
            : db.Inbox.AnyAsync(i => i.MessageId == message.MessageId && i.Consumer == message.Consumer, cancellationToken);

    private void Record(StateDbContext db, HandledMessage? message)
    {
        if (message is not null)
        {
            db.Inbox.Add(new InboxMessage { MessageId = message.MessageId, Consumer = message.Consumer, HandledAt = clock.GetUtcNow().UtcDateTime });
        }
    }
}

/// <summary>Pipelines by status and jobs by stage and status, as the state database holds them.</summary>
public sealed record StateCounts(
    IReadOnlyDictionary<JobStatus, int> Pipelines,
    IReadOnlyDictionary<(PipelineStage Stage, JobStatus Status), int> Jobs);
