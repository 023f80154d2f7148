using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Inference.Output;

namespace NvDinoPipeline.Cli.Commands;

public static class ResultsCommands
{
    public static Command Build(Option<string?> config)
    {
        var results = new Command("results", "Read a pipeline's embeddings.");
        var id = new Argument<Guid>("id") { Description = "The pipeline id." };
        var output = new Option<string?>("--out") { Description = "Write to this file instead of standard output." };
        var format = new Option<ResultFormat>("--format")
        {
            Description = "jsonl: one {key, input_path, content_sha256, embedding} object per line; csv: TAO's input_path,features.",
            DefaultValueFactory = _ => ResultFormat.Jsonl,
        };
        var follow = new Command("follow", "Consume the results queue and write each embedding once until the pipeline ends.") { id, output, format };
        follow.SetAction((result, cancellationToken) => Cli.RunAsync(async () =>
        {
            await using var services = CliServices.Create(result.GetValue(config));
            await using var writer = result.GetValue(output) is { } path ? new StreamWriter(path) : new StreamWriter(Console.OpenStandardOutput());
            var sink = new ResultSink(writer, result.GetValue(format));
            return await FollowAsync(services, result.GetValue(id), sink, cancellationToken);
        }));
        results.Subcommands.Add(follow);
        return results;
    }

    /// <summary>
    /// Writes every result of the pipeline's inference stage to <paramref name="sink"/> once: on RabbitMQ as
    /// the batches arrive (and then whatever was published before this started), on the in-memory transport
    /// from the stored embeddings once inference is done. 0 when the pipeline ended Done, 1 otherwise.
    /// </summary>
    public static Task<int> FollowAsync(CliServices services, Guid pipelineId, ResultSink sink, CancellationToken cancellationToken) =>
        services.Control.Transport == TransportKind.InMemory
            ? ReadStoredAsync(services, pipelineId, sink, cancellationToken)
            : FollowQueueAsync(services, pipelineId, sink, cancellationToken);

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
    public static async Task<int> ReadStoredAsync(CliServices services, Guid pipelineId, ResultSink sink, CancellationToken cancellationToken)
    {
        while (true)
        {
            var view = await services.Reader.ReadAsync(pipelineId, cancellationToken)
                ?? throw new CliException($"No pipeline {pipelineId} in the state database.");
            var inference = view.Steps.FirstOrDefault(s => s.Stage == PipelineStage.Inference)
                ?? throw new CliException($"Pipeline {pipelineId} has no inference stage (it was started without --test).");
            if (inference.Status == JobStatus.Done)
            {
                if (!inference.Artifacts.TryGetValue(EmbeddingFiles.EmbeddingsArtifact, out var embeddings)
                    || !inference.Artifacts.TryGetValue(EmbeddingFiles.IndexArtifact, out var index)
                    || !inference.Metrics.TryGetValue(EmbeddingFiles.DimensionMetric, out var dimension))
                {
                    throw new CliException($"The inference job {inference.JobId} of pipeline {pipelineId} records no " +
                        $"'{EmbeddingFiles.EmbeddingsArtifact}', '{EmbeddingFiles.IndexArtifact}' or '{EmbeddingFiles.DimensionMetric}'.");
                }
                await using var vectors = await services.Artifacts.OpenReadAsync(new Uri(embeddings), cancellationToken);
                await using var lines = await services.Artifacts.OpenReadAsync(new Uri(index), cancellationToken);
                try
                {
                    await foreach (var result in EmbeddingFiles.ReadAsync(vectors, lines, (int)dimension, cancellationToken))
                    {
                        await sink.WriteAsync(result);
                    }
                }
                catch (InvalidDataException exception)
                {
                    throw new CliException($"{embeddings} and its index {index} do not match: {exception.Message}");
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

}

public enum ResultFormat
{
    Jsonl,
    Csv,
}

/// <summary>Writes each result once, whatever the number of deliveries: results are told apart by their key.</summary>
public sealed class ResultSink(TextWriter writer, ResultFormat format = ResultFormat.Jsonl)
{
    private readonly HashSet<string> _seen = [];
    private readonly SemaphoreSlim _gate = new(1, 1);
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public int Count => _seen.Count;

    public async Task WriteAsync(EmbeddingResult result)
    {
        await _gate.WaitAsync();
        try
        {
            if (!_seen.Add(result.Key))
            {
                return;
            }
            if (format == ResultFormat.Jsonl)
            {
                await writer.WriteLineAsync(JsonSerializer.Serialize(result, Json));
            }
            else
            {
                if (_seen.Count == 1)
                {
                    await writer.WriteLineAsync("input_path,features");
                }
                await writer.WriteLineAsync(CsvLine(result));
            }
            await writer.FlushAsync();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>A line of TAO's <c>inference.csv</c>: the path (quoted when it must be), the vector as a quoted JSON array.</summary>
    private static string CsvLine(EmbeddingResult result)
    {
        var line = new StringBuilder();
        var path = result.InputPath;
        line.Append(path.AsSpan().IndexOfAny(",\"\r\n") < 0 ? path : $"\"{path.Replace("\"", "\"\"", StringComparison.Ordinal)}\"");
        line.Append(",\"[");
        for (var i = 0; i < result.Embedding.Length; i++)
        {
            if (i > 0)
            {
                line.Append(',');
            }
            line.Append(result.Embedding[i].ToString(CultureInfo.InvariantCulture));
        }
        return line.Append("]\"").ToString();
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
