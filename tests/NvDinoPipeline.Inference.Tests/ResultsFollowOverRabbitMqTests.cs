using System.Text.Json;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using NvDinoPipeline.Cli;
using NvDinoPipeline.Cli.Commands;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Inference.Output;
using NvDinoPipeline.Inference.Pipeline;
using NvDinoPipeline.Inference.Tests.Support;
using NvDinoPipeline.Orchestrator;
using NvDinoPipeline.State;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Inference.Tests;

[CollectionDefinition(TestCollections.RabbitMq)]
public sealed class RabbitMqCollection : ICollectionFixture<RabbitMqFixture>;

[Collection(TestCollections.RabbitMq)]
public sealed class ResultsFollowOverRabbitMqTests(RabbitMqFixture rabbit) : IDisposable
{
    private const int Dimension = 4;
    private readonly TempDirectory _folder = new("nvdino-results-follow");

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task Follow_writes_each_result_once_from_the_queue_and_then_what_was_published_before_it_started()
    {
        var pipelineId = NewId.NextGuid();
        var jobId = NewId.NextGuid();
        var results = Enumerable.Range(0, 5).Select(i => new EmbeddingResult
        {
            Key = EmbeddingKeys.For(jobId, i),
            InputPath = $"test/{i}.png",
            ContentSha256 = new string((char)('a' + i), 64),
            Embedding = [i, i + 0.5f, -i, 1f / (i + 3)],
        }).ToList();
        var configFile = await StoreFinishedInferenceAsync(pipelineId, jobId, results);

        var output = new StringWriter();
        var sink = new ResultSink(output);
        await using var services = CliServices.Create(configFile);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var follow = ResultsCommands.FollowAsync(services, pipelineId, sink, timeout.Token);
        await using var publisher = await PublisherAsync();
        var bus = publisher.GetRequiredService<IBus>();

        // Until the follower's own queue is bound, publishes go nowhere: repeat the first batch until it shows up.
        while (sink.Count < 2)
        {
            Assert.False(follow.IsCompleted, "follow ended early");
            await bus.Publish(Batch(pipelineId, jobId, 0, results[0], results[1]), timeout.Token);
            await Task.Delay(200, timeout.Token);
        }
        await bus.Publish(Batch(pipelineId, jobId, 1, results[1], results[2]), timeout.Token);
        await bus.Publish(Batch(NewId.NextGuid(), NewId.NextGuid(), 0, results[3] with { Key = "another pipeline's" }), timeout.Token);
        await WaitUntilAsync(() => sink.Count == 3, timeout.Token);
        await SetPipelineDoneAsync(services, pipelineId);
        await bus.Publish(new PipelineCompleted
        {
            PipelineId = pipelineId,
            DeployArtifactUri = new Uri("file:///deploy/model.onnx"),
            Results = new Dictionary<string, Uri>(),
            CompletedAt = DateTimeOffset.UtcNow,
        }, timeout.Token);

        Assert.Equal(0, await follow);
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonSerializer.Deserialize<EmbeddingResult>(l, EmbeddingFiles.Json)!).ToList();
        Assert.Equal(results.Select(r => r.Key).Order(), lines.Select(l => l.Key).Order());
        Assert.All(lines, line => Assert.Equal(results.Single(r => r.Key == line.Key).Embedding, line.Embedding));
    }

    private async Task<string> StoreFinishedInferenceAsync(Guid pipelineId, Guid jobId, List<EmbeddingResult> results)
    {
        var outputFolder = _folder.Combine("artifacts", pipelineId.ToString(), jobId.ToString());
        await using (var writer = new EmbeddingOutputWriter(outputFolder, jobId, Dimension, writeJsonl: false))
        {
            var items = results.Select((r, i) => new EmbeddedItem(i, r.InputPath, r.ContentSha256)).ToList();
            await writer.WriteAsync(new EmbeddedBatch(0, items, [], results.SelectMany(r => r.Embedding).ToArray(), Dimension), CancellationToken.None);
            await writer.CompleteAsync(CancellationToken.None);
        }
        var configFile = _folder.Combine("nvdino.json");
        File.WriteAllText(configFile, JsonSerializer.Serialize(new
        {
            Messaging = new { Transport = "RabbitMq", RabbitMq = rabbit.Uri.ToString() },
            State = new { Provider = "Sqlite", ConnectionString = $"Data Source={_folder.Combine("state.db")}" },
            ArtifactStore = new { Root = new Uri(_folder.Combine("artifacts") + "/").AbsoluteUri },
        }));
        await using var services = CliServices.Create(configFile);
        await services.Provider.GetRequiredService<StateDatabase>().EnsureCreatedAsync(CancellationToken.None);
        var contexts = services.Provider.GetRequiredService<IDbContextFactory<StateDbContext>>();
        await using var db = await contexts.CreateDbContextAsync();
        var spec = HostBed.Spec();
        var command = new RunInference
        {
            PipelineId = pipelineId,
            JobId = jobId,
            Spec = spec,
            OutputUri = TestImages.FileUri(outputFolder + "/"),
            DeployArtifactUri = new Uri("file:///deploy/model.onnx"),
            Target = DeployedModelReference.OnnxRuntimeTarget,
            ModelMetadataUri = new Uri("file:///deploy/model.json"),
            DatasetUri = new Uri("file:///test/shards/"),
            ManifestUri = new Uri("file:///test/manifest.jsonl"),
        };
        var job = HostBed.Job(pipelineId, PipelineStep.Inference, PipelineStage.Inference, spec, command, JobStatus.Done);
        job.Artifacts = JsonSerializer.Serialize(new Dictionary<string, string>
        {
            [EmbeddingFiles.EmbeddingsArtifact] = TestImages.FileUri(Path.Combine(outputFolder, EmbeddingFiles.Embeddings)).ToString(),
            [EmbeddingFiles.IndexArtifact] = TestImages.FileUri(Path.Combine(outputFolder, EmbeddingFiles.Index)).ToString(),
        });
        job.Metrics = JsonSerializer.Serialize(new Dictionary<string, double> { [EmbeddingFiles.DimensionMetric] = Dimension });
        db.AddRange(HostBed.Pipeline(pipelineId, spec), job);
        await db.SaveChangesAsync();
        return configFile;
    }

    private static async Task SetPipelineDoneAsync(CliServices services, Guid pipelineId)
    {
        var contexts = services.Provider.GetRequiredService<IDbContextFactory<StateDbContext>>();
        await using var db = await contexts.CreateDbContextAsync();
        await db.Pipelines.Where(p => p.Id == pipelineId).ExecuteUpdateAsync(s => s.SetProperty(p => p.Status, JobStatus.Done));
    }

    private async Task<ServiceProvider> PublisherAsync()
    {
        var services = new ServiceCollection();
        services.AddMassTransit(bus => bus.UsingRabbitMq((_, cfg) => cfg.Host(rabbit.Uri)));
        var provider = services.BuildServiceProvider();
        await provider.GetRequiredService<IBusControl>().StartAsync();
        return provider;
    }

    private static EmbeddingsBatch Batch(Guid pipelineId, Guid jobId, int index, params EmbeddingResult[] items) =>
        new() { PipelineId = pipelineId, JobId = jobId, BatchIndex = index, Items = items };

    private static async Task WaitUntilAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        while (!condition())
        {
            await Task.Delay(50, cancellationToken);
        }
    }
}
