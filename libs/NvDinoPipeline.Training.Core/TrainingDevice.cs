using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Training.Core;

/// <summary>Where training runs: CUDA whenever libtorch sees a GPU, else the CPU.</summary>
public static class TrainingDevice
{
    /// <summary>The device for <paramref name="requested"/> ("cpu", "cuda", "cuda:N"), or the best available one when null.</summary>
    /// <exception cref="ArgumentException">CUDA was asked for on a host without it, or the name is unknown.</exception>
    public static Device Resolve(string? requested)
    {
        if (string.IsNullOrWhiteSpace(requested))
            return torch.cuda.is_available() ? torch.CUDA : torch.CPU;
        var name = requested.Trim().ToLowerInvariant();
        if (name.StartsWith("cuda", StringComparison.Ordinal) && !torch.cuda.is_available())
            throw new ArgumentException($"Device '{requested}' was asked for but libtorch finds no CUDA device on this host.", nameof(requested));
        try
        {
            return torch.device(name);
        }
        catch (Exception exception) when (exception is ArgumentException or FormatException or InvalidOperationException)
        {
            throw new ArgumentException($"Unknown device '{requested}'; use cpu, cuda or cuda:N.", nameof(requested), exception);
        }
    }

    /// <summary>Sets libtorch's intra-op CPU threads; 0 leaves its default (one per core).</summary>
    public static void SetCpuThreads(int threads)
    {
        if (threads < 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, "must not be negative");
        if (threads > 0)
            torch.set_num_threads(threads);
    }
}
