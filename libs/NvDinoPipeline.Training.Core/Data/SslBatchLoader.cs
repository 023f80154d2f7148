using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Ssl.Augmentation;
using NvDinoPipeline.Ssl.Masking;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Training.Core.Data;

/// <summary>
/// Turns an <see cref="IImageSource"/> into the batches of each epoch: a shuffled order per epoch, the last
/// incomplete batch dropped (DINOv2's sampler), DINOv2's multi-crop augmentation of every image and iBOT masks
/// of the global crops. Batches are built on background threads, at most <see cref="SslDataOptions.PrefetchBatches"/>
/// ahead of the consumer, and handed out in order. Every random choice derives from (seed, epoch, image) or
/// (seed, step), so the batches of an epoch are the same whichever thread builds them and whether or not the
/// run was resumed.
/// </summary>
public sealed class SslBatchLoader
{
    private const int GlobalCropsPerImage = 2;

    private readonly IImageSource source;
    private readonly SslDataOptions options;
    private readonly long seed;
    private readonly MultiCropAugmentation augmentation;
    private readonly MaskingGenerator maskGenerator;

    public SslBatchLoader(IImageSource source, SslDataOptions options, long seed)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        this.source = source;
        this.options = options;
        this.seed = seed;
        augmentation = new MultiCropAugmentation(options.Crops);
        var grid = options.Crops.GlobalCropsSize / options.PatchSize;
        maskGenerator = new MaskingGenerator(grid, grid);
        IterationsPerEpoch = source.Count / options.BatchSize;
    }

    /// <summary>Full batches per epoch: ⌊images / batch size⌋ (0 when the dataset is smaller than one batch).</summary>
    public long IterationsPerEpoch { get; }

    public SslDataOptions Options => options;

    /// <summary>Patches of one global crop, the length of each mask row.</summary>
    public int PatchesPerGlobalCrop => maskGenerator.NumPatches;

    /// <summary>
    /// The batches of <paramref name="epoch"/>, starting at batch <paramref name="firstBatch"/> of it. Each batch
    /// belongs to the caller, who disposes it. Stopping the enumeration early waits for and frees the batches
    /// still being built.
    /// </summary>
    public IEnumerable<SslBatch> Epoch(int epoch, long firstBatch = 0, CancellationToken cancellationToken = default)
    {
        if (epoch < 0) throw new ArgumentOutOfRangeException(nameof(epoch), epoch, "must not be negative");
        if (IterationsPerEpoch == 0)
            throw new InvalidOperationException($"The dataset holds {source.Count} images, fewer than one batch of {options.BatchSize}.");
        if (firstBatch < 0 || firstBatch > IterationsPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(firstBatch), firstBatch, $"must be in [0, {IterationsPerEpoch}]");
        var order = EpochOrder(epoch);
        return options.Workers == 0
            ? Sequential(order, epoch, firstBatch, cancellationToken)
            : Prefetched(order, epoch, firstBatch, cancellationToken);
    }

    /// <summary>The image indices of <paramref name="epoch"/> in training order (a permutation of the dataset).</summary>
    public int[] EpochOrder(int epoch)
    {
        var order = Enumerable.Range(0, source.Count).ToArray();
        new Random(TrainingSeeds.ForRandom(seed, SeedPurpose.DataOrder, epoch)).Shuffle(order);
        return order;
    }

    /// <summary>Builds batch <paramref name="batchIndex"/> of <paramref name="epoch"/> on the calling thread.</summary>
    public SslBatch Build(int epoch, long batchIndex) => Build(EpochOrder(epoch), epoch, batchIndex);

    private IEnumerable<SslBatch> Sequential(int[] order, int epoch, long firstBatch, CancellationToken cancellationToken)
    {
        for (var i = firstBatch; i < IterationsPerEpoch; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return Build(order, epoch, i);
        }
    }

    private IEnumerable<SslBatch> Prefetched(int[] order, int epoch, long firstBatch, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var gate = new SemaphoreSlim(Math.Min(options.Workers, Environment.ProcessorCount));
        var pending = new Queue<Task<SslBatch>>();
        var next = firstBatch;
        var ahead = Math.Max(options.PrefetchBatches, 1);
        try
        {
            while (next < IterationsPerEpoch && pending.Count < ahead)
                pending.Enqueue(Start(next++));
            while (pending.Count > 0)
            {
                var batch = pending.Dequeue().GetAwaiter().GetResult();
                if (next < IterationsPerEpoch)
                    pending.Enqueue(Start(next++));
                yield return batch;
            }
        }
        finally
        {
            stop.Cancel();
            while (pending.Count > 0)
            {
                var task = pending.Dequeue();
                try
                {
                    task.GetAwaiter().GetResult().Dispose();
                }
                catch (Exception)
                {
                    // Abandoned batches: canceled or failed, nothing left to free.
                }
            }
        }

        Task<SslBatch> Start(long index) => Task.Run(async () =>
        {
            await gate.WaitAsync(stop.Token).ConfigureAwait(false);
            try
            {
                stop.Token.ThrowIfCancellationRequested();
                return Build(order, epoch, index);
            }
            finally
            {
                gate.Release();
            }
        }, stop.Token);
    }

    private SslBatch Build(int[] order, int epoch, long batchIndex)
    {
        var batchSize = options.BatchSize;
        var step = epoch * IterationsPerEpoch + batchIndex;
        using var scope = torch.NewDisposeScope();
        var crops = new List<MultiCrops>(batchSize);
        for (var i = 0; i < batchSize; i++)
        {
            var index = order[batchIndex * batchSize + i];
            var image = ToTensor(source.Read(index));
            var random = new Random(TrainingSeeds.ForRandom(seed, SeedPurpose.Crops, epoch, index));
            crops.Add(augmentation.Apply(image, random));
        }
        var (global, local) = MultiCrops.Stack(crops);
        var masks = MaskCollator.Collate(GlobalCropsPerImage * batchSize, maskGenerator, options.MaskRatioMin, options.MaskRatioMax,
            options.MaskSampleProbability, new Random(TrainingSeeds.ForRandom(seed, SeedPurpose.Masks, step)));
        // The masks' tensors joined this scope when Collate returned; they outlive it with the batch.
        masks.Masks.MoveToOuterDisposeScope();
        masks.MaskIndices.MoveToOuterDisposeScope();
        masks.MasksWeight.MoveToOuterDisposeScope();
        return new SslBatch
        {
            GlobalCrops = global.MoveToOuterDisposeScope(),
            LocalCrops = local?.MoveToOuterDisposeScope(),
            Masks = masks,
            Epoch = epoch,
            Step = step,
            Images = batchSize,
        };
    }

    // The pixels are copied into memory libtorch allocates, rather than wrapping (and pinning) a managed array
    // whose release libtorch would then call back into .NET for from whichever thread frees the tensor.
    internal static Tensor ToTensor(DecodedImage image)
    {
        var hwc = torch.empty([image.Height, image.Width, image.Channels], ScalarType.Byte);
        hwc.bytes = image.Pixels;
        return hwc.permute(2, 0, 1);
    }
}
