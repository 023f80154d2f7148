using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Evaluation;
using NvDinoPipeline.Model;
using NvDinoPipeline.Model.Scoring;
using NvDinoPipeline.Ssl.Augmentation;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Benchmarks.Training;

/// <summary>Feature helpers of the k-NN figures; the classifier is the evaluation stage's <see cref="WeightedKnn"/>.</summary>
internal static class Knn
{
    /// <summary>Top-1 accuracy of DINO's weighted k-NN (<c>eval_knn.py</c>: cosine, top-k neighbours voting with exp(sim / T)).</summary>
    public static double Accuracy(Tensor trainFeatures, byte[] trainLabels, Tensor testFeatures, byte[] testLabels, int k = 20, double temperature = 0.07, int classes = 10) =>
        WeightedKnn.Score(Matrix(trainFeatures), trainLabels.Select(l => (int)l).ToList(), Matrix(testFeatures), testLabels.Select(l => (int)l).ToList(),
            classes, k, temperature, leaveOneOut: false).Top1;

    private static FeatureMatrix Matrix(Tensor features)
    {
        using var scope = torch.NewDisposeScope();
        var rows = features.to(ScalarType.Float32).contiguous();
        return new FeatureMatrix(rows.data<float>().ToArray(), (int)rows.shape[0], (int)rows.shape[1]);
    }

    /// <summary>Raw pixels as features: the 28×28 grey levels, flattened.</summary>
    public static Tensor Pixels(IReadOnlyList<DecodedImage> images)
    {
        var data = new float[images.Count * 784];
        for (var i = 0; i < images.Count; i++)
            for (var p = 0; p < 784; p++)
                data[i * 784 + p] = images[i].Pixels[p] / 255f;
        return torch.tensor(data, [images.Count, 784]);
    }

    /// <summary>CLS embeddings of a backbone in eval mode for images upsampled (bicubic) to <paramref name="side"/> and normalised as in training.</summary>
    public static Tensor Embed(VisionTransformer backbone, IReadOnlyList<DecodedImage> images, int side, int batch = 500)
    {
        backbone.eval();
        var outputs = new List<Tensor>();
        using var noGrad = torch.no_grad();
        using var mean = torch.tensor(ImageOps.ImageNetMean.ToArray()).view(1, 3, 1, 1);
        using var std = torch.tensor(ImageOps.ImageNetStd.ToArray()).view(1, 3, 1, 1);
        for (var start = 0; start < images.Count; start += batch)
        {
            using var scope = torch.NewDisposeScope();
            var count = Math.Min(batch, images.Count - start);
            var pixels = new byte[count * 784];
            for (var i = 0; i < count; i++)
                images[start + i].Pixels.CopyTo(pixels, i * 784);
            var raw = torch.empty([count, 1, 28, 28], ScalarType.Byte);
            raw.bytes = pixels;
            var x = raw.to(ScalarType.Float32).DividedBy(255.0).expand(-1, 3, -1, -1);
            x = nn.functional.interpolate(x, [side, side], mode: InterpolationMode.Bicubic, align_corners: false).Clamped(0, 1);
            x = (x - mean) / std;
            outputs.Add(backbone.forward(x).MoveToOuterDisposeScope());
        }
        var all = torch.cat(outputs, 0);
        outputs.ForEach(o => o.Dispose());
        return all;
    }

    /// <summary>Standard deviation over images of each embedding dimension (after l2 normalisation): min, median, mean.</summary>
    public static (double Min, double Median, double Mean) PerDimensionStd(Tensor features)
    {
        using var scope = torch.NewDisposeScope();
        var std = nn.functional.normalize(features, dim: 1).std(0).sort().Values;
        var values = std.data<float>().ToArray();
        return (values[0], values[values.Length / 2], values.Average());
    }
}
