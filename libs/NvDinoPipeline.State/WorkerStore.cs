using Microsoft.EntityFrameworkCore;

namespace NvDinoPipeline.State;

/// <summary>The live worker processes, refreshed by their heartbeats, so status can say when a stage has no worker.</summary>
public sealed class WorkerStore(StateDatabase database, TimeProvider clock)
{
    /// <summary>A worker that has not beaten for this long is taken as gone.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(45);

    /// <param name="endpoint">Where the process's HTTP API answers, if it serves one (recorded with each beat that knows it).</param>
    /// <param name="gpus">The CUDA devices the process can train on (recorded with the first beat).</param>
    public Task HeartbeatAsync(string workerId, string stages, string hostName, CancellationToken cancellationToken, string? endpoint = null, int gpus = 0)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        return database.ReadAsync(async db =>
        {
            // The API's address may be known only after the first beats (the server binds after this service starts):
            // every beat that has it records it, or the CLI would never find the host's API.
            var beating = db.Workers.Where(w => w.Id == workerId);
            var updated = endpoint is null
                ? await beating.ExecuteUpdateAsync(s => s.SetProperty(w => w.LastSeenAt, now), cancellationToken)
                : await beating.ExecuteUpdateAsync(s => s.SetProperty(w => w.LastSeenAt, now).SetProperty(w => w.Endpoint, endpoint), cancellationToken);
            if (updated == 0)
            {
                db.Workers.Add(new WorkerRecord { Id = workerId, Stages = stages, HostName = hostName, Endpoint = endpoint, Gpus = gpus, StartedAt = now, LastSeenAt = now });
                await db.SaveChangesAsync(cancellationToken);
            }
            return updated;
        }, cancellationToken);
    }

    public Task RemoveAsync(string workerId, CancellationToken cancellationToken) =>
        database.ReadAsync(db => db.Workers.Where(w => w.Id == workerId).ExecuteDeleteAsync(cancellationToken), cancellationToken);

    /// <summary>The HTTP API of a live process serving <paramref name="role"/> (the orchestrator), newest first; null when none answers.</summary>
    public async Task<string?> LiveEndpointAsync(string role, CancellationToken cancellationToken)
    {
        var since = clock.GetUtcNow().UtcDateTime - Timeout;
        var live = await database.ReadAsync(db => db.Workers.AsNoTracking().Where(w => w.LastSeenAt > since && w.Endpoint != null)
            .OrderByDescending(w => w.StartedAt).Select(w => new { w.Stages, w.Endpoint }).ToListAsync(cancellationToken), cancellationToken);
        return live.FirstOrDefault(w => w.Stages.Split(',').Contains(role, StringComparer.OrdinalIgnoreCase))?.Endpoint;
    }

    /// <summary>The stages (and roles such as <c>Orchestrator</c>) some live process serves.</summary>
    public async Task<IReadOnlySet<string>> LiveStagesAsync(CancellationToken cancellationToken)
    {
        var since = clock.GetUtcNow().UtcDateTime - Timeout;
        var stages = await database.ReadAsync(db => db.Workers.AsNoTracking().Where(w => w.LastSeenAt > since).Select(w => w.Stages)
            .ToListAsync(cancellationToken), cancellationToken);
        return stages.SelectMany(s => s.Split(',')).ToHashSet(StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>
    /// The GPUs of each live process that serves <paramref name="stage"/>, one entry per process (0 for a CPU host); empty
    /// when none serves it.
    /// </summary>
    public async Task<IReadOnlyList<int>> LiveGpusAsync(string stage, CancellationToken cancellationToken)
    {
        var since = clock.GetUtcNow().UtcDateTime - Timeout;
        var live = await database.ReadAsync(db => db.Workers.AsNoTracking().Where(w => w.LastSeenAt > since).Select(w => new { w.Stages, w.Gpus })
            .ToListAsync(cancellationToken), cancellationToken);
        return live.Where(w => w.Stages.Split(',').Contains(stage, StringComparer.OrdinalIgnoreCase)).Select(w => w.Gpus).ToList();
    }
}
