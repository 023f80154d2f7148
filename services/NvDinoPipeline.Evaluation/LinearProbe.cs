using NvDinoPipeline.Model.Scoring;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Evaluation;

/// <summary>A linear probe's test accuracy, with the L2 weight chosen on its validation split and that split's accuracy.</summary>
/// <param name="StepImages">Training images each step of the final fit saw: all of them, or one batch.</param>
public sealed record ProbeScore(double Top1, double WeightDecay, double ValidationTop1, int TrainImages, int ValidationImages, int TestImages,
    int StepImages);

/// <summary>
/// Multinomial logistic regression on L2-normalised, standardised features: 300 Adam steps from zero weights. Each
/// step sees at most <see cref="BatchValues"/> feature values: the whole training set when it is that small
/// (128-dimensional embeddings of 60 000 images are), at a constant learning rate; else consecutive batches of one
/// seeded shuffle (60 000 × 2352 raw pixels: batches of 3566 images) with a cosine decay, so the result is
/// deterministic and a step's cost does not grow with the gallery. Its L2 weight is chosen among <see cref="WeightDecays"/> by accuracy on every fifth
/// training image; the probe is then fitted again on every training image and scored once on the test images.
/// </summary>
public static class LinearProbe
{
    public static readonly IReadOnlyList<double> WeightDecays = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2];

    private const int Steps = 300;
    private const double LearningRate = 0.05;

    /// <summary>Feature values per step at most (32 MB of floats): rows per batch are this over the dimension.</summary>
    public const int BatchValues = 1 << 23;


    /// <summary>Fewest training images a probe is fitted on: each fifth of them validates.</summary>
    public const int MinTrainImages = 10;

    /// <param name="batchValues">Feature values per step at most; <see cref="BatchValues"/> unless a test needs small batches.</param>
    public static ProbeScore Score(FeatureMatrix train, IReadOnlyList<int> trainLabels, FeatureMatrix test, IReadOnlyList<int> testLabels, int classes,
        int batchValues = BatchValues)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        if (train.Rows < MinTrainImages)
        {
            throw new ArgumentException($"A linear probe needs at least {MinTrainImages} training images; there are {train.Rows}.", nameof(train));
        }
        using var scope = NewDisposeScope();
        // Normalised and standardised in place: a large gallery's features are held once here, not four times.
        var x = train.ToNormalisedTensor();
        var mean = x.mean([0], keepdim: true);
        var std = x.std(0, keepdim: true) + 1e-6;
        x.sub_(mean).div_(std);
        var y = torch.tensor(trainLabels.Select(l => (long)l).ToArray());
        var xTest = test.ToNormalisedTensor().sub_(mean).div_(std);
        var yTest = torch.tensor(testLabels.Select(l => (long)l).ToArray());

        var validation = torch.arange(0, train.Rows, 5, dtype: ScalarType.Int64);
        var fit = torch.tensor(Enumerable.Range(0, train.Rows).Where(i => i % 5 != 0).Select(i => (long)i).ToArray());
        double bestDecay = WeightDecays[0], bestValidation = -1;
        foreach (var decay in WeightDecays)
        {
            using var decayScope = NewDisposeScope();
            var (w, b) = Fit(x.index_select(0, fit), y.index_select(0, fit), classes, decay, batchValues);
            var accuracy = Accuracy(x.index_select(0, validation), y.index_select(0, validation), w, b);
            if (accuracy > bestValidation)
            {
                (bestDecay, bestValidation) = (decay, accuracy);
            }
        }
        var (weights, bias) = Fit(x, y, classes, bestDecay, batchValues);
        return new ProbeScore(Accuracy(xTest, yTest, weights, bias), bestDecay, bestValidation, train.Rows, (int)validation.shape[0], test.Rows,
            (int)StepRows(train.Rows, train.Dimension, batchValues));
    }

    private static (Tensor Weights, Tensor Bias) Fit(Tensor x, Tensor y, int classes, double decay, int batchValues)
    {
        var rows = x.shape[0];
        var batchRows = StepRows(rows, x.shape[1], batchValues);
        var weights = nn.Parameter(torch.zeros([x.shape[1], classes]));
        var bias = nn.Parameter(torch.zeros([classes]));
        using var optimizer = optim.Adam([weights, bias], lr: LearningRate);
        if (rows > batchRows)
        {
            // One seeded shuffle, then consecutive batches of it (views, no copy per step).
            using var generator = new Generator(0);
            var order = torch.randperm(rows, generator: generator);
            (x, y) = (x.index_select(0, order), y.index_select(0, order));
        }
        var next = 0L;
        for (var step = 0; step < Steps; step++)
        {
            using var stepScope = NewDisposeScope();
            var (xb, yb) = (x, y);
            if (rows > batchRows)
            {
                if (next + batchRows > rows)
                {
                    next = 0;
                }
                (xb, yb) = (x.narrow(0, next, batchRows), y.narrow(0, next, batchRows));
                next += batchRows;
            }
            if (rows > batchRows)
            {
                // Batches make the last steps noisy: a cosine decay to zero settles them. The whole set keeps the
                // constant rate, which converges further in the same 300 steps.
                foreach (var group in optimizer.ParamGroups)
                {
                    group.LearningRate = LearningRate * 0.5 * (1 + Math.Cos(Math.PI * step / Steps));
                }
            }
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(xb.mm(weights) + bias, yb) + weights.square().sum() * (decay / 2);
            loss.backward();
            optimizer.step();
        }
        return (weights.detach(), bias.detach());
    }

    /// <summary>Rows each step sees: all <paramref name="rows"/> when they hold at most <paramref name="batchValues"/> values, else a batch that does.</summary>
    private static long StepRows(long rows, long dimension, int batchValues) => Math.Min(rows, Math.Max(1, batchValues / Math.Max(1, dimension)));

    private static double Accuracy(Tensor x, Tensor y, Tensor weights, Tensor bias)
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        return (x.mm(weights) + bias).argmax(1).eq(y).to_type(ScalarType.Float64).mean().item<double>();
    }
}
