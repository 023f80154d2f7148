using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Inference;
using NvDinoPipeline.Inference.Pipeline;
using NvDinoPipeline.Model.Scoring;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Evaluation;

/// <summary>
/// Scores the deployed model on the labelled test images: weighted k-NN (k = 20, cosine, DINO's protocol) and a linear
/// probe, each next to raw pixels and the same network at random initialisation; writes <c>evaluation.json</c> and
/// records the figures as the job's metrics. Test images without labels are not an error: the job completes and says so.
/// </summary>
public sealed class EvaluationRunner(
    IArtifactStore store,
    DeployedModelLoader loader,
    IOptions<InferenceOptions> options,
    ILogger<EvaluationRunner> logger) : IStageRunner<EvaluateModel, ModelEvaluated>
{
    public async Task<StageResult<ModelEvaluated>> RunAsync(EvaluateModel command, StageContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(context);
        var started = Stopwatch.StartNew();
        var spec = EvaluationSpec.From(context.Spec);
        var scratch = context.ScratchDirectory;
        using var testSource = await InputImages.OpenAsync(store, LocationForm.Absolute(command.TestDatasetUri), scratch, options.Value, cancellationToken);
        var testCsv = spec.TestLabels is { } testLabels
            ? await ImageLabels.ReadCsvAsync(store, testLabels, "evaluate.test_labels", scratch, cancellationToken)
            : null;
        var test = ImageLabels.Of(testSource, testCsv, spec.TestLabels ?? "");
        if (testCsv is not null && test.Count == 0)
        {
            throw new StageInputException(
                $"evaluate.test_labels: '{spec.TestLabels}' names none of the {testSource.Count} test images of {command.TestDatasetUri} " +
                $"(input_path is the path as staged, such as '{(testSource.Count > 0 ? testSource.PathOf(0) : "")}').");
        }
        if (test.Classes.Count < 2)
        {
            var reason = test.Count == 0
                ? $"the {testSource.Count} test images carry no labels (no class folders, and evaluate.test_labels names no CSV)"
                : $"the labelled test images are all of one class ('{test.Classes[0]}'); accuracy needs at least two";
            return await NotEvaluatedAsync(command, context, reason, cancellationToken);
        }

        using var trainSource = spec.Gallery == GalleryChoice.Test
            ? null
            : await InputImages.OpenAsync(store, LocationForm.Absolute(command.TrainDatasetUri), scratch, options.Value, cancellationToken);
        var (gallery, galleryWhy) = trainSource is null ? (null, "evaluate.gallery is test") : await TrainGalleryAsync(spec, trainSource, test, scratch, cancellationToken);
        if (gallery is null && spec.Gallery == GalleryChoice.Train)
        {
            throw new StageInputException($"evaluate.gallery is train, but {galleryWhy}.");
        }
        var leaveOneOut = gallery is null;
        test = test.Take(spec.MaxTestImages);
        gallery = gallery?.Take(spec.MaxGalleryImages);
        var classes = test.Classes.Union(gallery?.Classes ?? []).Order(StringComparer.Ordinal).ToList();
        var classIndex = classes.Select((name, i) => (name, i)).ToDictionary(p => p.name, p => p.i, StringComparer.Ordinal);
        logger.LogInformation(
            "Evaluating job {JobId} of pipeline {PipelineId}: {TestImages} labelled test images ({Classes} classes, labels from {LabelsFrom}), gallery {Gallery}",
            command.JobId, command.PipelineId, test.Count, classes.Count, test.From, leaveOneOut ? $"the test images (leave-one-out; {galleryWhy})" : $"{gallery!.Count} training images");

        await context.ReportNowAsync(new StageProgress(0.02, $"loading model {command.DeployArtifactUri}"), cancellationToken);
        using var model = await loader.LoadAsync(new DeployedModelReference(command.Target, command.DeployArtifactUri, command.ModelMetadataUri),
            spec.ExecutionProvider, scratch, cancellationToken);
        var (network, randomDescription) = FeatureExtractor.RandomNetwork(model.Metadata.Backbone);
        using var extractor = new FeatureExtractor(model, network);
        var total = test.Count + (gallery?.Count ?? 0);
        var done = 0;
        Task Progress(int images) => context.ReportAsync(new StageProgress(0.05 + 0.8 * (done + images) / total, $"{done + images}/{total} images embedded"), cancellationToken);
        var testFeatures = await extractor.ExtractAsync(testSource, test.Indices, spec.BatchSize, Progress, cancellationToken);
        done = test.Count;
        var galleryFeatures = gallery is null ? null : await extractor.ExtractAsync(trainSource!, gallery.Indices, spec.BatchSize, Progress, cancellationToken);
        var embeddingSeconds = started.Elapsed.TotalSeconds;
        Warn(command, testFeatures);
        if (galleryFeatures is not null)
        {
            Warn(command, galleryFeatures);
        }
        var testLabelIds = testFeatures.Kept.Select(p => classIndex[test.Labels[p]]).ToList();
        var galleryLabelIds = galleryFeatures?.Kept.Select(p => classIndex[gallery!.Labels[p]]).ToList();
        if (testLabelIds.Count < 2 || (galleryLabelIds is not null && galleryLabelIds.Count < 1))
        {
            throw new StageInputException($"Too few labelled images could be read to score: {testLabelIds.Count} test images and {galleryLabelIds?.Count ?? 0} gallery images.");
        }

        var results = new Dictionary<string, FeatureScores>(StringComparer.Ordinal);
        string? probeProtocol = null;
        // One set at a time: the centred pixels, a copy of the largest features, exist only while they are scored.
        var setCount = testFeatures.RandomInit is null ? 3 : 4;
        foreach (var (name, testSet, gallerySet) in FeatureSets(testFeatures, galleryFeatures))
        {
            await context.ReportNowAsync(new StageProgress(0.87 + 0.12 * results.Count / setCount,
                $"scoring {name} ({results.Count + 1} of {setCount} feature sets)"), cancellationToken);
            var (score, protocol) = Score(spec, testSet, testLabelIds, gallerySet, galleryLabelIds, classes.Count);
            results[name] = score;
            probeProtocol ??= protocol;
        }
        var report = new EvaluationReport
        {
            Evaluated = true,
            DeployArtifactUri = command.DeployArtifactUri.ToString(),
            TestDatasetUri = command.TestDatasetUri.ToString(),
            Test = new ImageSetReport(command.TestDatasetUri.ToString(), testSource.Count, test.Count, testLabelIds.Count, testFeatures.Failures.Count, test.From),
            Gallery = gallery is null ? null : new ImageSetReport(command.TrainDatasetUri.ToString(), trainSource!.Count, gallery.Count, galleryLabelIds!.Count,
                galleryFeatures!.Failures.Count, gallery.From),
            GallerySource = leaveOneOut ? "test (leave-one-out)" : "train",
            Classes = classes,
            KnnK = spec.K,
            KnnTemperature = spec.Temperature,
            LinearProbeProtocol = probeProtocol,
            Results = results,
            RandomInit = randomDescription,
            ExecutionProvider = model.ExecutionProvider.Name,
            Seconds = Math.Round(started.Elapsed.TotalSeconds, 3),
            EmbeddingSeconds = Math.Round(embeddingSeconds, 3),
        };
        var uri = await WriteAsync(context, report, cancellationToken);
        var deployed = results["deployed"];
        var summary = string.Create(CultureInfo.InvariantCulture,
            $"k-NN top-1 {deployed.KnnTop1:P1} (raw pixels {results["raw_pixels"].KnnTop1:P1}, centred {results["raw_pixels_centred"].KnnTop1:P1}, random init {(results.TryGetValue("random_init", out var r) ? r.KnnTop1.ToString("P1", CultureInfo.InvariantCulture) : "n/a")}), " +
            $"linear probe {(deployed.LinearProbeTop1 is { } p ? p.ToString("P1", CultureInfo.InvariantCulture) : "n/a")} on {testLabelIds.Count} test images");
        logger.LogInformation("Job {JobId} of pipeline {PipelineId}: {Summary}", command.JobId, command.PipelineId, summary);
        await context.ReportNowAsync(new StageProgress(1, summary), cancellationToken);

        var metrics = new Dictionary<string, double>
        {
            ["evaluated"] = 1,
            ["test_images"] = testLabelIds.Count,
            ["gallery_images"] = galleryLabelIds?.Count ?? testLabelIds.Count,
            ["classes"] = classes.Count,
            ["seconds"] = report.Seconds.Value,
            ["embedding_seconds"] = report.EmbeddingSeconds.Value,
        };
        foreach (var (name, scores) in results)
        {
            var prefix = name == "deployed" ? "" : name + "_";
            metrics[prefix + "knn_top1"] = Math.Round(scores.KnnTop1, 4);
            metrics[prefix + "knn_top5"] = Math.Round(scores.KnnTop5, 4);
            if (name == "deployed")
            {
                metrics["embedding_std_min"] = scores.NormalisedStdMin ?? 0;
                metrics["embedding_std_median"] = scores.NormalisedStdMedian ?? 0;
            }
            if (scores.LinearProbeTop1 is { } probe)
            {
                metrics[prefix + "linear_probe_top1"] = Math.Round(probe, 4);
            }
        }
        var completed = new ModelEvaluated
        {
            PipelineId = command.PipelineId,
            JobId = command.JobId,
            ParentJobId = command.ParentJobId,
            EvaluationUri = uri,
            Evaluated = true,
            KnnTop1 = deployed.KnnTop1,
            LinearProbeTop1 = deployed.LinearProbeTop1,
        };
        return new StageResult<ModelEvaluated>(completed, new Dictionary<string, Uri> { ["evaluation"] = uri }, metrics) { Summary = summary };
    }

    /// <summary>The labelled training images as the gallery, or null with the reason they cannot be.</summary>
    private async Task<(LabelledImages? Gallery, string Why)> TrainGalleryAsync(EvaluationSpec spec, IImageSource trainSource, LabelledImages test,
        string scratch, CancellationToken cancellationToken)
    {
        var csv = spec.TrainLabels is { } trainLabels
            ? await ImageLabels.ReadCsvAsync(store, trainLabels, "evaluate.train_labels", scratch, cancellationToken)
            : null;
        var train = ImageLabels.Of(trainSource, csv, spec.TrainLabels ?? "");
        if (train.Classes.Count < 2)
        {
            return (null, $"the {trainSource.Count} training images carry labels of {train.Classes.Count} classes");
        }
        if (!train.Classes.Intersect(test.Classes, StringComparer.Ordinal).Any())
        {
            return (null, "the training images' classes are none of the test images'");
        }
        return (train, "");
    }

    private static IEnumerable<(string Name, FeatureMatrix Test, FeatureMatrix? Gallery)> FeatureSets(ImageFeatures test, ImageFeatures? gallery)
    {
        yield return ("deployed", test.Deployed, gallery?.Deployed);
        if (test.RandomInit is not null)
        {
            yield return ("random_init", test.RandomInit, gallery?.RandomInit);
        }
        yield return ("raw_pixels", test.Pixels, gallery?.Pixels);
        // Centred on the gallery's mean image (the test images' own when they are the gallery): on small centred
        // images such as Fashion-MNIST's this is the stronger pixel baseline, and what an embedding must beat.
        var means = (gallery?.Pixels ?? test.Pixels).ColumnMeans();
        yield return ("raw_pixels_centred", test.Pixels.Minus(means), gallery?.Pixels.Minus(means));
    }

    /// <summary>k-NN against the gallery (or leave-one-out), and the linear probe (gallery → test, or one half of the test images → the other).</summary>
    private static (FeatureScores Scores, string? ProbeProtocol) Score(EvaluationSpec spec, FeatureMatrix test, IReadOnlyList<int> testLabels,
        FeatureMatrix? gallery, IReadOnlyList<int>? galleryLabels, int classes)
    {
        var clock = Stopwatch.StartNew();
        var knn = gallery is null
            ? WeightedKnn.Score(test, testLabels, test, testLabels, classes, spec.K, spec.Temperature, leaveOneOut: true)
            : WeightedKnn.Score(gallery, galleryLabels!, test, testLabels, classes, spec.K, spec.Temperature, leaveOneOut: false);
        var knnSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        ProbeScore? probe = null;
        string? protocol = null;
        if (spec.LinearProbe)
        {
            if (gallery is not null && gallery.Rows >= LinearProbe.MinTrainImages)
            {
                probe = LinearProbe.Score(gallery, galleryLabels!, test, testLabels, classes);
                protocol = "trained on the gallery (L2 weight chosen on its every fifth image), scored on the test images";
            }
            else if (gallery is null && test.Rows >= 2 * LinearProbe.MinTrainImages)
            {
                var even = Enumerable.Range(0, test.Rows).Where(i => i % 2 == 0).ToList();
                var odd = Enumerable.Range(0, test.Rows).Where(i => i % 2 == 1).ToList();
                probe = LinearProbe.Score(test.Select(even), even.Select(i => testLabels[i]).ToList(), test.Select(odd), odd.Select(i => testLabels[i]).ToList(), classes);
                protocol = "trained on the even-numbered test images (L2 weight chosen on every fifth of them), scored on the odd-numbered ones";
            }
            else
            {
                protocol = $"not run: fewer than {LinearProbe.MinTrainImages} images to train it on";
            }
        }
        var probeSeconds = clock.Elapsed.TotalSeconds;
        var (stdMin, stdMedian) = test.NormalisedColumnStd();
        return (new FeatureScores
        {
            Dimension = test.Dimension,
            NormalisedStdMin = Math.Round(stdMin, 5),
            NormalisedStdMedian = Math.Round(stdMedian, 5),
            KnnTop1 = knn.Top1,
            KnnTop5 = knn.Top5,
            LinearProbeTop1 = probe?.Top1,
            LinearProbeWeightDecay = probe?.WeightDecay,
            LinearProbeValidationTop1 = probe?.ValidationTop1,
            KnnSeconds = Math.Round(knnSeconds, 3),
            LinearProbeSeconds = probe is null ? null : Math.Round(probeSeconds, 3),
        }, protocol);
    }

    private async Task<StageResult<ModelEvaluated>> NotEvaluatedAsync(EvaluateModel command, StageContext context, string reason, CancellationToken cancellationToken)
    {
        logger.LogWarning("Job {JobId} of pipeline {PipelineId} scores nothing: {Reason}", command.JobId, command.PipelineId, reason);
        await context.ReportNowAsync(new StageProgress(1, $"not scored: {reason}"), cancellationToken);
        var report = new EvaluationReport
        {
            Evaluated = false,
            Reason = reason,
            DeployArtifactUri = command.DeployArtifactUri.ToString(),
            TestDatasetUri = command.TestDatasetUri.ToString(),
        };
        var uri = await WriteAsync(context, report, cancellationToken);
        var completed = new ModelEvaluated
        {
            PipelineId = command.PipelineId,
            JobId = command.JobId,
            ParentJobId = command.ParentJobId,
            EvaluationUri = uri,
            Evaluated = false,
            Reason = reason,
        };
        return new StageResult<ModelEvaluated>(completed, new Dictionary<string, Uri> { ["evaluation"] = uri }, new Dictionary<string, double> { ["evaluated"] = 0 })
        {
            Summary = $"not scored: {reason}",
        };
    }

    private async Task<Uri> WriteAsync(StageContext context, EvaluationReport report, CancellationToken cancellationToken)
    {
        var path = Path.Combine(context.ScratchDirectory, EvaluationReport.FileName);
        await File.WriteAllTextAsync(path, report.ToJson(), cancellationToken);
        return (await store.PutFileAsync(context.Output(EvaluationReport.FileName), path, cancellationToken)).Uri;
    }

    private void Warn(EvaluateModel command, ImageFeatures features)
    {
        foreach (var (path, reason) in features.Failures)
        {
            logger.LogWarning("Image {InputPath} of job {JobId} is not scored: {Reason}", path, command.JobId, reason);
        }
    }
}
