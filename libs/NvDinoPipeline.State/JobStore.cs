using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using NvDinoPipeline.Contracts;

namespace NvDinoPipeline.State;

/// <summary>Where a worker stands with a job it claimed, as seen when it renews the claim.</summary>
/// <param name="Status">The job's status; null when the job no longer exists.</param>
/// <param name="Owned">Whether the claim is still the caller's (false once another worker took the job over).</param>
public sealed record ClaimState(JobStatus? Status, bool Owned);

/// <summary>
/// The job operations stage workers perform. Claims are leases: a worker that dies stops renewing and the job is
/// taken over; only the claim's owner renews, completes, fails or hands back a job; a job that is Done is never run
/// again. Every change that others must hear of is saved with its messages (the outbox) in one transaction.
/// </summary>
public sealed class JobStore(StateDatabase database, TimeProvider clock)
{
    public Task<JobRecord?> FindAsync(Guid jobId, CancellationToken cancellationToken) =>
        database.ReadAsync(db => db.Jobs.AsNoTracking().SingleOrDefaultAsync(j => j.Id == jobId, cancellationToken), cancellationToken);

    /// <summary>Records a job that arrived without the orchestrator (a stage used on its own).</summary>
    public async Task AddIfMissingAsync(JobRecord job, CancellationToken cancellationToken)
    {
        try
        {
            await database.InTransactionAsync(async db =>
            {
                if (!await db.Jobs.AnyAsync(j => j.Id == job.Id, cancellationToken))
                {
                    db.Jobs.Add(job);
                    await db.SaveChangesAsync(cancellationToken);
                }
                return true;
            }, cancellationToken);
        }
        catch (DbUpdateException)
        {
            // Two deliveries of the same command raced; the other one recorded the job.
            if (await FindAsync(job.Id, cancellationToken) is null)
            {
                throw;
            }
        }
    }

    /// <summary>Claims a pending job, or one whose previous worker's lease ran out, saving <paramref name="outbox"/> with the claim.</summary>
    public Task<bool> TryClaimAsync(Guid jobId, string workerId, TimeSpan lease, IReadOnlyList<OutboxMessage> outbox,
        CancellationToken cancellationToken)
    {
        var now = Now;
        var expires = now + lease;
        return ChangeAsync(db => db.Jobs
            .Where(j => j.Id == jobId
                && (j.Status == JobStatus.Pending || (j.Status == JobStatus.Running && j.LeaseExpiresAt < now)))
            .ExecuteUpdateAsync(s => s
                .SetProperty(j => j.Status, JobStatus.Running)
                .SetProperty(j => j.WorkerId, workerId)
                .SetProperty(j => j.LeaseExpiresAt, expires)
                .SetProperty(j => j.Claims, j => j.Claims + 1)
                .SetProperty(j => j.StartedAt, j => j.StartedAt ?? now)
                .SetProperty(j => j.UpdatedAt, now)
                .SetProperty(j => j.Version, j => j.Version + 1), cancellationToken), outbox, cancellationToken);
    }

    /// <summary>Extends the lease if the caller still owns it, and says where the job stands (a cancel, a takeover).</summary>
    public Task<ClaimState> RenewLeaseAsync(Guid jobId, string workerId, TimeSpan lease, CancellationToken cancellationToken)
    {
        var now = Now;
        return database.ReadAsync(async db =>
        {
            await db.Jobs
                .Where(j => j.Id == jobId && j.WorkerId == workerId && j.Status == JobStatus.Running)
                .ExecuteUpdateAsync(s => s.SetProperty(j => j.LeaseExpiresAt, now + lease), cancellationToken);
            var job = await db.Jobs.Where(j => j.Id == jobId).Select(j => new { j.Status, j.WorkerId }).SingleOrDefaultAsync(cancellationToken);
            return new ClaimState(job?.Status, job?.WorkerId == workerId);
        }, cancellationToken);
    }

    public Task ReportProgressAsync(Guid jobId, string workerId, double? fraction, string? message,
        IReadOnlyDictionary<string, double>? metrics, CancellationToken cancellationToken)
    {
        var now = Now;
        var metricsJson = metrics is null ? null : JsonSerializer.Serialize(metrics);
        return database.ReadAsync(db => db.Jobs
            .Where(j => j.Id == jobId && j.WorkerId == workerId && j.Status == JobStatus.Running)
            .ExecuteUpdateAsync(s => s
                .SetProperty(j => j.Progress, j => fraction ?? j.Progress)
                .SetProperty(j => j.ProgressMessage, j => message ?? j.ProgressMessage)
                .SetProperty(j => j.Metrics, j => metricsJson ?? j.Metrics)
                .SetProperty(j => j.UpdatedAt, now), cancellationToken), cancellationToken);
    }

