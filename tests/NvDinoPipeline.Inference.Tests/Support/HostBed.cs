using System.Collections.Concurrent;
using System.Text.Json;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.Orchestrator;
using NvDinoPipeline.Specs;
using NvDinoPipeline.State;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Inference.Tests.Support;

/// <summary>What a test host saw published.</summary>
public sealed class Recorded
{
    public ConcurrentQueue<InferenceCompleted> Completions { get; } = new();

    public ConcurrentQueue<EmbeddingsBatch> Batches { get; } = new();
}

public sealed class RecordingConsumer(Recorded recorded) : IConsumer<InferenceCompleted>, IConsumer<EmbeddingsBatch>
{
    public Task Consume(ConsumeContext<InferenceCompleted> context)
    {
        recorded.Completions.Enqueue(context.Message);
        return Task.CompletedTask;
    }

    public Task Consume(ConsumeContext<EmbeddingsBatch> context)
    {
        recorded.Batches.Enqueue(context.Message);
        return Task.CompletedTask;
    }
}

/// <summary>The inference worker hosted as the services host it (embedded default: in-memory transport, SQLite, file store).</summary>
public sealed class HostBed : IAsyncDisposable
{
    private HostBed(TempDirectory folder, IHost host, Dictionary<string, string?> settings)
    {
        Folder = folder;
        Host = host;
        Settings = settings;
    }

    public TempDirectory Folder { get; }

    public IHost Host { get; }

    public Dictionary<string, string?> Settings { get; }

    public Recorded Recorded => Host.Services.GetRequiredService<Recorded>();

    public IArtifactStore Store => Host.Services.GetRequiredService<IArtifactStore>();

    public Uri Root => Store.Root;

    public static async Task<HostBed> StartAsync()
    {
        var folder = new TempDirectory("nvdino-inference-host");
        var settings = EmbeddedHosts.Settings(folder.Path, new Dictionary<string, string?> { ["Inference:PreprocessParallelism"] = "2" });
        var host = EmbeddedHosts.Build(settings, pipeline => pipeline
            .AddInferenceWorker()
            .AddBus(bus => bus.AddConsumer<RecordingConsumer>()), services => services.AddSingleton<Recorded>());
        await host.StartAsync();
        return new HostBed(folder, host, settings);
    }

    /// <summary>Writes these settings as a <c>--config</c> file for the command line.</summary>
    public string WriteConfigFile()
    {
        var path = Folder.Combine("nvdino.json");
        var tree = new Dictionary<string, Dictionary<string, string?>>();
        foreach (var (key, value) in Settings)
        {
            var parts = key.Split(':');
            if (!tree.TryGetValue(parts[0], out var section))
            {
                tree[parts[0]] = section = [];
            }
            section[parts[1]] = value;
        }
        File.WriteAllText(path, JsonSerializer.Serialize(tree));
        return path;
    }

    public async Task AddAsync(params object[] records)
    {
        await Host.Services.GetRequiredService<StateDatabase>().EnsureCreatedAsync(CancellationToken.None);
        var contexts = Host.Services.GetRequiredService<IDbContextFactory<StateDbContext>>();
        await using var db = await contexts.CreateDbContextAsync();
        db.AddRange(records);
        await db.SaveChangesAsync();
    }

    public async Task<JobRecord> WaitForJobAsync(Guid jobId, Func<JobRecord, bool> condition)
    {
        var contexts = Host.Services.GetRequiredService<IDbContextFactory<StateDbContext>>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        JobRecord? job = null;
        while (DateTime.UtcNow < deadline)
        {
            await using (var db = await contexts.CreateDbContextAsync())
            {
                job = await db.Jobs.AsNoTracking().SingleOrDefaultAsync(j => j.Id == jobId);
            }
            if (job is not null && condition(job))
            {
                return job;
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"Job {jobId} did not get there; last seen {job?.Status} {job?.ErrorReason}");
    }

    public async Task SetPipelineStatusAsync(Guid pipelineId, JobStatus status)
    {
        var contexts = Host.Services.GetRequiredService<IDbContextFactory<StateDbContext>>();
        await using var db = await contexts.CreateDbContextAsync();
        await db.Pipelines.Where(p => p.Id == pipelineId).ExecuteUpdateAsync(s => s.SetProperty(p => p.Status, status));
    }

    public static string Spec(params string[] overrides) => SpecLoader.CreateDefault().Resolve([], overrides).ToJson();

    /// <summary>A pipeline whose plan ends with inference, as the orchestrator records it.</summary>
    public static PipelineRecord Pipeline(Guid id, string spec) => new()
    {
        Id = id,
        Status = JobStatus.Running,
        Plan = PipelineStep.Serialize(PipelineStateMachine.PlanFor(hasTestData: true, distill: false)),
        Spec = spec,
        TrainDataUri = "file:///data/train.tar.gz",
        TestDataUri = "file:///data/test.tar.gz",
        CreatedAt = DateTime.UtcNow,
        UpdatedAt = DateTime.UtcNow,
    };

    public static JobRecord Job(Guid pipelineId, string step, PipelineStage stage, string spec, object command, JobStatus status = JobStatus.Pending,
        object? completion = null) => new()
    {
        Id = command is IStageMessage message ? message.JobId : NewId.NextGuid(),
        PipelineId = pipelineId,
        Step = step,
        Stage = stage,
        Status = status,
        Spec = spec,
        CommandType = command.GetType().FullName!,
        Command = JsonSerializer.Serialize(command, command.GetType()),
        CompletionType = completion?.GetType().FullName,
        Completion = completion is null ? null : JsonSerializer.Serialize(completion, completion.GetType()),
        CreatedAt = DateTime.UtcNow,
        UpdatedAt = DateTime.UtcNow,
        CompletedAt = status == JobStatus.Done ? DateTime.UtcNow : null,
    };

    public async ValueTask DisposeAsync()
    {
        await Host.StopAsync();
        Host.Dispose();
        Folder.Dispose();
    }
}
