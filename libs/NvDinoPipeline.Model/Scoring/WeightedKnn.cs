using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Model.Scoring;

/// <summary>Top-1 and top-5 accuracy of a weighted k-NN classifier.</summary>
public sealed record KnnScore(double Top1, double Top5, int K, int Queries, int GalleryImages, bool LeaveOneOut);

/// <summary>
/// DINO's weighted k-NN (Caron et al. 2021, <c>eval_knn.py</c>): features L2-normalised, the <c>k</c> gallery images of
/// highest cosine similarity vote for their class with weight <c>exp(cosine / T)</c>.
/// </summary>
public static class WeightedKnn
{
    private const int QueryChunk = 512;

    /// <param name="leaveOneOut">The query set is the gallery: each image is left out of its own neighbours.</param>
    public static KnnScore Score(FeatureMatrix gallery, IReadOnlyList<int> galleryLabels, FeatureMatrix queries, IReadOnlyList<int> queryLabels,
        int classes, int k, double temperature, bool leaveOneOut)
    {
        ArgumentNullException.ThrowIfNull(gallery);
        ArgumentNullException.ThrowIfNull(queries);
        if (gallery.Dimension != queries.Dimension)
        {
            throw new ArgumentException($"Gallery features have {gallery.Dimension} values, queries {queries.Dimension}.", nameof(queries));
        }
        if (leaveOneOut && gallery.Rows != queries.Rows)
        {
            throw new ArgumentException("Leave-one-out scores a set against itself.", nameof(queries));
        }
        var neighbours = Math.Min(k, gallery.Rows - (leaveOneOut ? 1 : 0));
        if (neighbours < 1)
        {
            throw new ArgumentException($"A gallery of {gallery.Rows} images has no neighbours to vote.", nameof(gallery));
        }
        using var scope = NewDisposeScope();
        var g = gallery.ToNormalisedTensor();
        var gLabels = torch.tensor(galleryLabels.Select(l => (long)l).ToArray());
        var q = queries.ToNormalisedTensor();
        var qLabels = torch.tensor(queryLabels.Select(l => (long)l).ToArray());
        var top = Math.Min(5, classes);
        long correct1 = 0, correct5 = 0;
        for (var start = 0; start < queries.Rows; start += QueryChunk)
        {
            using var chunkScope = NewDisposeScope();
            var count = Math.Min(QueryChunk, queries.Rows - start);
            var similarity = q.narrow(0, start, count).mm(g.t());
            if (leaveOneOut)
            {
                // Built from arrays, not arange and full, which hand libtorch unheld Scalars (see HeldScalars).
                var self = torch.tensor(Enumerable.Range(start, count).Select(i => (long)i).ToArray()).unsqueeze(1);
                similarity = similarity.scatter(1, self, torch.tensor(Enumerable.Repeat(float.NegativeInfinity, count).ToArray()).unsqueeze(1));
            }
            var (values, indices) = similarity.topk(neighbours, dim: 1);
            var votes = torch.zeros([count, classes]).scatter_add(1, gLabels[indices], values.DividedBy(temperature).exp());
            var truth = qLabels.narrow(0, start, count).unsqueeze(1);
            var (_, ranked) = votes.topk(top, dim: 1);
            var hits = ranked.eq(truth);
            correct1 += hits.narrow(1, 0, 1).sum().item<long>();
            correct5 += hits.sum().item<long>();
        }
        return new KnnScore((double)correct1 / queries.Rows, (double)correct5 / queries.Rows, neighbours, queries.Rows, gallery.Rows, leaveOneOut);
    }
}