    /// <summary>
    /// Marks the job Done with its completion event, and <paramref name="summary"/> (when given) as its status message;
    /// false when this worker no longer owns it.
    /// </summary>
    public Task<bool> CompleteAsync(Guid jobId, string workerId, object completion,
        IReadOnlyDictionary<string, Uri> artifacts, IReadOnlyDictionary<string, double> metrics,
        IReadOnlyList<OutboxMessage> outbox, CancellationToken cancellationToken, string? summary = null)
    {
        var now = Now;
        var type = completion.GetType().FullName!;
        var completionJson = JsonSerializer.Serialize(completion, completion.GetType());
        var artifactsJson = JsonSerializer.Serialize(artifacts.ToDictionary(a => a.Key, a => a.Value.ToString()));
        var metricsJson = JsonSerializer.Serialize(metrics);
        return ChangeAsync(db => db.Jobs
            .Where(j => j.Id == jobId && j.WorkerId == workerId && j.Status == JobStatus.Running)
            .ExecuteUpdateAsync(s => s
                .SetProperty(j => j.Status, JobStatus.Done)
                .SetProperty(j => j.CompletionType, type)
                .SetProperty(j => j.Completion, completionJson)
                .SetProperty(j => j.Artifacts, artifactsJson)
                .SetProperty(j => j.Metrics, metricsJson)
                .SetProperty(j => j.Progress, 1.0)
                .SetProperty(j => j.ProgressMessage, j => summary ?? j.ProgressMessage)
                .SetProperty(j => j.LeaseExpiresAt, (DateTime?)null)
                .SetProperty(j => j.CompletedAt, now)
                .SetProperty(j => j.UpdatedAt, now)
                .SetProperty(j => j.Version, j => j.Version + 1), cancellationToken), outbox, cancellationToken);
    }

    /// <summary>Marks the caller's job failed with <paramref name="reason"/>.</summary>
    public Task<bool> FailAsync(Guid jobId, string workerId, string reason, IReadOnlyList<OutboxMessage> outbox, CancellationToken cancellationToken)
    {
        var now = Now;
        return ChangeAsync(db => db.Jobs
            .Where(j => j.Id == jobId && j.WorkerId == workerId && j.Status == JobStatus.Running)
            .ExecuteUpdateAsync(s => s
                .SetProperty(j => j.Status, JobStatus.Error)
                .SetProperty(j => j.ErrorReason, reason)
                .SetProperty(j => j.LeaseExpiresAt, (DateTime?)null)
                .SetProperty(j => j.CompletedAt, now)
                .SetProperty(j => j.UpdatedAt, now)
                .SetProperty(j => j.Version, j => j.Version + 1), cancellationToken), outbox, cancellationToken);
    }

    /// <summary>Records that the caller stopped its job because it was canceled (by the orchestrator, or while it ran).</summary>
    public Task<bool> MarkCanceledAsync(Guid jobId, string workerId, IReadOnlyList<OutboxMessage> outbox, CancellationToken cancellationToken)
    {
        var now = Now;
        return ChangeAsync(db => db.Jobs
            .Where(j => j.Id == jobId && j.WorkerId == workerId && (j.Status == JobStatus.Running || j.Status == JobStatus.Canceled))
            .ExecuteUpdateAsync(s => s
                .SetProperty(j => j.Status, JobStatus.Canceled)
                .SetProperty(j => j.LeaseExpiresAt, (DateTime?)null)
                .SetProperty(j => j.CompletedAt, j => j.CompletedAt ?? now)
                .SetProperty(j => j.UpdatedAt, now)
                .SetProperty(j => j.Version, j => j.Version + 1), cancellationToken), outbox, cancellationToken);
    }

    /// <summary>Hands the caller's job back (worker stopping, transient fault): Pending again, with <paramref name="outbox"/> (its command).</summary>
    public Task<bool> ReleaseAsync(Guid jobId, string workerId, IReadOnlyList<OutboxMessage> outbox, CancellationToken cancellationToken)
    {
        var now = Now;
        return ChangeAsync(db => db.Jobs
            .Where(j => j.Id == jobId && j.WorkerId == workerId && j.Status == JobStatus.Running)
            .ExecuteUpdateAsync(s => s
                .SetProperty(j => j.Status, JobStatus.Pending)
                .SetProperty(j => j.WorkerId, (string?)null)
                .SetProperty(j => j.LeaseExpiresAt, (DateTime?)null)
                .SetProperty(j => j.UpdatedAt, now)
                .SetProperty(j => j.Version, j => j.Version + 1), cancellationToken), outbox, cancellationToken);
    }

