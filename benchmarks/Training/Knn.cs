using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Model;
using NvDinoPipeline.Ssl.Augmentation;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Benchmarks.Training;

/// <summary>Weighted k-NN classification of embeddings (DINO's <c>eval_knn.py</c>): cosine similarity, top-k neighbours voting with exp(sim / T).</summary>
internal static class Knn
{
    public static double Accuracy(Tensor trainFeatures, byte[] trainLabels, Tensor testFeatures, byte[] testLabels, int k = 20, double temperature = 0.07, int classes = 10)
    {
        using var scope = torch.NewDisposeScope();
        var bank = nn.functional.normalize(trainFeatures.to(ScalarType.Float32), dim: 1);
        var queries = nn.functional.normalize(testFeatures.to(ScalarType.Float32), dim: 1);
        var bankLabels = torch.tensor(trainLabels.Select(l => (long)l).ToArray());
        var correct = 0L;
        const int chunk = 500;
        for (var start = 0; start < queries.shape[0]; start += chunk)
        {
            using var inner = torch.NewDisposeScope();
            var count = Math.Min(chunk, queries.shape[0] - start);
            var similarity = queries.narrow(0, start, count).mm(bank.t());
            var (values, indices) = similarity.topk(k, dim: 1);
            var neighbourLabels = bankLabels.index_select(0, indices.flatten()).view(count, k);
            var votes = torch.zeros(count, classes).scatter_add_(1, neighbourLabels, values.DividedBy(temperature).exp());
            var predicted = votes.argmax(1);
            var truth = torch.tensor(testLabels.Skip(start).Take((int)count).Select(l => (long)l).ToArray());
            correct += predicted.eq(truth).sum().item<long>();
        }
        return (double)correct / queries.shape[0];
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
