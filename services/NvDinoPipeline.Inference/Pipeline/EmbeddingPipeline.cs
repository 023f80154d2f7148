using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using NvDinoPipeline.Datasets.Images;

namespace NvDinoPipeline.Inference.Pipeline;

/// <param name="BatchSize">Images per model run.</param>
/// <param name="PreprocessParallelism">Images read and pre-processed at once; 0 uses every core.</param>
/// <param name="PreparedBatches">Batches pre-processed ahead of the model.</param>
/// <param name="OverlapPreprocessing">
/// Pre-process while the model runs. Off, pre-processing and the model take turns: when the model already
/// keeps every CPU core busy, a pre-processing thread beside it only stalls the model's parallel operators.
/// </param>
public sealed record EmbeddingPipelineOptions(int BatchSize, int PreprocessParallelism = 0, int PreparedBatches = 2, bool OverlapPreprocessing = true);

/// <summary>
/// Embeds every input of a source in batches, in three overlapping stages joined by bounded channels:
/// read + decode + pre-process (parallel over a batch's images) → model → the caller's batch callback
/// (write, publish). While the model runs batch <c>n</c>, batch <c>n+1</c> is being prepared and batch
/// <c>n-1</c> written, so only the slowest stage sets the pace. Batch buffers are allocated once and reused.
/// Inputs that cannot be read are reported in their batch's failures and skipped.
/// </summary>
public sealed class EmbeddingPipeline(EmbeddingModel model, EmbeddingPipelineOptions options)
{
    public async Task RunAsync(IImageSource source, Func<EmbeddedBatch, CancellationToken, ValueTask> onBatch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(onBatch);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.BatchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.PreparedBatches, 1);
        var total = source.Count;
        if (total == 0)
        {
            return;
        }
        var batchSize = Math.Min(options.BatchSize, total);
        var batchCount = (total + batchSize - 1) / batchSize;
        var slots = Math.Min(options.PreparedBatches + 2, batchCount);
        var free = Channel.CreateBounded<Slot>(slots);
        for (var i = 0; i < slots; i++)
        {
            free.Writer.TryWrite(new Slot(model, batchSize));
        }
        var prepared = Channel.CreateBounded<Slot>(new BoundedChannelOptions(options.PreparedBatches) { SingleReader = true, SingleWriter = true });
        var embedded = Channel.CreateBounded<Slot>(new BoundedChannelOptions(1) { SingleReader = true, SingleWriter = true });
        using var turns = options.OverlapPreprocessing ? null : new SemaphoreSlim(1, 1);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var token = stop.Token;

        async Task Stage(Func<Task> body, ChannelWriter<Slot>? downstream)
        {
            try
            {
                await body();
                downstream?.TryComplete();
            }
            catch (Exception exception)
            {
                downstream?.TryComplete(exception);
                await stop.CancelAsync();
                throw;
            }
        }

