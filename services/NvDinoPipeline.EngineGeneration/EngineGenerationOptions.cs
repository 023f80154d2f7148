using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace NvDinoPipeline.EngineGeneration;

/// <summary>Host settings of the engine generation worker, bound to the configuration section <c>EngineGeneration</c>.</summary>
public sealed class EngineGenerationOptions
{
    public const string SectionName = "EngineGeneration";

    /// <summary>Absolute path of <c>trtexec</c>. Unset: <c>PATH</c>, then <see cref="TrtexecSearchDirectories"/> are searched.</summary>
    public string? TrtexecPath { get; set; }

    /// <summary>Folders searched for <c>trtexec</c> after <c>PATH</c> (where TensorRT's containers and packages put it).</summary>
    public List<string> TrtexecSearchDirectories { get; set; } = ["/usr/src/tensorrt/bin", "/opt/tensorrt/bin", "/usr/local/tensorrt/bin"];

    /// <summary>Longest one trtexec run (an engine build or its verification run) may take.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "7.00:00:00")]
    public TimeSpan TrtexecTimeout { get; set; } = TimeSpan.FromHours(2);

    /// <summary>
    /// ONNX Runtime graph optimisation baked into the <c>onnxruntime</c> artifact: <c>basic</c>, <c>extended</c>
    /// (fusions, the int8 kernels; portable across x86 hosts) or <c>all</c> (adds layout changes tied to this CPU).
    /// </summary>
    [Required]
    [RegularExpression("^(basic|extended|all)$", ErrorMessage = "EngineGeneration:OnnxRuntimeOptimization must be basic, extended or all.")]
    public string OnnxRuntimeOptimization { get; set; } = "extended";

    /// <summary>Images the built artifact is checked on against ONNX Runtime fp32 (held out from calibration).</summary>
    [Range(1, 4096)]
    public int VerificationImages { get; set; } = 32;

    /// <summary>Least cosine of any fp32 artifact's embedding to the reference (TensorRT's fp32 uses TF32 on Ampere and later).</summary>
    [Range(0.0, 1.0)]
    public double MinCosineFp32 { get; set; } = 0.999;

    /// <summary>Least cosine of any fp16 engine's embedding to the reference.</summary>
    [Range(0.0, 1.0)]
    public double MinCosineFp16 { get; set; } = 0.999;

    /// <summary>Least mean cosine of an int8 artifact's embeddings to the reference on held-out images.</summary>
    [Range(0.0, 1.0)]
    public double MinMeanCosineInt8 { get; set; } = 0.99;

    /// <summary>ONNX Runtime threads per operator for calibration and verification; 0 uses every core.</summary>
    [Range(0, 1024)]
    public int IntraOpThreads { get; set; }

    /// <summary>Intermediate tensors fetched from one calibration run, in MiB; bigger models take several runs per batch.</summary>
    [Range(64, 1 << 20)]
    public int CalibrationMemoryBudgetMiB { get; set; } = 2048;

    /// <summary>Histogram bins of the percentile and entropy calibration methods.</summary>
    [Range(128, 1 << 16)]
    public int HistogramBins { get; set; } = 2048;

    /// <summary>
    /// When the spec's calibration method gives a Q/DQ model below <see cref="MinMeanCosineInt8"/> on the held-out
    /// images, try the other methods (percentile, minmax, entropy, in that order) on the same calibration run and
    /// keep the first that passes; <c>engine.json</c> records what was asked, what was tried and what was kept.
    /// False fails the job with the spec's method instead.
    /// </summary>
    public bool CalibrationFallback { get; set; } = true;
}

internal sealed class EngineGenerationOptionsValidator : IValidateOptions<EngineGenerationOptions>
{
    public ValidateOptionsResult Validate(string? name, EngineGenerationOptions options)
    {
        var failures = new List<string>();
        if (options.TrtexecPath is { Length: > 0 } path && !Path.IsPathFullyQualified(path))
        {
            failures.Add($"EngineGeneration:TrtexecPath '{path}' must be an absolute path.");
        }

        foreach (var folder in options.TrtexecSearchDirectories)
        {
            if (string.IsNullOrWhiteSpace(folder) || !Path.IsPathFullyQualified(folder))
            {
                failures.Add($"EngineGeneration:TrtexecSearchDirectories entry '{folder}' must be an absolute path.");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
