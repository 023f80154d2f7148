using MassTransit;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Hosting.Workers;

namespace NvDinoPipeline.Inference.Output;

/// <summary>
/// Publishes result batches on the results exchange, and sends them to the pipeline's results queue when it has one,
/// with several batches in flight: each one waits for the broker's confirm, and awaiting them one by one would hold
/// the model back. A confirm that does not come within <c>confirmTimeout</c> (a restarting broker may close a channel
/// without answering what it owed) fails the batch as a transient fault instead of holding the job forever.
/// </summary>
/// <param name="resultsQueue">The pipeline's results queue and the content type its messages go in; null for none.</param>
public sealed class ResultPublisher(IPublishEndpoint endpoint, int inFlight,
    (ISendEndpoint Endpoint, string? ContentType)? resultsQueue = null, TimeSpan? confirmTimeout = null)
{
    private readonly TimeSpan _confirmTimeout = confirmTimeout ?? TimeSpan.FromSeconds(30);
    private readonly SemaphoreSlim _slots = new(inFlight, inFlight);
    private readonly List<Task> _pending = [];

    public int Published { get; private set; }

    /// <summary>
    /// Starts publishing <paramref name="batch"/>; waits only while <c>inFlight</c> publishes are unconfirmed.
    /// <paramref name="cancellationToken"/> must outlive the publish (pass the job's token, not a short-lived one).
    /// </summary>
    /// <exception cref="TransientStageException">An earlier publish failed (the job is retried; keys make the repeats harmless).</exception>
    public async Task PublishAsync(EmbeddingsBatch batch, CancellationToken cancellationToken)
    {
        await _slots.WaitAsync(cancellationToken);
        if (_pending.FirstOrDefault(t => t.IsFaulted) is { } failed)
        {
            _slots.Release();
            await failed;
        }
        _pending.RemoveAll(t => t.IsCompletedSuccessfully);
        _pending.Add(PublishOneAsync(batch, cancellationToken));
        Published++;
    }

    /// <summary>Waits until the broker confirmed every batch.</summary>
    public Task CompleteAsync() => Task.WhenAll(_pending);

    private async Task PublishOneAsync(EmbeddingsBatch batch, CancellationToken cancellationToken)
    {
        using var confirmed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        confirmed.CancelAfter(_confirmTimeout);
        try
        {
            var published = endpoint.Publish(batch, confirmed.Token);
            if (resultsQueue is var (queue, contentType))
            {
                await queue.Send(batch, Pipe.Execute<SendContext>(context => context.UseContentType(contentType)), confirmed.Token);
            }
            await published;
        }
        catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw new TransientStageException(
                $"Publishing result batch {batch.BatchIndex} of job {batch.JobId} failed: {exception.Message}", exception);
        }
        finally
        {
            _slots.Release();
        }
    }
}
