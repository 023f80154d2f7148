using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using NvDinoPipeline.Contracts;

namespace NvDinoPipeline.State;

/// <summary>
/// The job operations stage workers perform. Claims are leases: a worker that dies stops renewing
/// and another worker may claim the job again; a job that is Done is never run again.
/// </summary>
public sealed class JobStore(IDbContextFactory<StateDbContext> contexts, StateDatabase database, TimeProvider clock)
{
    public async Task<JobRecord?> FindAsync(Guid jobId, CancellationToken cancellationToken)
    {
        await database.EnsureCreatedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.Jobs.AsNoTracking().SingleOrDefaultAsync(j => j.Id == jobId, cancellationToken);
    }

    /// <summary>Records a job that arrived without the orchestrator (a stage used on its own).</summary>
    public async Task AddIfMissingAsync(JobRecord job, CancellationToken cancellationToken)
    {
        await database.EnsureCreatedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        if (await db.Jobs.AnyAsync(j => j.Id == job.Id, cancellationToken))
        {
            return;
        }
        db.Jobs.Add(job);
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException)
        {
            // Two deliveries of the same command raced; the other one recorded the job.
            if (!await ExistsAsync(job.Id, cancellationToken))
            {
                throw;
            }
        }
    }

    private async Task<bool> ExistsAsync(Guid jobId, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.Jobs.AnyAsync(j => j.Id == jobId, cancellationToken);
    }

    /// <summary>Claims a pending job, or one whose previous worker's lease ran out.</summary>
    public async Task<bool> TryClaimAsync(Guid jobId, string workerId, TimeSpan lease, CancellationToken cancellationToken)
    {
        var now = Now;
        var expires = now + lease;
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var claimed = await db.Jobs
            .Where(j => j.Id == jobId
                && (j.Status == JobStatus.Pending || (j.Status == JobStatus.Running && j.LeaseExpiresAt < now)))
            .ExecuteUpdateAsync(s => s
                .SetProperty(j => j.Status, JobStatus.Running)
                .SetProperty(j => j.WorkerId, workerId)
                .SetProperty(j => j.LeaseExpiresAt, expires)
                .SetProperty(j => j.Claims, j => j.Claims + 1)
                .SetProperty(j => j.StartedAt, j => j.StartedAt ?? now)
                .SetProperty(j => j.UpdatedAt, now)
                .SetProperty(j => j.Version, j => j.Version + 1), cancellationToken);
        return claimed == 1;
    }

    /// <summary>Extends the lease and returns the job's status, so a worker notices a cancel.</summary>
    public async Task<JobStatus?> RenewLeaseAsync(Guid jobId, string workerId, TimeSpan lease, CancellationToken cancellationToken)
    {
        var now = Now;
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        await db.Jobs
            .Where(j => j.Id == jobId && j.WorkerId == workerId && j.Status == JobStatus.Running)
            .ExecuteUpdateAsync(s => s.SetProperty(j => j.LeaseExpiresAt, now + lease), cancellationToken);
        return await db.Jobs.Where(j => j.Id == jobId).Select(j => (JobStatus?)j.Status).SingleOrDefaultAsync(cancellationToken);
    }

    public async Task ReportProgressAsync(Guid jobId, double? fraction, string? message,
        IReadOnlyDictionary<string, double>? metrics, CancellationToken cancellationToken)
    {
        var now = Now;
        var metricsJson = metrics is null ? null : JsonSerializer.Serialize(metrics);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        await db.Jobs
            .Where(j => j.Id == jobId && j.Status == JobStatus.Running)
            .ExecuteUpdateAsync(s => s
                .SetProperty(j => j.Progress, j => fraction ?? j.Progress)
                .SetProperty(j => j.ProgressMessage, j => message ?? j.ProgressMessage)
                .SetProperty(j => j.Metrics, j => metricsJson ?? j.Metrics)
                .SetProperty(j => j.UpdatedAt, now), cancellationToken);
    }

    /// <summary>Marks the job Done with its completion event; false when this worker no longer owns it.</summary>
    public async Task<bool> CompleteAsync(Guid jobId, string workerId, object completion,
        IReadOnlyDictionary<string, Uri> artifacts, IReadOnlyDictionary<string, double> metrics,
        CancellationToken cancellationToken)
    {
        var now = Now;
        var type = completion.GetType().FullName!;
        var completionJson = JsonSerializer.Serialize(completion, completion.GetType());
        var artifactsJson = JsonSerializer.Serialize(artifacts.ToDictionary(a => a.Key, a => a.Value.ToString()));
        var metricsJson = JsonSerializer.Serialize(metrics);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var updated = await db.Jobs
            .Where(j => j.Id == jobId && j.WorkerId == workerId && j.Status == JobStatus.Running)
            .ExecuteUpdateAsync(s => s
                .SetProperty(j => j.Status, JobStatus.Done)
                .SetProperty(j => j.CompletionType, type)
                .SetProperty(j => j.Completion, completionJson)
                .SetProperty(j => j.Artifacts, artifactsJson)
                .SetProperty(j => j.Metrics, metricsJson)
                .SetProperty(j => j.Progress, 1.0)
                .SetProperty(j => j.LeaseExpiresAt, (DateTime?)null)
                .SetProperty(j => j.CompletedAt, now)
                .SetProperty(j => j.UpdatedAt, now)
                .SetProperty(j => j.Version, j => j.Version + 1), cancellationToken);
        return updated == 1;
    }

    public Task<bool> FailAsync(Guid jobId, string reason, CancellationToken cancellationToken) =>
        FinishAsync(jobId, JobStatus.Error, reason, cancellationToken);

    public Task<bool> MarkCanceledAsync(Guid jobId, CancellationToken cancellationToken) =>
        FinishAsync(jobId, JobStatus.Canceled, null, cancellationToken);

    private async Task<bool> FinishAsync(Guid jobId, JobStatus status, string? reason, CancellationToken cancellationToken)
    {
        var now = Now;
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var updated = await db.Jobs
            .Where(j => j.Id == jobId && (j.Status == JobStatus.Pending || j.Status == JobStatus.Running))
            .ExecuteUpdateAsync(s => s
                .SetProperty(j => j.Status, status)
                .SetProperty(j => j.ErrorReason, j => reason ?? j.ErrorReason)
                .SetProperty(j => j.LeaseExpiresAt, (DateTime?)null)
                .SetProperty(j => j.CompletedAt, now)
                .SetProperty(j => j.UpdatedAt, now)
                .SetProperty(j => j.Version, j => j.Version + 1), cancellationToken);
        return updated == 1;
    }

    /// <summary>Hands a job back (worker shutting down, transient fault): another worker may take it.</summary>
    public async Task ReleaseAsync(Guid jobId, string workerId, CancellationToken cancellationToken)
    {
        var now = Now;
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        await db.Jobs
            .Where(j => j.Id == jobId && j.WorkerId == workerId && j.Status == JobStatus.Running)
            .ExecuteUpdateAsync(s => s
                .SetProperty(j => j.Status, JobStatus.Pending)
                .SetProperty(j => j.WorkerId, (string?)null)
                .SetProperty(j => j.LeaseExpiresAt, (DateTime?)null)
                .SetProperty(j => j.UpdatedAt, now)
                .SetProperty(j => j.Version, j => j.Version + 1), cancellationToken);
    }

    public async Task HeartbeatWorkerAsync(string workerId, string stages, string hostName, CancellationToken cancellationToken)
    {
        await database.EnsureCreatedAsync(cancellationToken);
        var now = Now;
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var updated = await db.Workers.Where(w => w.Id == workerId)
            .ExecuteUpdateAsync(s => s.SetProperty(w => w.LastSeenAt, now), cancellationToken);
        if (updated == 0)
        {
            db.Workers.Add(new WorkerRecord { Id = workerId, Stages = stages, HostName = hostName, StartedAt = now, LastSeenAt = now });
            await db.SaveChangesAsync(cancellationToken);
        }
    }

    public async Task RemoveWorkerAsync(string workerId, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        await db.Workers.Where(w => w.Id == workerId).ExecuteDeleteAsync(cancellationToken);
    }

    private DateTime Now => clock.GetUtcNow().UtcDateTime;
}
