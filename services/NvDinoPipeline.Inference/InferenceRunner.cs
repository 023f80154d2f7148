using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Inference.Output;
using NvDinoPipeline.Inference.Pipeline;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Inference;

/// <summary>
/// Embeds the staged test images with the deployed model: writes <c>inference.csv</c>, <c>embeddings.f32</c>
/// with <c>embeddings.index.jsonl</c>, <c>failures.jsonl</c> and <c>inference.json</c> (what ran where, how
/// fast) into the job folder, and publishes an <see cref="EmbeddingsBatch"/> per model batch as it goes.
/// Inputs that cannot be read are reported and skipped; the job completes with the rest.
/// </summary>
public sealed class InferenceRunner(
    IArtifactStore store,
    IPublishEndpoint publishEndpoint,
    ISendEndpointProvider sendEndpoints,
    DeployedModelLoader loader,
    IOptions<InferenceOptions> options,
    ILogger<InferenceRunner> logger) : IStageRunner<RunInference, InferenceCompleted>
{
    public async Task<StageResult<InferenceCompleted>> RunAsync(RunInference command, StageContext context, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var spec = InferenceSpec.From(context.Spec);
        if (spec.OnnxFile is not null || spec.TrtEngine is not null)
        {
            logger.LogWarning("inference.onnx_file and inference.trt_engine are not used in a pipeline: job {JobId} runs the deploy artifact {ArtifactUri}",
                command.JobId, command.DeployArtifactUri);
        }
        var started = Stopwatch.StartNew();
        await context.ReportNowAsync(new StageProgress(0, $"loading model {command.DeployArtifactUri}"), cancellationToken);
        using var model = await loader.LoadAsync(new DeployedModelReference(command.Target, command.DeployArtifactUri, command.ModelMetadataUri),
            spec.ExecutionProvider, context.ScratchDirectory, cancellationToken);
        using var source = await InputImages.OpenAsync(store, LocationForm.Absolute(command.DatasetUri), context.ScratchDirectory, settings, cancellationToken);
        var total = source.Count;
        if (total == 0)
        {
            throw new StageInputException($"The test dataset {command.DatasetUri} holds no images.");
        }
        logger.LogInformation(
            "Embedding {ImageCount} {SourceKind} of {DatasetUri} for job {JobId} of pipeline {PipelineId}: batch {BatchSize}, {Dimension}-float embeddings, {ExecutionProvider}",
            total, source.Description, command.DatasetUri, command.JobId, command.PipelineId, spec.BatchSize, model.Dimension, model.ExecutionProvider.Name);

        var outputFolder = Path.Combine(context.ScratchDirectory, "outputs");
        if (Directory.Exists(outputFolder))
        {
            Directory.Delete(outputFolder, recursive: true);
        }
        await using var writer = new EmbeddingOutputWriter(outputFolder, command.JobId, model.Dimension, spec.OutputFormat == "jsonl");
        var resultsQueue = command.ResultsQueue is { } queue
            ? (await sendEndpoints.GetSendEndpoint(Queues.Address(queue)), command.ResultsContentType)
            : ((ISendEndpoint, string?)?)null;
        var publisher = new ResultPublisher(publishEndpoint, settings.PublishesInFlight, resultsQueue);
        var pipeline = new EmbeddingPipeline(model, new EmbeddingPipelineOptions(spec.BatchSize, settings.PreprocessParallelism, settings.PreparedBatches,
            settings.Overlaps(model.ExecutionProvider.Kind)));
        var modelStarted = Stopwatch.StartNew();
        var processed = 0;
        await pipeline.RunAsync(source, async (batch, token) =>
        {
            var results = await writer.WriteAsync(batch, token);
            foreach (var failure in writer.Failures)
            {
                logger.LogWarning("Input {InputPath} of job {JobId} skipped: {Reason}", failure.Path, command.JobId, failure.Reason);
            }
            if (results.Count > 0)
            {
                await publisher.PublishAsync(new EmbeddingsBatch
                {
                    PipelineId = command.PipelineId,
                    JobId = command.JobId,
                    BatchIndex = batch.BatchIndex,
                    Items = results,
                }, cancellationToken);
            }
            processed += batch.Items.Count + batch.Failures.Count;
            var rate = processed / Math.Max(modelStarted.Elapsed.TotalSeconds, 1e-6);
            await context.ReportAsync(new StageProgress((double)processed / total, $"{processed}/{total} images, {rate:0.0} images/s",
                new Dictionary<string, double>
                {
                    ["images"] = processed,
                    ["embedded"] = writer.EmbeddedCount,
                    ["failed"] = writer.FailedCount,
                    ["images_per_second"] = Math.Round(rate, 2),
                }), token);
        }, cancellationToken);
        await publisher.CompleteAsync();
        await writer.CompleteAsync(cancellationToken);
        var embeddingSeconds = modelStarted.Elapsed.TotalSeconds;

        if (writer.EmbeddedCount == 0)
        {
            var failuresUri = await store.PutFileAsync(context.Output(EmbeddingFiles.Failures), writer.PathOf(EmbeddingFiles.Failures), cancellationToken);
            throw new StageInputException($"None of the {total} images of {command.DatasetUri} could be embedded; the reasons are in {failuresUri.Uri}.");
        }

        var summary = new InferenceSummary
        {
            Target = command.Target,
            DeployArtifactUri = command.DeployArtifactUri.ToString(),
            ModelFile = Path.GetFileName(model.ModelPath),
            TensorRtEngine = model.Engine,
            DatasetUri = command.DatasetUri.ToString(),
            InputKind = source.Description,
            ExecutionProvider = model.ExecutionProvider.Name,
            ExecutionProviderReason = model.ExecutionProvider.Reason,
            AvailableExecutionProviders = model.ExecutionProvider.Available,
            Dimension = model.Dimension,
            Images = total,
            Embedded = writer.EmbeddedCount,
            Failed = writer.FailedCount,
            BatchSize = spec.BatchSize,
            ResultBatches = publisher.Published,
            Seconds = Math.Round(embeddingSeconds, 3),
            ImagesPerSecond = Math.Round(total / Math.Max(embeddingSeconds, 1e-6), 2),
        };
        await File.WriteAllTextAsync(writer.PathOf(EmbeddingFiles.Summary), JsonSerializer.Serialize(summary, InferenceSummary.Json), cancellationToken);

        var artifacts = new Dictionary<string, Uri>();
        async Task<Uri> Upload(string artifact, string file)
        {
            var stored = await store.PutFileAsync(context.Output(file), writer.PathOf(file), cancellationToken);
            artifacts[artifact] = stored.Uri;
            return stored.Uri;
        }
        var csvUri = await Upload(EmbeddingFiles.CsvArtifact, EmbeddingFiles.Csv);
        var embeddingsUri = await Upload(EmbeddingFiles.EmbeddingsArtifact, EmbeddingFiles.Embeddings);
        var indexUri = await Upload(EmbeddingFiles.IndexArtifact, EmbeddingFiles.Index);
        await Upload(EmbeddingFiles.FailuresArtifact, EmbeddingFiles.Failures);
        if (writer.WritesJsonl)
        {
            await Upload(EmbeddingFiles.JsonlArtifact, EmbeddingFiles.Jsonl);
        }
        await Upload(EmbeddingFiles.SummaryArtifact, EmbeddingFiles.Summary);
        Directory.Delete(outputFolder, recursive: true);

        logger.LogInformation(
            "Job {JobId} embedded {EmbeddedCount} of {ImageCount} images ({FailedCount} skipped) in {Seconds:0.0} s, {ImagesPerSecond:0.0} images/s on {ExecutionProvider}; {Batches} result batches published",
            command.JobId, writer.EmbeddedCount, total, writer.FailedCount, embeddingSeconds, summary.ImagesPerSecond, summary.ExecutionProvider, publisher.Published);
        var completed = new InferenceCompleted
        {
            PipelineId = command.PipelineId,
            JobId = command.JobId,
            ParentJobId = command.ParentJobId,
            CsvUri = csvUri,
            EmbeddingsUri = embeddingsUri,
            IndexUri = indexUri,
            EmbeddedCount = writer.EmbeddedCount,
            FailedCount = writer.FailedCount,
            Dimension = model.Dimension,
        };
        var metrics = new Dictionary<string, double>
        {
            [EmbeddingFiles.DimensionMetric] = model.Dimension,
            ["images"] = total,
            ["embedded"] = writer.EmbeddedCount,
            ["failed"] = writer.FailedCount,
            ["batch_size"] = spec.BatchSize,
            ["result_batches"] = publisher.Published,
            ["seconds"] = Math.Round(started.Elapsed.TotalSeconds, 3),
            ["images_per_second"] = summary.ImagesPerSecond,
        };
        return new StageResult<InferenceCompleted>(completed, artifacts, metrics)
        {
            Summary = string.Create(CultureInfo.InvariantCulture,
                $"{writer.EmbeddedCount} of {total} images embedded ({writer.FailedCount} skipped), {model.Dimension} values each, {summary.ImagesPerSecond:F1} images/s on {summary.ExecutionProvider}"),
        };
    }
}

