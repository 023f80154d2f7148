using NvDinoPipeline.Specs;

namespace NvDinoPipeline.Evaluation;

/// <summary>Which images serve as the k-NN gallery and the probe's training set.</summary>
public enum GalleryChoice
{
    /// <summary>The labelled training images when they share classes with the test images, else the test images.</summary>
    Auto,
    Train,
    Test,
}

/// <summary>The <c>evaluate.*</c> keys of a job's spec (checked by the spec rules when the pipeline started).</summary>
public sealed record EvaluationSpec
{
    public int K { get; init; } = 20;

    public double Temperature { get; init; } = 0.07;

    public bool LinearProbe { get; init; } = true;

    public GalleryChoice Gallery { get; init; } = GalleryChoice.Auto;

    public string? TestLabels { get; init; }

    public string? TrainLabels { get; init; }

    /// <summary>0: every image.</summary>
    public int MaxTestImages { get; init; }

    /// <summary>0: every image.</summary>
    public int MaxGalleryImages { get; init; }

    public int BatchSize { get; init; } = 32;

    /// <summary><c>inference.execution_provider</c>: the deployed model runs where inference ran it.</summary>
    public string ExecutionProvider { get; init; } = "auto";

    public static EvaluationSpec From(ResolvedSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var defaults = new EvaluationSpec();
        return new EvaluationSpec
        {
            K = spec.TryGet<int>("evaluate.knn.k", out var k) ? k : defaults.K,
            Temperature = spec.TryGet<double>("evaluate.knn.temperature", out var t) ? t : defaults.Temperature,
            LinearProbe = !spec.TryGet<bool>("evaluate.linear_probe", out var probe) || probe,
            Gallery = spec.TryGet<string>("evaluate.gallery", out var gallery) ? Enum.Parse<GalleryChoice>(gallery, ignoreCase: true) : GalleryChoice.Auto,
            TestLabels = spec.TryGet<string?>("evaluate.test_labels", out var testLabels) && testLabels is { Length: > 0 } ? testLabels : null,
            TrainLabels = spec.TryGet<string?>("evaluate.train_labels", out var trainLabels) && trainLabels is { Length: > 0 } ? trainLabels : null,
            MaxTestImages = spec.TryGet<int>("evaluate.max_test_images", out var maxTest) ? maxTest : 0,
            MaxGalleryImages = spec.TryGet<int>("evaluate.max_gallery_images", out var maxGallery) ? maxGallery : 0,
            BatchSize = spec.TryGet<int>("evaluate.batch_size", out var batch) ? batch : defaults.BatchSize,
            ExecutionProvider = spec.TryGet<string>("inference.execution_provider", out var provider) ? provider : defaults.ExecutionProvider,
        };
    }
}
