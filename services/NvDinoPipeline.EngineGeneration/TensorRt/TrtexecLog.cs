using System.Globalization;
using System.Text.RegularExpressions;
using NvDinoPipeline.Onnx.EpContext;

namespace NvDinoPipeline.EngineGeneration.TensorRt;

/// <summary>The TensorRT version and GPU a build ran with, as trtexec reports them.</summary>
public sealed record TensorRtBuildHost(string? TensorRtVersion, string? Gpu, string? ComputeCapability);

/// <summary>Reads what matters out of trtexec's log: versions, device, errors.</summary>
public static partial class TrtexecLog
{
    public static TensorRtBuildHost Host(IReadOnlyList<string> lines)
    {
        string? stated = null, banner = null, gpu = null, capability = null;
        foreach (var line in lines)
        {
            if (stated is null && VersionLine().Match(line) is { Success: true } v)
            {
                stated = v.Groups[1].Value;
            }

            if (banner is null && BannerVersion().Match(line) is { Success: true } b)
            {
                banner = TensorRtVersion.Decode(long.Parse(b.Groups[1].Value, CultureInfo.InvariantCulture));
            }

            if (gpu is null && DeviceLine().Match(line) is { Success: true } d)
            {
                gpu = d.Groups[1].Value.Trim();
            }

            if (capability is null && CapabilityLine().Match(line) is { Success: true } c)
            {
                capability = c.Groups[1].Value;
            }
        }

        return new TensorRtBuildHost(stated ?? banner, gpu, capability);
    }

    /// <summary>Lines trtexec marks as errors ("[E] ...").</summary>
    public static IReadOnlyList<string> Errors(IReadOnlyList<string> lines) =>
        [.. lines.Where(l => l.Contains("[E]", StringComparison.Ordinal)).Select(l => l.Trim())];

    /// <summary>True when TensorRT's ONNX parser rejected the model.</summary>
    public static bool IsParseFailure(IReadOnlyList<string> lines) => lines.Any(l =>
        l.Contains("Failed to parse onnx file", StringComparison.OrdinalIgnoreCase)
        || l.Contains("Parsing model failed", StringComparison.OrdinalIgnoreCase)
        || (l.Contains("[E]", StringComparison.Ordinal) && l.Contains("ModelImporter", StringComparison.Ordinal)));

    [GeneratedRegex(@"TensorRT version:\s*(\d+\.\d+\.\d+(?:\.\d+)?)")]
    private static partial Regex VersionLine();

    [GeneratedRegex(@"\[TensorRT v(\d+)\]")]
    private static partial Regex BannerVersion();

    [GeneratedRegex(@"Selected Device:\s*(.+)$")]
    private static partial Regex DeviceLine();

    [GeneratedRegex(@"Compute Capability:\s*(\d+\.\d+)")]
    private static partial Regex CapabilityLine();
}