    /// <summary>
    /// Running jobs whose worker stopped renewing its lease (it died, or lost the database for longer than the lease):
    /// each goes back to Pending with the message <paramref name="resend"/> makes for it (its command again), in one
    /// transaction per job, so a job is rearmed once even when several processes sweep at the same time.
    /// </summary>
    public async Task<IReadOnlyList<(JobRecord Job, OutboxMessage Message)>> RearmExpiredAsync(Func<JobRecord, OutboxMessage> resend,
        int limit, CancellationToken cancellationToken)
    {
        var now = Now;
        var expired = await database.ReadAsync(db => db.Jobs.AsNoTracking()
            .Where(j => j.Status == JobStatus.Running && j.LeaseExpiresAt < now)
            .OrderBy(j => j.LeaseExpiresAt).Take(limit).ToListAsync(cancellationToken), cancellationToken);
        var rearmed = new List<(JobRecord, OutboxMessage)>();
        foreach (var job in expired)
        {
            var message = resend(job);
            var owner = job.WorkerId;
            if (await ChangeAsync(db => db.Jobs
                    .Where(j => j.Id == job.Id && j.Status == JobStatus.Running && j.WorkerId == owner && j.LeaseExpiresAt < now)
                    .ExecuteUpdateAsync(s => s
                        .SetProperty(j => j.Status, JobStatus.Pending)
                        .SetProperty(j => j.WorkerId, (string?)null)
                        .SetProperty(j => j.LeaseExpiresAt, (DateTime?)null)
                        .SetProperty(j => j.UpdatedAt, now)
                        .SetProperty(j => j.Version, j => j.Version + 1), cancellationToken), [message], cancellationToken))
            {
                rearmed.Add((job, message));
            }
        }
        return rearmed;
    }

    /// <summary>Jobs of pipelines still running that have waited for a worker since before <paramref name="before"/>.</summary>
    public Task<List<JobRecord>> PendingOfRunningPipelinesAsync(DateTime before, CancellationToken cancellationToken) =>
        database.ReadAsync(db =>
        {
            var running = db.Pipelines.Where(p => p.Status == JobStatus.Running).Select(p => p.Id);
            return db.Jobs.AsNoTracking()
                .Where(j => j.Status == JobStatus.Pending && j.UpdatedAt < before && running.Contains(j.PipelineId))
                .ToListAsync(cancellationToken);
        }, cancellationToken);

    /// <summary>
    /// Jobs of pipelines still running that a worker ended (Done or Error) before <paramref name="before"/> without the
    /// orchestrator having handled it: the newest attempt of their step, never one whose command is
    /// <paramref name="exceptCommandType"/> (what the orchestrator runs itself).
    /// </summary>
    public Task<List<JobRecord>> UnhandledEndsAsync(DateTime before, string exceptCommandType, int limit, CancellationToken cancellationToken) =>
        database.ReadAsync(db =>
        {
            var running = db.Pipelines.Where(p => p.Status == JobStatus.Running).Select(p => p.Id);
            return db.Jobs.AsNoTracking()
                .Where(j => (j.Status == JobStatus.Done || j.Status == JobStatus.Error) && j.HandledAt == null && j.UpdatedAt < before
                    && j.CommandType != exceptCommandType && running.Contains(j.PipelineId)
                    && !db.Jobs.Any(later => later.PipelineId == j.PipelineId && later.Step == j.Step && later.Attempt > j.Attempt))
                .OrderBy(j => j.UpdatedAt).Take(limit)
                .ToListAsync(cancellationToken);
        }, cancellationToken);

    /// <summary>Runs one conditional update and, when it changed the job, saves <paramref name="outbox"/> in the same transaction.</summary>
    private Task<bool> ChangeAsync(Func<StateDbContext, Task<int>> update, IReadOnlyList<OutboxMessage> outbox, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async db =>
        {
            if (await update(db) != 1)
            {
                return false;
            }
            if (outbox.Count > 0)
            {
                db.Outbox.AddRange(outbox);
                await db.SaveChangesAsync(cancellationToken);
            }
            return true;
        }, cancellationToken);

    private DateTime Now => clock.GetUtcNow().UtcDateTime;
}
