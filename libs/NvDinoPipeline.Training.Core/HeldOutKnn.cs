using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Model;
using NvDinoPipeline.Model.Scoring;
using NvDinoPipeline.Ssl.Augmentation;
using NvDinoPipeline.Training.Core.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Training.Core;

/// <summary>
/// A split of labelled training images for scoring a trained backbone without the test set: in each class (its folder
/// name), <c>fraction</c> of the images, spread evenly over the class's staged order, are held out of training; the
/// others train and, with their labels, make the k-NN gallery. Images outside class folders only train.
/// </summary>
public sealed record HeldOutSplit(IReadOnlyList<int> Train, IReadOnlyList<int> Gallery, IReadOnlyList<int> HeldOut, IReadOnlyList<int> Labels, int Classes)
{
    /// <summary>The split of <paramref name="images"/>; null when fewer than two classes hold an image out.</summary>
    public static HeldOutSplit? Of(IImageSource images, double fraction)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (!(fraction > 0 && fraction < 1))
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "the held-out share must lie strictly between 0 and 1");
        var byClass = new SortedDictionary<string, List<int>>(StringComparer.Ordinal);
        var unlabelled = new List<int>();
        for (var i = 0; i < images.Count; i++)
        {
            if (ImagePaths.ClassFolderOf(images.PathOf(i)) is { } label)
            {
                if (!byClass.TryGetValue(label, out var members))
                    byClass[label] = members = [];
                members.Add(i);
            }
            else
                unlabelled.Add(i);
        }
        var labels = Enumerable.Repeat(-1, images.Count).ToArray();
        var train = new List<int>(unlabelled);
        var gallery = new List<int>();
        var heldOut = new List<int>();
        var classes = 0;
        foreach (var members in byClass.Values)
        {
            for (var i = 0; i < members.Count; i++)
            {
                labels[members[i]] = classes;
                // Position i is held out when it crosses a multiple of 1 / fraction: the share, evenly spread.
                var held = Math.Floor((i + 1) * fraction) > Math.Floor(i * fraction);
                (held ? heldOut : gallery).Add(members[i]);
            }
            classes++;
        }
        train.AddRange(gallery);
        train.Sort();
        var heldClasses = heldOut.Select(i => labels[i]).Distinct().Count();
        return heldClasses < 2 || gallery.Count == 0 ? null : new HeldOutSplit(train, gallery, heldOut, labels, classes);
    }
}

/// <summary>
/// DINO's weighted k-NN (k = 20, T = 0.07, cosine) of a backbone's CLS embeddings: the held-out images of a
/// <see cref="HeldOutSplit"/> classified by the gallery's. Images are resized whole to the global crop size and
/// normalised as in training; the gallery and the queries are capped (spread evenly) to bound the time it takes.
/// </summary>
public static class HeldOutKnn
{
    public const int K = 20;
    public const double Temperature = 0.07;
    public const int MaxGallery = 10_000;
    public const int MaxQueries = 2_000;
    private const int Batch = 64;

    public static KnnScore Score(VisionTransformer backbone, Device device, IImageSource images, HeldOutSplit split, int side, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(split);
        var gallery = Spread(split.Gallery, MaxGallery);
        var queries = Spread(split.HeldOut, MaxQueries);
        var wasTraining = backbone.training;
        backbone.eval();
        try
        {
            var galleryFeatures = Embed(backbone, device, images, gallery, side, cancellationToken);
            var queryFeatures = Embed(backbone, device, images, queries, side, cancellationToken);
            return WeightedKnn.Score(galleryFeatures, [.. gallery.Select(i => split.Labels[i])], queryFeatures, [.. queries.Select(i => split.Labels[i])],
                split.Classes, K, Temperature, leaveOneOut: false);
        }
        finally
        {
            backbone.train(wasTraining);
        }
    }

    private static IReadOnlyList<int> Spread(IReadOnlyList<int> indices, int max) =>
        indices.Count <= max ? indices : [.. Enumerable.Range(0, max).Select(i => indices[(int)((long)i * indices.Count / max)])];

    private static FeatureMatrix Embed(VisionTransformer backbone, Device device, IImageSource images, IReadOnlyList<int> indices, int side,
        CancellationToken cancellationToken)
    {
        float[]? values = null;
        var dimension = 0;
        using var noGrad = torch.no_grad();
        for (var start = 0; start < indices.Count; start += Batch)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            var count = Math.Min(Batch, indices.Count - start);
            var batch = torch.stack(Enumerable.Range(start, count).Select(i =>
            {
                var image = ImageOps.ToRgb(SslBatchLoader.ToTensor(images.Read(indices[i])));
                var resized = ImageOps.ResizedCrop(image, new CropBox(0, 0, (int)image.shape[1], (int)image.shape[2]), side);
                return ImageOps.Normalize(resized, ImageOps.ImageNetMean, ImageOps.ImageNetStd);
            }).ToList()).to(device);
            var features = backbone.forward(batch).to(ScalarType.Float32).cpu().contiguous();
            dimension = (int)features.shape[1];
            values ??= new float[indices.Count * dimension];
            features.data<float>().CopyTo(values, start * dimension);
        }
        return new FeatureMatrix(values ?? [], indices.Count, dimension);
    }
}
