using Microsoft.ML.OnnxRuntime;

namespace NvDinoPipeline.EngineGeneration.OnnxRuntime;

/// <summary>
/// The <c>onnxruntime</c> deploy artifact: the model as ONNX Runtime optimised it for this host
/// (<see cref="SessionOptions.OptimizedModelFilePath"/>), so inference loads the fused graph (for an int8 model,
/// the integer MatMul kernels) without redoing the work.
/// </summary>
public static class OnnxRuntimeArtifact
{
    /// <summary>Above this, the optimised model's initializers go to an external data file beside it (protobuf caps a file at 2 GiB).</summary>
    public const long ExternalDataThresholdBytes = 1_800_000_000;

    public static string Version => OrtEnv.Instance().GetVersionString();

    public static GraphOptimizationLevel ParseLevel(string level) => level switch
    {
        "basic" => GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended" => GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all" => GraphOptimizationLevel.ORT_ENABLE_ALL,
        _ => throw new ArgumentException($"ONNX Runtime optimisation level '{level}' is not known; use basic, extended or all.", nameof(level)),
    };

    /// <summary>Writes the optimised form of <paramref name="sourcePath"/> to <paramref name="destinationPath"/>; returns the files written.</summary>
    public static IReadOnlyList<string> Write(string sourcePath, string destinationPath, GraphOptimizationLevel level, int intraOpThreads)
    {
        File.Delete(destinationPath);
        var dataFile = destinationPath + ".data";
        File.Delete(dataFile);
        var sourceBytes = new FileInfo(sourcePath).Length + (File.Exists(sourcePath + ".data") ? new FileInfo(sourcePath + ".data").Length : 0);
        using var options = new SessionOptions
        {
            GraphOptimizationLevel = level,
            OptimizedModelFilePath = destinationPath,
            IntraOpNumThreads = intraOpThreads,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        if (sourceBytes > ExternalDataThresholdBytes)
        {
            options.AddSessionConfigEntry("session.optimized_model_external_initializers_file_name", Path.GetFileName(dataFile));
            options.AddSessionConfigEntry("session.optimized_model_external_initializers_min_size_in_bytes", "1024");
        }

        using (new InferenceSession(sourcePath, options))
        {
        }

        if (!File.Exists(destinationPath))
        {
            throw new InvalidOperationException($"ONNX Runtime wrote no optimised model at '{destinationPath}'.");
        }

        return File.Exists(dataFile) ? [destinationPath, dataFile] : [destinationPath];
    }
}