        var parallelism = options.PreprocessParallelism > 0 ? options.PreprocessParallelism : Environment.ProcessorCount;
        Task[] stages =
        [
            Task.Run(() => Stage(() => PrepareAsync(source, total, batchSize, batchCount, parallelism, turns, free.Reader, prepared.Writer, token), prepared.Writer), token),
            Task.Run(() => Stage(() => InferAsync(turns, prepared.Reader, embedded.Writer, token), embedded.Writer), token),
            Task.Run(() => Stage(() => DeliverAsync(embedded.Reader, free.Writer, onBatch, token), null), token),
        ];
        try
        {
            await Task.WhenAll(stages);
        }
        catch
        {
            var failure = stages.Where(s => s.IsFaulted).SelectMany(s => s.Exception!.InnerExceptions)
                .FirstOrDefault(e => e is not OperationCanceledException and not ChannelClosedException);
            if (failure is not null)
            {
                ExceptionDispatchInfo.Throw(failure);
            }
            cancellationToken.ThrowIfCancellationRequested();
            throw;
        }
    }

    private async Task PrepareAsync(IImageSource source, int total, int batchSize, int batchCount, int parallelism, SemaphoreSlim? turns,
        ChannelReader<Slot> free, ChannelWriter<Slot> prepared, CancellationToken cancellationToken)
    {
        var imageSize = model.ImageSize;
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = parallelism, CancellationToken = cancellationToken };
        for (var batch = 0; batch < batchCount; batch++)
        {
            var slot = await free.ReadAsync(cancellationToken);
            var first = batch * batchSize;
            var count = Math.Min(batchSize, total - first);
            slot.Start(batch, count);
            if (turns is not null)
            {
                await turns.WaitAsync(cancellationToken);
            }
            try
            {
                await PrepareBatchAsync(source, slot, first, count, parallel);
            }
            finally
            {
                turns?.Release();
            }
            slot.Compact(imageSize);
            await prepared.WriteAsync(slot, cancellationToken);
        }
    }

    private async Task PrepareBatchAsync(IImageSource source, Slot slot, int first, int count, ParallelOptions parallel)
    {
        var imageSize = model.ImageSize;
        await Parallel.ForAsync(0, count, parallel, async (k, ct) =>
        {
            var index = first + k;
            try
            {
                var image = await source.ReadAsync(index, ct);
                model.Preprocessor.Preprocess(image.Pixels, image.Width, image.Height, slot.Input.AsSpan(k * imageSize, imageSize));
                slot.Embedded[k] = new EmbeddedItem(index, image.Path, image.Sha256 ?? "");
            }
            catch (UnreadableImageException exception)
            {
                slot.Failed[k] = new FailedInput(index, exception.Path, exception.Reason);
            }
            catch (ArgumentException exception)
            {
                slot.Failed[k] = new FailedInput(index, source.PathOf(index), exception.Message);
            }
        });
    }

    private async Task InferAsync(SemaphoreSlim? turns, ChannelReader<Slot> prepared, ChannelWriter<Slot> embedded, CancellationToken cancellationToken)
    {
        await foreach (var slot in prepared.ReadAllAsync(cancellationToken))
        {
            if (turns is not null)
            {
                await turns.WaitAsync(cancellationToken);
            }
            try
            {
                model.Run(slot.Input, slot.Items.Count, slot.Output);
            }
            finally
            {
                turns?.Release();
            }
            await embedded.WriteAsync(slot, cancellationToken);
        }
    }

    private async Task DeliverAsync(ChannelReader<Slot> embedded, ChannelWriter<Slot> free,
        Func<EmbeddedBatch, CancellationToken, ValueTask> onBatch, CancellationToken cancellationToken)
    {
        await foreach (var slot in embedded.ReadAllAsync(cancellationToken))
        {
            var batch = new EmbeddedBatch(slot.BatchIndex, slot.Items, slot.Failures,
                slot.Output.AsMemory(0, slot.Items.Count * model.Dimension), model.Dimension);
            await onBatch(batch, cancellationToken);
            free.TryWrite(slot);
        }
    }

    /// <summary>The buffers of one batch in flight.</summary>
    private sealed class Slot(EmbeddingModel model, int batchSize)
    {
        public float[] Input { get; } = new float[(long)model.BufferImages(batchSize) * model.ImageSize];

        public float[] Output { get; } = new float[batchSize * model.Dimension];

        public EmbeddedItem?[] Embedded { get; } = new EmbeddedItem?[batchSize];

        public FailedInput?[] Failed { get; } = new FailedInput?[batchSize];

        public int BatchIndex { get; private set; }

        public List<EmbeddedItem> Items { get; } = new(batchSize);

        public List<FailedInput> Failures { get; } = [];

        private int _count;

        public void Start(int batchIndex, int count)
        {
            BatchIndex = batchIndex;
            _count = count;
            Array.Clear(Embedded);
            Array.Clear(Failed);
            Items.Clear();
            Failures.Clear();
        }

        /// <summary>Moves the images that were read to the front of the input, in dataset order.</summary>
        public void Compact(int imageSize)
        {
            for (var k = 0; k < _count; k++)
            {
                if (Embedded[k] is { } item)
                {
                    if (Items.Count != k)
                    {
                        Input.AsSpan(k * imageSize, imageSize).CopyTo(Input.AsSpan(Items.Count * imageSize, imageSize));
                    }
                    Items.Add(item);
                }
                else if (Failed[k] is { } failure)
                {
                    Failures.Add(failure);
                }
            }
        }
    }
}
