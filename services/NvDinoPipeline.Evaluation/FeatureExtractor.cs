using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Deployment;
using NvDinoPipeline.Inference;
using NvDinoPipeline.Model;
using NvDinoPipeline.Model.Scoring;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Evaluation;

/// <summary>The three feature sets of the same images: the deployed model, the network at random initialisation, raw pixels.</summary>
public sealed record ImageFeatures(FeatureMatrix Deployed, FeatureMatrix? RandomInit, FeatureMatrix Pixels, IReadOnlyList<int> Kept,
    IReadOnlyList<(string Path, string Reason)> Failures);

/// <summary>
/// Reads each image once and computes all three feature sets from the same pre-processed input (the deployed model's
/// resize and normalisation): the deployed model's embedding as inference computes it, the CLS token of the same
/// architecture at random initialisation (seed 0), and the input average-pooled to at most
/// <see cref="PixelSide"/>×<see cref="PixelSide"/> per channel.
/// </summary>
public sealed class FeatureExtractor : IDisposable
{
    /// <summary>The side raw pixels are pooled to (3 · 32 · 32 = 3072 values): k-NN on full-size inputs is mostly noise.</summary>
    public const int PixelSide = 32;

    private readonly EmbeddingModel model;
    private readonly VisionTransformer? randomInit;

    /// <param name="randomInit">The deployed architecture at random initialisation; null when it cannot be built.</param>
    public FeatureExtractor(EmbeddingModel model, VisionTransformer? randomInit)
    {
        this.model = model ?? throw new ArgumentNullException(nameof(model));
        this.randomInit = randomInit;
        randomInit?.eval();
    }

    /// <summary>
    /// The architecture <paramref name="backbone"/> describes, at DINOv2's initialisation with seed 0; null with the reason
    /// when the description is of a custom shape or of metadata that does not say enough.
    /// </summary>
    public static (VisionTransformer? Network, string Description) RandomNetwork(BackboneDescription backbone)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        var config = new BackboneConfig
        {
            EmbedDim = backbone.EmbedDim,
            Depth = backbone.Depth,
            NumHeads = backbone.NumHeads,
            PatchSize = backbone.PatchSize,
            ImgSize = backbone.TrainedImageSize,
            NumRegisterTokens = backbone.NumRegisterTokens,
            FfnLayer = backbone.FfnLayer == "swiglu" ? FfnLayer.SwiGlu : FfnLayer.Mlp,
            MlpRatio = backbone.MlpRatio ?? 4.0,
            LayerScaleInit = backbone.LayerScale == false ? null : 1e-5,
        };
        try
        {
            config.Validate();
        }
        catch (ArgumentException exception)
        {
            return (null, $"the deployed backbone cannot be built at random initialisation: {exception.Message}");
        }
        // The process-wide generator is shared with any trainer in the same host; take it under the same lock.
        VisionTransformer network;
        using (TorchRandom.Seeded(0))
            network = new VisionTransformer(config);
        var assumed = backbone.FfnLayer is null ? " (feed-forward layer assumed mlp: the model metadata predates recording it)" : "";
        return (network, $"{backbone.Type}/{backbone.PatchSize}, {config.FfnLayer.ToString().ToLowerInvariant()} feed-forward, seed 0{assumed}");
    }

    public async Task<ImageFeatures> ExtractAsync(IImageSource source, IReadOnlyList<int> indices, int batchSize,
        Func<int, Task> progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(indices);
        var preprocessor = model.Preprocessor;
        var imageSize = preprocessor.ImageSize;
        var input = new float[model.BufferImages(batchSize) * imageSize];
        var output = new float[model.BufferImages(batchSize) * model.Dimension];
        int pixelHeight = Math.Min(PixelSide, preprocessor.Height), pixelWidth = Math.Min(PixelSide, preprocessor.Width);
        var pixelDimension = 3 * pixelHeight * pixelWidth;
        // Each set's matrix at its final size from the start: a growing list would hold up to three times a large
        // gallery's features at its last doubling and copy.
        var deployed = new FeatureColumns(indices.Count, model.Dimension);
        var random = randomInit is null ? null : new FeatureColumns(indices.Count, randomInit.EmbedDim);
        var pixels = new FeatureColumns(indices.Count, pixelDimension);
        var kept = new List<int>(indices.Count);
        var failures = new List<(string, string)>();
        var batch = new List<int>(batchSize);
        for (var start = 0; start < indices.Count; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            batch.Clear();
            foreach (var position in Enumerable.Range(start, Math.Min(batchSize, indices.Count - start)))
            {
                try
                {
                    var image = await source.ReadAsync(indices[position], cancellationToken);
                    preprocessor.Preprocess(image.Pixels, image.Width, image.Height, input.AsSpan(batch.Count * imageSize, imageSize));
                    batch.Add(position);
                }
                catch (Exception exception) when (exception is UnreadableImageException or ArgumentException)
                {
                    failures.Add((source.PathOf(indices[position]), exception.Message));
                }
            }
            if (batch.Count == 0)
            {
                continue;
            }
            model.Run(input, batch.Count, output);
            deployed.Add(output.AsSpan(0, batch.Count * model.Dimension));
            using (var scope = NewDisposeScope())
            using (torch.no_grad())
            {
                var images = torch.tensor(input.AsSpan(0, batch.Count * imageSize).ToArray(), [batch.Count, 3, preprocessor.Height, preprocessor.Width]);
                pixels.Add(nn.functional.adaptive_avg_pool2d(images, [pixelHeight, pixelWidth]).flatten(1).data<float>().ToArray());
                if (randomInit is not null)
                {
                    random!.Add(randomInit.forward(images).data<float>().ToArray());
                }
            }
            kept.AddRange(batch);
            await progress(start + Math.Min(batchSize, indices.Count - start));
        }
        return new ImageFeatures(deployed.ToMatrix(), random?.ToMatrix(), pixels.ToMatrix(), kept, failures);
    }

    /// <summary>A feature matrix filled batch after batch; rows of unreadable images are never written, and trimmed off at the end.</summary>
    private sealed class FeatureColumns(int capacity, int dimension)
    {
        private readonly float[] _values = new float[(long)capacity * dimension];
        private long _filled;

        public void Add(ReadOnlySpan<float> rows)
        {
            rows.CopyTo(_values.AsSpan((int)_filled));
            _filled += rows.Length;
        }

        public FeatureMatrix ToMatrix() =>
            new(_filled == _values.Length ? _values : _values.AsSpan(0, (int)_filled).ToArray(), (int)(_filled / dimension), dimension);
    }

    public void Dispose() => randomInit?.Dispose();
}
