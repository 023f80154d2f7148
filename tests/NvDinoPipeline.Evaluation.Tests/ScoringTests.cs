using NvDinoPipeline.Evaluation;
using NvDinoPipeline.Model.Scoring;

namespace NvDinoPipeline.Evaluation.Tests;

public sealed class ScoringTests
{
    private static FeatureMatrix Rows(params float[][] rows) => new([.. rows.SelectMany(r => r)], rows.Length, rows[0].Length);

    [Fact]
    public void A_collapsed_embedding_has_no_spread_once_normalised_whatever_its_scale()
    {
        // Every image the same direction at different lengths: collapsed, though the raw values vary.
        var collapsed = Rows([1, 2], [2, 4], [0.5f, 1], [3, 6]);
        var spread = Rows([1, 0], [0, 1], [-1, 0], [0, -1]);

        Assert.Equal((0.0, 0.0), (Math.Round(collapsed.NormalisedColumnStd().Min, 6), Math.Round(collapsed.NormalisedColumnStd().Median, 6)));
        // Each column of the spread set takes 1, 0, -1, 0: sample std sqrt(2/3).
        Assert.Equal(Math.Sqrt(2.0 / 3), spread.NormalisedColumnStd().Min, 6);
    }

    [Fact]
    public void Centring_on_the_gallery_mean_subtracts_it_from_every_row()
    {
        var gallery = Rows([1, 10], [3, 20]);
        var means = gallery.ColumnMeans();

        Assert.Equal([2f, 15f], means);
        Assert.Equal([-1f, -5f, 1f, 5f], gallery.Minus(means).Values);
    }

    [Fact]
    public void Normalised_rows_are_unit_length_as_torchs_normalize_makes_them_and_the_features_stay_as_they_were()
    {
        var features = Rows([3, 4], [0, 0], [-1e-3f, 0], [1, 1]);
        float[] before = [.. features.Values];

        using var normalised = features.ToNormalisedTensor();
        using var reference = TorchSharp.torch.nn.functional.normalize(TorchSharp.torch.tensor(before, [4, 2]), dim: 1);

        Assert.Equal(reference.data<float>().ToArray(), normalised.data<float>().ToArray());
        Assert.Equal([0.6f, 0.8f], normalised.data<float>().ToArray()[..2]);
        // Scoring the same features twice (k-NN, then the probe) must see them unchanged.
        Assert.Equal(before, features.Values);
    }

    [Fact]
    public void Leave_one_out_keeps_an_image_from_voting_for_itself()
    {
        var features = Rows([1, 0], [0.9f, 0.1f], [0.8f, 0.2f]);
        int[] labels = [0, 0, 1];

        var withSelf = WeightedKnn.Score(features, labels, features, labels, classes: 2, k: 1, temperature: 0.07, leaveOneOut: false);
        var leftOut = WeightedKnn.Score(features, labels, features, labels, classes: 2, k: 1, temperature: 0.07, leaveOneOut: true);

        Assert.Equal(1.0, withSelf.Top1);
        // The class-1 image's nearest other image is of class 0.
        Assert.Equal(2.0 / 3, leftOut.Top1, 6);
        Assert.True(leftOut.LeaveOneOut);
    }

    [Fact]
    public void Votes_are_weighted_by_similarity_so_one_close_neighbour_outvotes_two_far_ones()
    {
        var gallery = Rows([1, 0], [0.1f, 1], [0.1f, -1]);
        int[] galleryLabels = [1, 0, 0];
        var query = Rows([1, 0.05f]);

        var score = WeightedKnn.Score(gallery, galleryLabels, query, [1], classes: 2, k: 3, temperature: 0.07, leaveOneOut: false);

        Assert.Equal(1.0, score.Top1);
        Assert.Equal(3, score.K);
    }

    [Fact]
    public void K_larger_than_the_gallery_uses_every_gallery_image()
    {
        var gallery = Rows([1, 0], [0, 1]);
        var score = WeightedKnn.Score(gallery, [0, 1], gallery, [0, 1], classes: 2, k: 20, temperature: 0.07, leaveOneOut: false);
        Assert.Equal(2, score.K);
        Assert.Equal(1.0, score.Top1);
    }

    [Fact]
    public void A_linear_probe_separates_separable_classes_and_stays_near_chance_on_random_labels()
    {
        var random = new Random(3);
        var (x, y) = Blobs(random, 300, separation: 3);
        var (xTest, yTest) = Blobs(random, 200, separation: 3);
        var separable = LinearProbe.Score(x, y, xTest, yTest, classes: 3);

        var shuffled = y.Select(_ => random.Next(3)).ToList();
        var noise = LinearProbe.Score(x, shuffled, xTest, yTest.Select(_ => random.Next(3)).ToList(), classes: 3);

        Assert.True(separable.Top1 >= 0.95, $"separable blobs: {separable.Top1}");
        Assert.Contains(separable.WeightDecay, LinearProbe.WeightDecays);
        Assert.Equal(60, separable.ValidationImages);
        Assert.True(noise.Top1 < 0.55, $"random labels: {noise.Top1}");
    }

    [Fact]
    public void A_probe_on_more_images_than_one_batch_fits_on_batches_deterministically()
    {
        var random = new Random(5);
        // 8 values an image and batches of at most 2048 values: 256 images a step, fewer than the 800 and 1000 fitted.
        var (x, y) = Blobs(random, 1000, separation: 3);
        var (xTest, yTest) = Blobs(random, 300, separation: 3);

        var first = LinearProbe.Score(x, y, xTest, yTest, classes: 3, batchValues: 2048);
        var second = LinearProbe.Score(x, y, xTest, yTest, classes: 3, batchValues: 2048);
        var wholeBatch = LinearProbe.Score(x, y, xTest, yTest, classes: 3);

        Assert.True(first.Top1 >= 0.95, $"separable blobs: {first.Top1}");
        Assert.Equal(first, second);
        Assert.Equal(200, first.ValidationImages);
        Assert.Equal(256, first.StepImages);
        Assert.Equal(1000, wholeBatch.StepImages);
        Assert.InRange(first.Top1 - wholeBatch.Top1, -0.02, 0.02);
    }

    [Fact]
    public void A_probe_with_fewer_than_ten_training_images_is_refused()
    {
        var features = Rows([1, 0], [0, 1]);
        Assert.Throws<ArgumentException>(() => LinearProbe.Score(features, [0, 1], features, [0, 1], classes: 2));
    }

    /// <summary>Three Gaussian blobs, centred <paramref name="separation"/> apart on the first three axes.</summary>
    private static (FeatureMatrix, List<int>) Blobs(Random random, int count, double separation)
    {
        const int dimension = 8;
        var values = new float[count * dimension];
        var labels = new List<int>(count);
        for (var i = 0; i < count; i++)
        {
            var label = i % 3;
            labels.Add(label);
            for (var d = 0; d < dimension; d++)
            {
                var gaussian = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
                values[i * dimension + d] = (float)(gaussian + (d == label ? separation : 0));
            }
        }
        return (new FeatureMatrix(values, count, dimension), labels);
    }
}
