using System.Globalization;

namespace NvDinoPipeline.Onnx.EpContext;

/// <summary>
/// What an EP-context model says about the serialised TensorRT engine it points to: where the engine is, which
/// model it was built from, and the TensorRT version and GPU it was built for (an engine runs only there).
/// </summary>
public sealed record TensorRtEngineContext
{
    /// <summary>The engine file, relative to the EP-context model's folder (<c>ep_cache_context</c>).</summary>
    public required string EngineFile { get; init; }

    /// <summary>Lower-case hex SHA-256 of the engine file the context was written for.</summary>
    public required string EngineSha256 { get; init; }

    /// <summary>The ONNX model the engine was built from, relative to the EP-context model (<c>onnx_model_filename</c>).</summary>
    public required string SourceOnnxFile { get; init; }

    /// <summary>major.minor.patch of the TensorRT that built the engine (<c>ep_sdk_version</c>).</summary>
    public required string TensorRtVersion { get; init; }

    /// <summary>The building GPU's name as CUDA reports it, e.g. <c>NVIDIA A100-SXM4-40GB</c>.</summary>
    public required string Gpu { get; init; }

    /// <summary>The building GPU's compute capability, e.g. <c>8.0</c>.</summary>
    public required string ComputeCapability { get; init; }

    /// <summary><c>fp32</c>, <c>fp16</c> or <c>int8</c>.</summary>
    public required string Precision { get; init; }

    /// <summary>
    /// The compute capability as ONNX Runtime's TensorRT provider writes and compares <c>hardware_architecture</c>:
    /// major·10 + minor (<c>8.6</c> → <c>86</c>).
    /// </summary>
    public static string HardwareArchitecture(string computeCapability)
    {
        var (major, minor) = ParseComputeCapability(computeCapability);
        return (major * 10 + minor).ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>The inverse of <see cref="HardwareArchitecture"/>: the last digit is the minor version (<c>120</c> → <c>12.0</c>).</summary>
    public static string ComputeCapabilityOf(string hardwareArchitecture)
    {
        if (hardwareArchitecture.Length < 2 || !hardwareArchitecture.All(char.IsAsciiDigit))
        {
            throw new FormatException($"'{hardwareArchitecture}' is not a compute capability written as major·10 + minor (e.g. 86).");
        }

        return $"{hardwareArchitecture[..^1]}.{hardwareArchitecture[^1]}";
    }

    public static (int Major, int Minor) ParseComputeCapability(string computeCapability)
    {
        var parts = computeCapability.Split('.');
        if (parts.Length != 2
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var major)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var minor)
            || parts[1].Length != 1)
        {
            throw new FormatException($"'{computeCapability}' is not a CUDA compute capability such as 8.6.");
        }

        return (major, minor);
    }
}
