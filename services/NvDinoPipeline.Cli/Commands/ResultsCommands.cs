using System.CommandLine;
using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.Hosting.Messaging;

namespace NvDinoPipeline.Cli.Commands;

public static class ResultsCommands
{
    public static Command Build(Option<string?> config)
    {
        var results = new Command("results", "Read a pipeline's embeddings.");
        var id = new Argument<Guid>("id") { Description = "The pipeline id." };
        var output = new Option<string?>("--out") { Description = "Write JSON lines to this file instead of standard output." };
        var follow = new Command("follow", "Consume the results queue and write one JSON line per embedding until the pipeline ends.") { id, output };
        follow.SetAction((result, cancellationToken) => Cli.RunAsync(async () =>
        {
            await using var services = CliServices.Create(result.GetValue(config));
            await using var writer = result.GetValue(output) is { } path ? new StreamWriter(path) : new StreamWriter(Console.OpenStandardOutput());
            var sink = new ResultSink(writer);
            var pipelineId = result.GetValue(id);
            if (services.Control.Transport == TransportKind.InMemory)
            {
                return await ReadStoredAsync(services, pipelineId, sink, cancellationToken);
            }
            return await FollowQueueAsync(services, pipelineId, sink, cancellationToken);
        }));
        results.Subcommands.Add(follow);
        return results;
    }

    /// <summary>
    /// RabbitMQ: a queue of our own bound to the results exchange; it lives as long as this command.
    /// Results published before it started are read from the stored embeddings once the pipeline ends.
    /// </summary>
    private static async Task<int> FollowQueueAsync(CliServices services, Guid pipelineId, ResultSink sink, CancellationToken cancellationToken)
    {
        var follower = new ResultsFollower(pipelineId, sink);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, Configuration = new ConfigurationManager() });
        builder.Configuration.AddConfiguration(services.Configuration);
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(follower);
        builder.Services.AddPipelineBus(services.Configuration,
        [
            bus => bus.AddConsumer<ResultsFollowerConsumer>().Endpoint(e => e.Temporary = true),
        ]);
        using var host = builder.Build();
        await host.StartAsync(cancellationToken);
        try
        {
            var view = await services.Reader.ReadAsync(pipelineId, cancellationToken);
            if (view is { Finished: true })
            {
                follower.Finish(view.Status);
            }
            var status = await follower.Finished.WaitAsync(cancellationToken);
            if (status == JobStatus.Done)
            {
                await ReadStoredAsync(services, pipelineId, sink, cancellationToken);
            }
            return status == JobStatus.Done ? 0 : 1;
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>Reads the embeddings the inference stage stored (binary file and its index) once it is done.</summary>
    private static async Task<int> ReadStoredAsync(CliServices services, Guid pipelineId, ResultSink sink, CancellationToken cancellationToken)
    {
        while (true)
        {
            var view = await services.Reader.ReadAsync(pipelineId, cancellationToken)
                ?? throw new CliException($"No pipeline {pipelineId} in the state database.");
            var inference = view.Steps.FirstOrDefault(s => s.Stage == PipelineStage.Inference)
                ?? throw new CliException($"Pipeline {pipelineId} has no inference stage (it was started without --test).");
            if (inference.Status == JobStatus.Done)
            {
                var embeddings = new Uri(inference.Artifacts["embeddings"]);
                var index = new Uri(inference.Artifacts["embeddings_index"]);
                await using var vectors = await services.Artifacts.OpenReadAsync(embeddings, cancellationToken);
                await using var lines = await services.Artifacts.OpenReadAsync(index, cancellationToken);
                using var reader = new StreamReader(lines);
                var dimension = (int)inference.Metrics["dimension"];
                var buffer = new byte[dimension * sizeof(float)];
                while (await reader.ReadLineAsync(cancellationToken) is { Length: > 0 } line)
                {
                    var entry = JsonSerializer.Deserialize<IndexEntry>(line, IndexEntry.Json)
                        ?? throw new CliException($"Malformed line in {index}: {line}");
                    await vectors.ReadExactlyAsync(buffer, cancellationToken);
                    var embedding = new float[dimension];
                    Buffer.BlockCopy(buffer, 0, embedding, 0, buffer.Length);
                    await sink.WriteAsync(new EmbeddingResult { Key = entry.Key, InputPath = entry.InputPath, ContentSha256 = entry.ContentSha256, Embedding = embedding });
                }
                return 0;
            }
            if (view.Finished)
            {
                Console.Error.WriteLine($"pipeline {pipelineId} ended {view.Status} without results: {view.Error}");
                return 1;
            }
            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
        }
    }

    private sealed record IndexEntry(string Key, string InputPath, string ContentSha256)
    {
        public static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
    }
}

/// <summary>Writes each result once, whatever the number of deliveries.</summary>
public sealed class ResultSink(TextWriter writer)
{
    private readonly HashSet<string> _seen = [];
    private readonly SemaphoreSlim _gate = new(1, 1);
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public int Count => _seen.Count;

    public async Task WriteAsync(EmbeddingResult result)
    {
        await _gate.WaitAsync();
        try
        {
            if (_seen.Add(result.Key))
            {
                await writer.WriteLineAsync(JsonSerializer.Serialize(result, Json));
                await writer.FlushAsync();
            }
        }
        finally
        {
            _gate.Release();
        }
    }
}

public sealed class ResultsFollower(Guid pipelineId, ResultSink sink)
{
    private readonly TaskCompletionSource<JobStatus> _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Guid PipelineId => pipelineId;

    public ResultSink Sink => sink;

    public Task<JobStatus> Finished => _finished.Task;

    public void Finish(JobStatus status) => _finished.TrySetResult(status);
}

public sealed class ResultsFollowerConsumer(ResultsFollower follower) :
    IConsumer<EmbeddingsBatch>, IConsumer<PipelineCompleted>, IConsumer<PipelineFailed>, IConsumer<PipelineCanceled>
{
    public async Task Consume(ConsumeContext<EmbeddingsBatch> context)
    {
        if (context.Message.PipelineId != follower.PipelineId)
        {
            return;
        }
        foreach (var item in context.Message.Items)
        {
            await follower.Sink.WriteAsync(item);
        }
    }

    public Task Consume(ConsumeContext<PipelineCompleted> context) => End(context.Message.PipelineId, JobStatus.Done);

    public Task Consume(ConsumeContext<PipelineFailed> context) => End(context.Message.PipelineId, JobStatus.Error);

    public Task Consume(ConsumeContext<PipelineCanceled> context) => End(context.Message.PipelineId, JobStatus.Canceled);

    private Task End(Guid pipelineId, JobStatus status)
    {
        if (pipelineId == follower.PipelineId)
        {
            follower.Finish(status);
        }
        return Task.CompletedTask;
    }
}
