using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Specs;
using NvDinoPipeline.State;

namespace NvDinoPipeline.Inference.Online;

/// <summary>A pipeline's model, held loaded while a request uses it.</summary>
public sealed class ModelLease(EmbeddingModel model, Guid deployJobId, Action release) : IDisposable
{
    private int _released;

    public EmbeddingModel Model => model;

    /// <summary>The engine generation (or export) job whose artifact this is.</summary>
    public Guid DeployJobId => deployJobId;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            release();
        }
    }
}

/// <summary>
/// The deployed models the on-line path serves, one per pipeline, loaded on first use and kept for the next
/// requests. A pipeline's model is its latest finished engine generation job (else its export). A deploy
/// newer than the loaded one replaces it; past <see cref="InferenceOptions.OnlineModels"/> the least recently
/// used model is unloaded once no request holds it.
/// </summary>
public sealed class OnlineModels(
    PipelineStore pipelines,
    DeployedModelLoader loader,
    IOptions<InferenceOptions> options,
    IOptions<WorkerOptions> workers,
    ILogger<OnlineModels> logger) : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<Guid, Entry> _entries = [];
    private long _clock;

    /// <exception cref="OnlineRequestException">The pipeline does not exist or has no deployed model yet.</exception>
    public async Task<ModelLease> AcquireAsync(Guid pipelineId, CancellationToken cancellationToken)
    {
        var deployed = await FindDeployedAsync(pipelineId, cancellationToken);
        Entry entry;
        lock (_lock)
        {
            if (!_entries.TryGetValue(pipelineId, out entry!) || entry.DeployJobId != deployed.JobId || entry.Loading.IsFaulted)
            {
                if (entry is not null)
                {
                    Retire(entry);
                }
                var scratch = Path.Combine(workers.Value.ScratchDirectory, "online", pipelineId.ToString(), deployed.JobId.ToString());
                entry = new Entry(pipelineId, deployed.JobId,
                    loader.LoadAsync(deployed.Model, deployed.ExecutionProvider, scratch, CancellationToken.None));
                _entries[pipelineId] = entry;
                logger.LogInformation("Loading the model of pipeline {PipelineId} (deploy job {JobId}) for on-line requests", pipelineId, deployed.JobId);
            }
            entry.Users++;
            entry.LastUsed = ++_clock;
            EvictBeyondCapacity();
        }
        try
        {
            var model = await entry.Loading.WaitAsync(cancellationToken);
            return new ModelLease(model, entry.DeployJobId, () => Release(entry));
        }
        catch
        {
            Release(entry);
            throw;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var entry in _entries.Values.ToList())
            {
                Retire(entry);
            }
        }
    }

    private async Task<Deployed> FindDeployedAsync(Guid pipelineId, CancellationToken cancellationToken)
    {
        if (!await pipelines.KnownAsync(pipelineId, cancellationToken))
        {
            throw new OnlineRequestException($"Pipeline {pipelineId} does not exist.");
        }
        var jobs = await pipelines.FinishedJobsAsync(pipelineId, [PipelineStage.EngineGeneration, PipelineStage.Export], cancellationToken);
        var job = jobs.OrderByDescending(j => j.Stage == PipelineStage.EngineGeneration).ThenByDescending(j => j.CompletedAt).FirstOrDefault();
        if (job?.Completion is null)
        {
            throw new OnlineRequestException($"Pipeline {pipelineId} has no deployed model yet: neither its engine generation nor its export has finished.");
        }
        DeployedModelReference model;
        if (job.Stage == PipelineStage.EngineGeneration)
        {
            var engine = JsonSerializer.Deserialize<EngineGenerated>(job.Completion)!;
            model = new DeployedModelReference(engine.Target, engine.ArtifactUri, engine.ModelMetadataUri);
        }
        else
        {
            var export = JsonSerializer.Deserialize<ModelExported>(job.Completion)!;
            model = new DeployedModelReference(DeployedModelReference.OnnxRuntimeTarget, export.OnnxModelUri, export.MetadataUri);
        }
        var provider = ExecutionProviders.Auto;
        try
        {
            provider = InferenceSpec.From(ResolvedSpec.FromJson(job.Spec)).ExecutionProvider;
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            logger.LogWarning(exception, "The spec of job {JobId} cannot be read; the on-line path picks the execution provider itself", job.Id);
        }
        return new Deployed(job.Id, model, provider);
    }

    private void Release(Entry entry)
    {
        lock (_lock)
        {
            entry.Users--;
            if (entry.Retired && entry.Users == 0)
            {
                DisposeWhenLoaded(entry);
            }
        }
    }

    private void EvictBeyondCapacity()
    {
        while (_entries.Count > options.Value.OnlineModels)
        {
            var idle = _entries.Values.Where(e => e.Users == 0).OrderBy(e => e.LastUsed).FirstOrDefault();
            if (idle is null)
            {
                return;
            }
            Retire(idle);
        }
    }

    /// <summary>Removes the entry; its model is disposed once the last request using it is done.</summary>
    private void Retire(Entry entry)
    {
        if (_entries.TryGetValue(entry.PipelineId, out var current) && ReferenceEquals(current, entry))
        {
            _entries.Remove(entry.PipelineId);
        }
        entry.Retired = true;
        if (entry.Users == 0)
        {
            DisposeWhenLoaded(entry);
        }
    }

    private void DisposeWhenLoaded(Entry entry) =>
        entry.Loading.ContinueWith(loading =>
        {
            if (loading.IsCompletedSuccessfully)
            {
                loading.Result.Dispose();
                logger.LogInformation("Unloaded the on-line model of pipeline {PipelineId} (deploy job {JobId})", entry.PipelineId, entry.DeployJobId);
            }
        }, TaskScheduler.Default);

    private sealed record Deployed(Guid JobId, DeployedModelReference Model, string ExecutionProvider);

    private sealed class Entry(Guid pipelineId, Guid deployJobId, Task<EmbeddingModel> loading)
    {
        public Guid PipelineId => pipelineId;

        public Guid DeployJobId => deployJobId;

        public Task<EmbeddingModel> Loading => loading;

        public int Users { get; set; }

        public long LastUsed { get; set; }

        public bool Retired { get; set; }
    }
}

/// <summary>An on-line request that cannot be served as a whole; the requester receives it as a fault with this message.</summary>
public sealed class OnlineRequestException(string message, Exception? inner = null) : Exception(message, inner);
