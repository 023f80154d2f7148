using Microsoft.EntityFrameworkCore;

namespace NvDinoPipeline.State;

/// <summary>The log lines of jobs, written by their workers and read by the API, in the state database every process shares.</summary>
public sealed class JobLogStore(StateDatabase database)
{
    /// <summary>At most this many lines are kept per job; a job that logs more keeps its first lines and says how many it dropped.</summary>
    public const int MaxLinesPerJob = 20_000;

    public Task AddAsync(IReadOnlyList<JobLogRecord> lines, CancellationToken cancellationToken) =>
        lines.Count == 0
            ? Task.CompletedTask
            : database.ReadAsync(async db =>
            {
                db.JobLogs.AddRange(lines);
                return await db.SaveChangesAsync(cancellationToken);
            }, cancellationToken);

    /// <summary>Up to <paramref name="limit"/> lines of the job after the line <paramref name="after"/> (0: from the start), oldest first.</summary>
    public Task<List<JobLogRecord>> ReadAsync(Guid jobId, long after, int limit, CancellationToken cancellationToken) =>
        database.ReadAsync(db => db.JobLogs.AsNoTracking().Where(l => l.JobId == jobId && l.Id > after)
            .OrderBy(l => l.Id).Take(limit).ToListAsync(cancellationToken), cancellationToken);

    /// <summary>How many lines each of the jobs has now.</summary>
    public Task<Dictionary<Guid, int>> CountAsync(IReadOnlyCollection<Guid> jobIds, CancellationToken cancellationToken) =>
        database.ReadAsync(db => db.JobLogs.Where(l => jobIds.Contains(l.JobId)).GroupBy(l => l.JobId)
            .Select(g => new { g.Key, Count = g.Count() }).ToDictionaryAsync(g => g.Key, g => g.Count, cancellationToken), cancellationToken);
}
