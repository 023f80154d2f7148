using System.Text.Json;
using MassTransit;
using NvDinoPipeline.Contracts;

namespace ResultsConsumer;

public sealed class ConsumerSettings
{
    public string RabbitMq { get; set; } = "amqp://guest:guest@localhost:5672/";

    /// <summary>This service's queue; keep the name stable so the queue outlives restarts.</summary>
    public string Queue { get; set; } = "results-consumer-example";

    /// <summary>Only this pipeline's results; empty takes every pipeline's.</summary>
    public Guid? PipelineId { get; set; }

    /// <summary>A JSON-lines file to append to; empty writes to standard output.</summary>
    public string? Output { get; set; }
}

/// <summary>
/// Delivery is at-least-once: a batch can arrive twice (a redelivery, or a job that ran again after a crash).
/// Every result carries a key unique per job and input, so skipping keys already seen makes the output exact.
/// This example remembers keys in memory; a real service would rely on a unique index on the key in its store.
/// </summary>
public sealed class ResultWriter(ConsumerSettings settings, ILogger<ResultWriter> logger)
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
    private readonly HashSet<string> _seen = [];
    private readonly SemaphoreSlim _gate = new(1, 1);

    public async Task WriteAsync(EmbeddingsBatch batch, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var written = 0;
            var lines = new List<string>();
            foreach (var result in batch.Items)
            {
                if (_seen.Add(result.Key))
                {
                    lines.Add(JsonSerializer.Serialize(new
                    {
                        pipeline_id = batch.PipelineId,
                        result.Key,
                        result.InputPath,
                        result.ContentSha256,
                        result.Embedding,
                    }, Json));
                    written++;
                }
            }
            if (settings.Output is { Length: > 0 } path)
            {
                await File.AppendAllLinesAsync(path, lines, cancellationToken);
            }
            else
            {
                foreach (var line in lines)
                {
                    Console.Out.WriteLine(line);
                }
            }
            logger.LogInformation("Batch {BatchIndex} of job {JobId}: {Written} new results, {Repeated} seen before",
                batch.BatchIndex, batch.JobId, written, batch.Items.Count - written);
        }
        finally
        {
            _gate.Release();
        }
    }
}

public sealed class EmbeddingsBatchConsumer(ConsumerSettings settings, ResultWriter writer) : IConsumer<EmbeddingsBatch>
{
    public Task Consume(ConsumeContext<EmbeddingsBatch> context) =>
        settings.PipelineId is { } wanted && context.Message.PipelineId != wanted
            ? Task.CompletedTask
            : writer.WriteAsync(context.Message, context.CancellationToken);
}
