using System.Text.Json;
using System.Text.Json.Serialization;

namespace NvDinoPipeline.Evaluation;

/// <summary><c>evaluation.json</c>: every figure of an evaluation and what it was measured on.</summary>
public sealed record EvaluationReport
{
    public const string CurrentFormat = "nvdino.evaluation/1";

    public const string FileName = "evaluation.json";

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string Format { get; init; } = CurrentFormat;

    /// <summary>False when the test images carry no labels; <see cref="Reason"/> says why and nothing else is filled.</summary>
    public required bool Evaluated { get; init; }

    public string? Reason { get; init; }

    public required string DeployArtifactUri { get; init; }

    public required string TestDatasetUri { get; init; }

    public ImageSetReport? Test { get; init; }

    public ImageSetReport? Gallery { get; init; }

    /// <summary><c>train</c>: labelled training images; <c>test (leave-one-out)</c>: the test images themselves.</summary>
    public string? GallerySource { get; init; }

    public IReadOnlyList<string>? Classes { get; init; }

    public int? KnnK { get; init; }

    public double? KnnTemperature { get; init; }

    /// <summary>How the probe was trained and scored.</summary>
    public string? LinearProbeProtocol { get; init; }

    /// <summary><c>deployed</c>, <c>random_init</c>, <c>raw_pixels</c>, <c>raw_pixels_centred</c> (minus the gallery's mean image).</summary>
    public IReadOnlyDictionary<string, FeatureScores>? Results { get; init; }

    /// <summary>Why the random-initialisation baseline is missing, or what it was.</summary>
    public string? RandomInit { get; init; }

    public string? ExecutionProvider { get; init; }

    public double? Seconds { get; init; }

    /// <summary>Of <see cref="Seconds"/>: reading and embedding the images (all three feature sets).</summary>
    public double? EmbeddingSeconds { get; init; }

    public string ToJson() => JsonSerializer.Serialize(this, Json);
}

public sealed record ImageSetReport(string DatasetUri, int Images, int Labelled, int Scored, int Unreadable, string LabelsFrom);

public sealed record FeatureScores
{
    public required int Dimension { get; init; }

    public required double KnnTop1 { get; init; }

    public required double KnnTop5 { get; init; }

    public double? LinearProbeTop1 { get; init; }

    /// <summary>The L2 weight chosen on the probe's validation split, and its accuracy there.</summary>
    public double? LinearProbeWeightDecay { get; init; }

    public double? LinearProbeValidationTop1 { get; init; }

    /// <summary>
    /// Per-dimension standard deviation of the L2-normalised test features, smallest and median: all near zero means
    /// the embedding collapsed (every image maps to about the same vector).
    /// </summary>
    public double? NormalisedStdMin { get; init; }

    public double? NormalisedStdMedian { get; init; }

    /// <summary>Time the k-NN and the probe took on this feature set.</summary>
    public double? KnnSeconds { get; init; }

    public double? LinearProbeSeconds { get; init; }
}
