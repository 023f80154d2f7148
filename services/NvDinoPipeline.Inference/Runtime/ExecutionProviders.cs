using Microsoft.ML.OnnxRuntime;

namespace NvDinoPipeline.Inference;

/// <summary>The ONNX Runtime execution providers the worker can run a model on, best first.</summary>
public enum ExecutionProviderKind
{
    TensorRt,
    Cuda,
    Cpu,
}

/// <summary>The choice of the execution provider: what was asked for, what this ONNX Runtime build has, what runs.</summary>
public sealed record ExecutionProviderChoice(ExecutionProviderKind Kind, string Requested, IReadOnlyList<string> Available, string Reason)
{
    /// <summary>The spec's name of the provider that runs: <c>tensorrt</c>, <c>cuda</c> or <c>cpu</c>.</summary>
    public string Name => ExecutionProviders.NameOf(Kind);
}

public static class ExecutionProviders
{
    public const string Auto = "auto";
    public const string TensorRtProvider = "TensorrtExecutionProvider";
    public const string CudaProvider = "CUDAExecutionProvider";
    public const string CpuProvider = "CPUExecutionProvider";

    /// <summary>Values of <c>inference.execution_provider</c> and <c>Inference:ExecutionProvider</c>.</summary>
    public static readonly IReadOnlySet<string> Names = new HashSet<string>(StringComparer.Ordinal) { Auto, "tensorrt", "cuda", "cpu" };

    /// <summary>The providers compiled into the ONNX Runtime this process loaded.</summary>
    public static IReadOnlyList<string> Available() => OrtEnv.Instance().GetAvailableProviders();

    public static string NameOf(ExecutionProviderKind kind) => kind switch
    {
        ExecutionProviderKind.TensorRt => "tensorrt",
        ExecutionProviderKind.Cuda => "cuda",
        ExecutionProviderKind.Cpu => "cpu",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    public static string ProviderOf(ExecutionProviderKind kind) => kind switch
    {
        ExecutionProviderKind.TensorRt => TensorRtProvider,
        ExecutionProviderKind.Cuda => CudaProvider,
        ExecutionProviderKind.Cpu => CpuProvider,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>
    /// <c>auto</c> takes TensorRT, then CUDA, then CPU, whichever <paramref name="available"/> has; a named
    /// provider must be available.
    /// </summary>
    /// <exception cref="ExecutionProviderUnavailableException">A named provider is not in this ONNX Runtime build.</exception>
    public static ExecutionProviderChoice Select(string requested, IReadOnlyList<string> available)
    {
        ArgumentNullException.ThrowIfNull(requested);
        ArgumentNullException.ThrowIfNull(available);
        if (!Names.Contains(requested))
        {
            throw new ArgumentException($"Execution provider '{requested}' is unknown; use one of {string.Join(", ", Names)}.", nameof(requested));
        }
        var list = string.Join(", ", available);
        if (requested == Auto)
        {
            foreach (var kind in (ExecutionProviderKind[])[ExecutionProviderKind.TensorRt, ExecutionProviderKind.Cuda])
            {
                if (available.Contains(ProviderOf(kind)))
                {
                    return new(kind, requested, available, $"auto: {ProviderOf(kind)} is the best provider of this ONNX Runtime build ({list})");
                }
            }
            return new(ExecutionProviderKind.Cpu, requested, available,
                $"auto: this ONNX Runtime build has neither TensorRT nor CUDA (it has {list}); running on the CPU");
        }
        var named = requested switch
        {
            "tensorrt" => ExecutionProviderKind.TensorRt,
            "cuda" => ExecutionProviderKind.Cuda,
            _ => ExecutionProviderKind.Cpu,
        };
        if (named != ExecutionProviderKind.Cpu && !available.Contains(ProviderOf(named)))
        {
            throw new ExecutionProviderUnavailableException(
                $"Execution provider '{requested}' was asked for, but this ONNX Runtime build has only {list}. "
                + $"Run on a host with a GPU and the GPU build of ONNX Runtime, or set inference.execution_provider=auto (or cpu).");
        }
        return new(named, requested, available, $"{requested} was asked for and {ProviderOf(named)} is available");
    }
}

/// <summary>A named execution provider is missing from this ONNX Runtime build (no GPU build, no TensorRT).</summary>
public sealed class ExecutionProviderUnavailableException(string message) : Exception(message);
