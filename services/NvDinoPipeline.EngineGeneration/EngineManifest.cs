using System.Text.Json;
using System.Text.Json.Serialization;

namespace NvDinoPipeline.EngineGeneration;

/// <summary>
/// <c>engine.json</c>, written beside every deploy artifact (and beside a rejected one, with <see cref="Accepted"/>
/// false): what was built, from which model, with which tools, and how closely it follows ONNX Runtime fp32.
/// </summary>
public sealed record EngineManifest
{
    public const string CurrentFormat = "nvdino.engine/1";
    public const string FileName = "engine.json";

    public string Format { get; init; } = CurrentFormat;

    /// <summary><c>tensorrt</c> or <c>onnxruntime</c>.</summary>
    public required string Target { get; init; }

    /// <summary><c>fp32</c>, <c>fp16</c> or <c>int8</c>.</summary>
    public required string Precision { get; init; }

    /// <summary>The artifact: a serialised TensorRT engine, or ONNX Runtime's optimised model.</summary>
    public required string ArtifactUri { get; init; }

    /// <summary>The ONNX model the artifact was built from (the Q/DQ model for int8), beside this file.</summary>
    public required string OnnxFile { get; init; }

    /// <summary>True when the artifact met its fidelity bound and was published.</summary>
    public required bool Accepted { get; init; }

    public required EngineProfile Profile { get; init; }

    public required EngineSource Source { get; init; }

    public TensorRtBuild? TensorRt { get; init; }

    public OnnxRuntimeBuild? OnnxRuntime { get; init; }

    public CalibrationSummary? Calibration { get; init; }

    public required FidelitySummary Fidelity { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static EngineManifest FromJson(string json, string source)
    {
        try
        {
            var manifest = JsonSerializer.Deserialize<EngineManifest>(json, Json) ?? throw new InvalidDataException($"Engine manifest '{source}' is empty.");
            return manifest.Format == CurrentFormat
                ? manifest
                : throw new InvalidDataException($"Engine manifest '{source}' has format '{manifest.Format}'; this version reads '{CurrentFormat}'.");
        }
        catch (JsonException exception)
        {
            throw new InvalidDataException($"Engine manifest '{source}' is not valid JSON: {exception.Message}", exception);
        }
    }
}

/// <summary>The input shapes the artifact serves: batches min..max (opt tuned for), at Height×Width.</summary>
public sealed record EngineProfile(string InputName, int MinBatchSize, int OptBatchSize, int MaxBatchSize, int Height, int Width);

public sealed record EngineSource(string OnnxUri, string OnnxSha256, string ModelMetadataUri);

public sealed record TensorRtBuild
{
    public string? Version { get; init; }

    public string? Gpu { get; init; }

    public string? ComputeCapability { get; init; }

    /// <summary>SHA-256 of the serialised engine; the EP-context model records the same, and inference checks it.</summary>
    public string? EngineSha256 { get; init; }

    /// <summary>The EP-context model (<c>model_ctx.onnx</c>) through which ONNX Runtime's TensorRT provider loads this engine.</summary>
    public string? EpContextModelUri { get; init; }

    public required string Trtexec { get; init; }

    public required IReadOnlyList<string> Arguments { get; init; }

    public required int WorkspaceMiB { get; init; }

    /// <summary>The per-layer constraints the engine was built with.</summary>
    public required IReadOnlyList<string> LayersPrecision { get; init; }

    /// <summary>True when <see cref="LayersPrecision"/> is fp16's default (LayerNormalization and Softmax in fp32), not the spec's list.</summary>
    public bool LayersPrecisionDefault { get; init; }

    /// <summary>int8: what carried the project's calibration into TensorRT (<c>qdq_model</c>: explicit quantisation).</summary>
    public string? Int8Input { get; init; }

    /// <summary>int8: the same ranges in TensorRT's calibration-cache format (for trtexec <c>--calib</c> or ONNX Runtime's native calibration table).</summary>
    public string? Int8CalibrationCacheUri { get; init; }

    public required string TimingCacheUri { get; init; }

    public required string BuildLogUri { get; init; }

    public string? VerifyLogUri { get; init; }

    public required double BuildSeconds { get; init; }
}

public sealed record OnnxRuntimeBuild(string Version, string OptimizationLevel, string ExecutionProvider);

public sealed record CalibrationSummary
{
    public required string Method { get; init; }

    public double? Percentile { get; init; }

    public required int Images { get; init; }

    public required int Batches { get; init; }

    public required string Source { get; init; }

    public required string CacheUri { get; init; }

    /// <summary>True when the ranges came from an existing <c>cal_cache_file</c> instead of a new calibration.</summary>
    public required bool FromCache { get; init; }

    public required int QuantizedNodes { get; init; }

    public required IReadOnlyList<string> KeptInFloat { get; init; }

    public required double Seconds { get; init; }

    /// <summary>The spec's method when another one's ranges were kept (<c>EngineGeneration:CalibrationFallback</c>).</summary>
    public string? RequestedMethod { get; init; }

    /// <summary>Each method's Q/DQ model checked on the held-out images before the build, in the order tried (empty when none was).</summary>
    public IReadOnlyList<CalibrationAttempt> Attempts { get; init; } = [];
}

/// <summary>One calibration method's Q/DQ model against ONNX Runtime fp32 on the verification images.</summary>
public sealed record CalibrationAttempt(string Method, double? Percentile, double MeanCosine, double MinCosine, bool Passed);

public sealed record FidelitySummary
{
    /// <summary>What the artifact was compared to.</summary>
    public string Reference { get; init; } = "ONNX Runtime fp32 (CPU) on the source model";

    public required string Images { get; init; }

    public required int ImageCount { get; init; }

    /// <summary>False when the images were also used for calibration (a dataset of one image).</summary>
    public required bool HeldOut { get; init; }

    public required double MeanCosine { get; init; }

    public required double MinCosine { get; init; }

    public required double MaxAbsError { get; init; }

    /// <summary><c>min_cosine</c> (fp32, fp16) or <c>mean_cosine</c> (int8).</summary>
    public required string Bound { get; init; }

    public required double BoundValue { get; init; }

    public required bool Passed { get; init; }
}
