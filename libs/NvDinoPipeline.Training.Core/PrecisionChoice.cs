using System.Diagnostics;
using System.Globalization;
using TorchSharp;

namespace NvDinoPipeline.Training.Core;

/// <summary>The precision a run computes in, and why (the spec asked for it, or what the device has).</summary>
public sealed record PrecisionChoice(TrainingPrecision Precision, string Reason)
{
    public override string ToString() => $"{Precision.ToString().ToLowerInvariant()} ({Reason})";
}

/// <summary>
/// Resolves <c>train.precision: auto</c> on the device a run trains on: bf16 where the hardware has bfloat16 matrix
/// instructions (a CPU with AVX512_BF16 or AMX-BF16; a GPU of compute capability 8.0 or later), fp32 elsewhere.
/// bf16 computes on bfloat16 copies of the networks and keeps the weights, optimizer state and EMA in float32.
/// </summary>
public static class TrainingPrecisions
{
    /// <summary>The CPU flags (as Linux's /proc/cpuinfo names them) that give libtorch bfloat16 matrix kernels.</summary>
    public static readonly IReadOnlyList<string> CpuBf16Flags = ["avx512_bf16", "amx_bf16"];

    private static readonly Lazy<IReadOnlySet<string>> CpuFlags = new(ReadCpuFlags);

    /// <param name="requested">The spec's choice; anything but <see cref="TrainingPrecision.Auto"/> is kept as asked.</param>
    /// <param name="device">The device the run trains on.</param>
    /// <param name="cpuFlags">The CPU's feature flags; null reads this machine's.</param>
    /// <param name="cudaCapability">The GPU's compute capability ("8.6"); null asks nvidia-smi.</param>
    public static PrecisionChoice Resolve(TrainingPrecision requested, torch.Device device, IReadOnlySet<string>? cpuFlags = null,
        string? cudaCapability = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (requested != TrainingPrecision.Auto)
            return new PrecisionChoice(requested, "train.precision");
        if (device.type == DeviceType.CUDA)
        {
            var capability = cudaCapability ?? CudaCapability(device.index < 0 ? 0 : device.index);
            if (capability is null)
                return new PrecisionChoice(TrainingPrecision.Fp32, "auto: the GPU's compute capability could not be read (nvidia-smi)");
            return double.TryParse(capability, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value >= 8.0
                ? new PrecisionChoice(TrainingPrecision.Bf16, $"auto: the GPU has compute capability {capability}, with bfloat16 tensor cores")
                : new PrecisionChoice(TrainingPrecision.Fp32, $"auto: the GPU has compute capability {capability}, below 8.0, without bfloat16 tensor cores");
        }
        var flags = cpuFlags ?? CpuFlags.Value;
        return CpuBf16Flags.FirstOrDefault(flags.Contains) is { } flag
            ? new PrecisionChoice(TrainingPrecision.Bf16, $"auto: the CPU has {flag.ToUpperInvariant()}")
            : new PrecisionChoice(TrainingPrecision.Fp32, $"auto: the CPU has no bfloat16 matrix instructions ({string.Join(", ", CpuBf16Flags.Select(f => f.ToUpperInvariant()))})");
    }

    /// <summary>The flags of the first processor in /proc/cpuinfo; empty where there is none (not Linux).</summary>
    public static IReadOnlySet<string> ReadCpuFlags()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                if (line.StartsWith("flags", StringComparison.Ordinal) && line.IndexOf(':', StringComparison.Ordinal) is var colon and > 0)
                    return line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
            }
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
        }
        return new HashSet<string>();
    }

    private static string? CudaCapability(int index)
    {
        try
        {
            var start = new ProcessStartInfo("nvidia-smi", ["--query-gpu=compute_cap", "--format=csv,noheader", $"--id={index}"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var process = Process.Start(start);
            if (process is null)
                return null;
            var output = process.StandardOutput.ReadToEnd().Trim();
            return process.WaitForExit(10_000) && process.ExitCode == 0 && output.Length > 0 ? output : null;
        }
        catch (Exception exception) when (exception is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return null;
        }
    }
}