/// <summary><c>inference.json</c>: what ran, on which execution provider, and how fast.</summary>
public sealed record InferenceSummary
{
    public const string CurrentFormat = "nvdino.inference/1";

    public static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true };

    public string Format { get; init; } = CurrentFormat;

    public required string Target { get; init; }

    public required string DeployArtifactUri { get; init; }

    public required string ModelFile { get; init; }

    /// <summary>The prebuilt engine that ran (its TensorRT version, GPU and precision), when the model is its EP-context model.</summary>
    public NvDinoPipeline.Onnx.EpContext.TensorRtEngineContext? TensorRtEngine { get; init; }

    public required string DatasetUri { get; init; }

    public required string InputKind { get; init; }

    /// <summary><c>tensorrt</c>, <c>cuda</c> or <c>cpu</c>: where the model ran.</summary>
    public required string ExecutionProvider { get; init; }

    public required string ExecutionProviderReason { get; init; }

    public required IReadOnlyList<string> AvailableExecutionProviders { get; init; }

    public required int Dimension { get; init; }

    public required int Images { get; init; }

    public required int Embedded { get; init; }

    public required int Failed { get; init; }

    public required int BatchSize { get; init; }

    public required int ResultBatches { get; init; }

    public required double Seconds { get; init; }

    public required double ImagesPerSecond { get; init; }
}
