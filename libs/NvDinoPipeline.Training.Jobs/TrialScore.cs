using NvDinoPipeline.Contracts;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Training.Core;

namespace NvDinoPipeline.Training.Jobs;

/// <summary>
/// How an AutoML trial is scored (<see cref="AutomlTrial.Metric"/>): k-NN top-1 of the teacher's embeddings on images
/// held out of its training (<see cref="HeldOutSplit"/>), or, without class folders or with <c>loss</c>, the last
/// epoch's training loss, negated so that higher is better for every metric.
/// </summary>
public sealed record TrialScore(AutomlTrial Trial, HeldOutSplit? Split)
{
    public string MetricName => Split is null ? "the final training loss" : $"weighted k-NN top-1 on {Split.HeldOut.Count} held-out images";

    /// <exception cref="StageInputException"><c>automl.metric</c> is knn and the images carry no classes to hold out.</exception>
    public static TrialScore Plan(AutomlTrial trial, IImageSource images)
    {
        ArgumentNullException.ThrowIfNull(trial);
        ArgumentNullException.ThrowIfNull(images);
        var split = trial.Metric == "loss" ? null : HeldOutSplit.Of(images, trial.HeldOutFraction);
        if (trial.Metric == "knn" && split is null)
            throw new StageInputException(
                $"automl.metric is knn, but the {images.Count} training images ({images.Description}) do not hold out automl.held_out_fraction " +
                $"{trial.HeldOutFraction} of at least two class folders; put the images in one folder per class, or set automl.metric: loss.");
        return new TrialScore(trial, split);
    }

    /// <summary>The trial's figures, <see cref="AutomlTrial.ScoreMetric"/> first, for the job's metrics.</summary>
    /// <param name="images">The staged images the split was made of.</param>
    /// <param name="side">The global crop size the images are embedded at.</param>
    public IReadOnlyList<(string Name, double Value)> Score(SslTrainer trainer, IImageSource images, int side, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(trainer);
        if (Split is null)
            return [(AutomlTrial.ScoreMetric, -trainer.LastEpochMetrics.GetValueOrDefault(TrainingMetrics.Loss, double.NaN))];
        var knn = HeldOutKnn.Score(trainer.Teacher.Backbone, trainer.Device, images, Split, side, cancellationToken);
        return
        [
            (AutomlTrial.ScoreMetric, knn.Top1),
            (AutomlTrial.KnnTop1Metric, knn.Top1),
            ("automl_knn_top5", knn.Top5),
            ("automl_held_out_images", knn.Queries),
        ];
    }
}
