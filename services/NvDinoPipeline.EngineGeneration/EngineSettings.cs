using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Quantization;
using NvDinoPipeline.Specs;

namespace NvDinoPipeline.EngineGeneration;

/// <summary>Deploy targets: where the artifact runs.</summary>
public static class DeployTargets
{
    public const string OnnxRuntime = "onnxruntime";
    public const string TensorRt = "tensorrt";
}

/// <summary>Precisions of <c>gen_trt_engine.tensorrt.data_type</c>.</summary>
public static class Precisions
{
    public const string Fp32 = "fp32";
    public const string Fp16 = "fp16";
    public const string Int8 = "int8";

    public static bool IsKnown(string value) => value is Fp32 or Fp16 or Int8;
}

/// <summary>One <c>layers_precision</c> entry: an ONNX node (TensorRT layer) name and the precision it must run in.</summary>
public sealed record LayerPrecision(string Layer, string Precision)
{
    public override string ToString() => $"{Layer}:{Precision}";

    public static LayerPrecision Parse(string entry)
    {
        var colon = entry.LastIndexOf(':');
        if (colon <= 0 || !Precisions.IsKnown(entry[(colon + 1)..]))
        {
            throw new StageInputException($"gen_trt_engine.tensorrt.layers_precision entry '{entry}' is not \"<layer name>:<fp32|fp16|int8>\".");
        }

        var layer = entry[..colon];
        if (layer.Contains(',') || layer.Contains(':'))
        {
            throw new StageInputException(
                $"gen_trt_engine.tensorrt.layers_precision entry '{entry}' names a layer with ',' or ':', which trtexec's --layerPrecisions cannot express.");
        }

        return new LayerPrecision(layer, entry[(colon + 1)..]);
    }
}

/// <summary>The calibration section of the spec.</summary>
public sealed record CalibrationSpec(
    IReadOnlyList<string> ImageDirectories,
    string? CacheFile,
    int BatchSize,
    int Batches,
    CalibrationMethod Method,
    double Percentile);

/// <summary>What a <c>GenerateEngine</c> job builds, read from its spec (TAO's <c>gen_trt_engine</c> keys and <c>pipeline.deploy</c>).</summary>
public sealed record EngineSettings
{
    public required string Target { get; init; }

    public required string Precision { get; init; }

    public string? OnnxFile { get; init; }

    public string? TrtEngine { get; init; }

    public string? TimingCache { get; init; }

    /// <summary>-1 for a dynamic batch over the min/opt/max profile, else the one batch size the engine serves.</summary>
    public required int BatchSize { get; init; }

    public required bool Verbose { get; init; }

    /// <summary>MiB of TensorRT builder workspace; 0 leaves TensorRT's default.</summary>
    public required int WorkspaceMiB { get; init; }

    public required int MinBatchSize { get; init; }

    public required int OptBatchSize { get; init; }

    public required int MaxBatchSize { get; init; }

    public required IReadOnlyList<LayerPrecision> LayersPrecision { get; init; }

    public required CalibrationSpec Calibration { get; init; }

    public bool IsInt8 => Precision == Precisions.Int8;

    /// <summary>
    /// Reads the keys of a validated spec: allowed values, the batch profile and the precisions each target can build are
    /// checked once, by the spec rules when the pipeline starts. A missing key is a <see cref="StageInputException"/>.
    /// </summary>
    public static EngineSettings FromSpec(ResolvedSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        try
        {
            const string g = "gen_trt_engine.";
            const string t = g + "tensorrt.";
            const string c = t + "calibration.";
            var settings = new EngineSettings
            {
                Target = spec.Get<string>("pipeline.deploy.target"),
                Precision = spec.Get<string>(t + "data_type"),
                OnnxFile = NullIfEmpty(spec.Get<string?>(g + "onnx_file")),
                TrtEngine = NullIfEmpty(spec.Get<string?>(g + "trt_engine")),
                TimingCache = NullIfEmpty(spec.Get<string?>(g + "timing_cache")),
                BatchSize = spec.Get<int>(g + "batch_size"),
                Verbose = spec.Get<bool>(g + "verbose"),
                WorkspaceMiB = spec.Get<int>(t + "workspace_size"),
                MinBatchSize = spec.Get<int>(t + "min_batch_size"),
                OptBatchSize = spec.Get<int>(t + "opt_batch_size"),
                MaxBatchSize = spec.Get<int>(t + "max_batch_size"),
                LayersPrecision = [.. spec.Get<IReadOnlyList<string>>(t + "layers_precision").Select(LayerPrecision.Parse)],
                Calibration = new CalibrationSpec(
                    spec.Get<IReadOnlyList<string>>(c + "cal_image_dir"),
                    NullIfEmpty(spec.Get<string?>(c + "cal_cache_file")),
                    spec.Get<int>(c + "cal_batch_size"),
                    spec.Get<int>(c + "cal_batches"),
                    CalibrationMethods.Parse(spec.Get<string>(c + "method")),
                    spec.Get<double>(c + "percentile")),
            };
            return settings;
        }
        catch (Exception exception) when (exception is KeyNotFoundException or InvalidCastException or ArgumentException)
        {
            throw new StageInputException($"The engine spec is not usable: {exception.Message}", exception);
        }
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}
