using System.Diagnostics;
using MassTransit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Inference.Output;
using NvDinoPipeline.Inference.Pipeline;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Inference.Online;

/// <summary>
/// Embeds the images of an <see cref="EmbedImages"/> request now, with the pipeline's deployed model, and
/// responds with <see cref="ImagesEmbedded"/>: one result per image that could be read, the reason for each
/// that could not. A request that cannot be served at all (unknown pipeline, no deployed model, too many
/// images) faults, and the requester receives that fault with its reason.
/// </summary>
public sealed class EmbedImagesConsumer(
    OnlineModels models,
    IArtifactStore store,
    IOptions<InferenceOptions> options,
    ILogger<EmbedImagesConsumer> logger) : IConsumer<EmbedImages>
{
    public async Task Consume(ConsumeContext<EmbedImages> context)
    {
        var request = context.Message;
        var settings = options.Value;
        var token = context.CancellationToken;
        if (request.ImageUris is not { Count: > 0 })
        {
            throw new OnlineRequestException($"Request {request.RequestId} names no images.");
        }
        if (request.ImageUris.Count > settings.OnlineMaxImages)
        {
            throw new OnlineRequestException(
                $"Request {request.RequestId} names {request.ImageUris.Count} images; at most {settings.OnlineMaxImages} are embedded per request ({InferenceOptions.SectionName}:{nameof(InferenceOptions.OnlineMaxImages)}). Split it, or run a pipeline's inference stage.");
        }
        var started = Stopwatch.StartNew();
        using var lease = await models.AcquireAsync(request.PipelineId, token);
        var prefixes = settings.OnlineAllowedPrefixes.Count > 0 ? settings.OnlineAllowedPrefixes : [store.Root.AbsoluteUri];
        using var source = new UriImageSource(store, request.ImageUris, prefixes, settings);
        var items = new List<EmbeddingResult>(request.ImageUris.Count);
        var failures = new Dictionary<string, string>();
        var pipeline = new EmbeddingPipeline(lease.Model, new EmbeddingPipelineOptions(settings.OnlineBatchSize, settings.PreprocessParallelism, PreparedBatches: 1,
            settings.Overlaps(lease.Model.ExecutionProvider.Kind)));
        await pipeline.RunAsync(source, (batch, _) =>
        {
            for (var i = 0; i < batch.Items.Count; i++)
            {
                var item = batch.Items[i];
                var vector = batch.EmbeddingOf(i);
                if (!IsFinite(vector))
                {
                    failures[item.Path] = "the model produced non-finite values (NaN or infinity) for this image";
                    continue;
                }
                items.Add(new EmbeddingResult
                {
                    Key = EmbeddingKeys.For(request.RequestId, item.Index),
                    InputPath = item.Path,
                    ContentSha256 = item.Sha256,
                    Embedding = vector.ToArray(),
                });
            }
            foreach (var failure in batch.Failures)
            {
                failures[failure.Path] = failure.Reason;
            }
            return ValueTask.CompletedTask;
        }, token);
        logger.LogInformation("Request {RequestId} for pipeline {PipelineId}: {EmbeddedCount} embedded, {FailedCount} failed in {Milliseconds} ms",
            request.RequestId, request.PipelineId, items.Count, failures.Count, started.ElapsedMilliseconds);
        await context.RespondAsync(new ImagesEmbedded { RequestId = request.RequestId, Items = items, Failures = failures });
    }

    private static bool IsFinite(ReadOnlySpan<float> vector)
    {
        foreach (var value in vector)
        {
            if (!float.IsFinite(value))
            {
                return false;
            }
        }
        return true;
    }
}

public sealed class EmbedImagesConsumerDefinition : ConsumerDefinition<EmbedImagesConsumer>
{
    public EmbedImagesConsumerDefinition(IOptions<InferenceOptions> options)
    {
        EndpointName = Queues.EmbedImages;
        ConcurrentMessageLimit = options.Value.OnlineConcurrentRequests;
    }

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<EmbedImagesConsumer> consumerConfigurator, IRegistrationContext context)
    {
        if (endpointConfigurator is IRabbitMqReceiveEndpointConfigurator rabbit)
        {
            rabbit.PrefetchCount = ConcurrentMessageLimit ?? 1;
        }
    }
}
