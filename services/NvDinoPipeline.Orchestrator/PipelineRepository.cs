using Microsoft.EntityFrameworkCore;
using NvDinoPipeline.State;

namespace NvDinoPipeline.Orchestrator;

/// <summary>
/// Loads a pipeline with its jobs, lets the state machine change them and saves the result in one
/// transaction. The pipeline's version makes concurrent changes fail and retry instead of interleave.
/// </summary>
public sealed class PipelineRepository(IDbContextFactory<StateDbContext> contexts, StateDatabase database)
{
    public async Task<Transition?> CreateAsync(Func<(PipelineState State, Transition Transition)> create,
        Guid pipelineId, CancellationToken cancellationToken)
    {
        await database.EnsureCreatedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        if (await db.Pipelines.AnyAsync(p => p.Id == pipelineId, cancellationToken))
        {
            return null;
        }
        var (state, transition) = create();
        db.Pipelines.Add(state.Pipeline);
        db.Jobs.AddRange(state.Jobs);
        await db.SaveChangesAsync(cancellationToken);
        return transition;
    }

    /// <summary>Applies <paramref name="change"/>; null when the pipeline does not exist.</summary>
    public async Task<Transition?> UpdateAsync(Guid pipelineId, Func<PipelineState, Transition> change, CancellationToken cancellationToken)
    {
        await database.EnsureCreatedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var pipeline = await db.Pipelines.SingleOrDefaultAsync(p => p.Id == pipelineId, cancellationToken);
        if (pipeline is null)
        {
            return null;
        }
        var jobs = await db.Jobs.Where(j => j.PipelineId == pipelineId).ToListAsync(cancellationToken);
        var state = new PipelineState(pipeline, jobs);
        var transition = change(state);
        foreach (var job in state.Jobs.Where(j => db.Entry(j).State == EntityState.Detached))
        {
            db.Jobs.Add(job);
        }
        if (db.ChangeTracker.HasChanges())
        {
            pipeline.Version++;
            await db.SaveChangesAsync(cancellationToken);
        }
        return transition;
    }

    public async Task<IReadOnlyList<Guid>> RunningPipelinesAsync(CancellationToken cancellationToken)
    {
        await database.EnsureCreatedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.Pipelines.Where(p => p.Status == Contracts.JobStatus.Running).Select(p => p.Id).ToListAsync(cancellationToken);
    }
}
