using NvDinoPipeline.Onnx.EpContext;

namespace NvDinoPipeline.Inference;

/// <summary>
/// Whether a prebuilt TensorRT engine can run on this host. TensorRT deserialises an engine only in the release that
/// built it, and only for the compute capability it was built for; another GPU model of that capability runs it with
/// kernels tuned for the other model, which TensorRT warns may be slow or wrong, so that is refused unless allowed.
/// </summary>
public static class EngineCompatibility
{
    /// <returns>Null when the engine fits; else why not, naming what the engine was built for and what this host has.</returns>
    public static string? Refusal(TensorRtEngineContext engine, TensorRtHostInfo host, bool allowOtherGpuModel)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(host);
        if (host is not { TensorRtVersion: { } version, Gpu: { } gpu, ComputeCapability: { } capability })
        {
            return $"this host's TensorRT and GPU could not be determined ({string.Join("; ", host.Problems)})";
        }

        if (!TensorRtVersion.SameRelease(engine.TensorRtVersion, version))
        {
            return $"it was built by TensorRT {engine.TensorRtVersion} and this host has TensorRT {version}; an engine loads only in the TensorRT release that built it";
        }

        if (engine.ComputeCapability != capability)
        {
            return $"it was built for compute capability {engine.ComputeCapability} ({engine.Gpu}) and this host's GPU is {gpu} with compute capability {capability}";
        }

        if (engine.Gpu != gpu && !allowOtherGpuModel)
        {
            return $"it was built on {engine.Gpu} and this host's GPU is {gpu} (the same compute capability {capability}: " +
                "Inference:AllowEngineOnOtherGpuModel=true runs it anyway, with kernels TensorRT chose for the other model)";
        }

        return null;
    }
}
