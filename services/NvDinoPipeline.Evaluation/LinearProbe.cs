using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Evaluation;

/// <summary>A linear probe's test accuracy, with the L2 weight chosen on its validation split and that split's accuracy.</summary>
public sealed record ProbeScore(double Top1, double WeightDecay, double ValidationTop1, int TrainImages, int ValidationImages, int TestImages);

/// <summary>
/// Multinomial logistic regression on L2-normalised, standardised features (full-batch Adam from zero weights, so
/// the result is deterministic). Its L2 weight is chosen among <see cref="WeightDecays"/> by accuracy on every fifth
/// training image; the probe is then fitted again on every training image and scored once on the test images.
/// </summary>
public static class LinearProbe
{
    public static readonly IReadOnlyList<double> WeightDecays = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2];

    private const int Steps = 300;
    private const double LearningRate = 0.05;

    /// <summary>Fewest training images a probe is fitted on: each fifth of them validates.</summary>
    public const int MinTrainImages = 10;

    public static ProbeScore Score(FeatureMatrix train, IReadOnlyList<int> trainLabels, FeatureMatrix test, IReadOnlyList<int> testLabels, int classes)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        if (train.Rows < MinTrainImages)
        {
            throw new ArgumentException($"A linear probe needs at least {MinTrainImages} training images; there are {train.Rows}.", nameof(train));
        }
        using var scope = NewDisposeScope();
        var x = nn.functional.normalize(torch.tensor(train.Values, [train.Rows, train.Dimension]), dim: 1);
        var mean = x.mean([0], keepdim: true);
        var std = x.std(0, keepdim: true) + 1e-6;
        x = (x - mean) / std;
        var y = torch.tensor(trainLabels.Select(l => (long)l).ToArray());
        var xTest = (nn.functional.normalize(torch.tensor(test.Values, [test.Rows, test.Dimension]), dim: 1) - mean) / std;
        var yTest = torch.tensor(testLabels.Select(l => (long)l).ToArray());

        var validation = torch.arange(0, train.Rows, 5, dtype: ScalarType.Int64);
        var fit = torch.tensor(Enumerable.Range(0, train.Rows).Where(i => i % 5 != 0).Select(i => (long)i).ToArray());
        double bestDecay = WeightDecays[0], bestValidation = -1;
        foreach (var decay in WeightDecays)
        {
            using var decayScope = NewDisposeScope();
            var (w, b) = Fit(x.index_select(0, fit), y.index_select(0, fit), classes, decay);
            var accuracy = Accuracy(x.index_select(0, validation), y.index_select(0, validation), w, b);
            if (accuracy > bestValidation)
            {
                (bestDecay, bestValidation) = (decay, accuracy);
            }
        }
        var (weights, bias) = Fit(x, y, classes, bestDecay);
        return new ProbeScore(Accuracy(xTest, yTest, weights, bias), bestDecay, bestValidation, train.Rows, (int)validation.shape[0], test.Rows);
    }

    private static (Tensor Weights, Tensor Bias) Fit(Tensor x, Tensor y, int classes, double decay)
    {
        var weights = nn.Parameter(torch.zeros([x.shape[1], classes]));
        var bias = nn.Parameter(torch.zeros([classes]));
        using var optimizer = optim.Adam([weights, bias], lr: LearningRate);
        for (var step = 0; step < Steps; step++)
        {
            using var stepScope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(x.mm(weights) + bias, y) + weights.square().sum() * (decay / 2);
            loss.backward();
            optimizer.step();
        }
        return (weights.detach(), bias.detach());
    }

    private static double Accuracy(Tensor x, Tensor y, Tensor weights, Tensor bias)
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        return (x.mm(weights) + bias).argmax(1).eq(y).to_type(ScalarType.Float64).mean().item<double>();
    }
}
