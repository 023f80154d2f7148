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

    /// <summary>
    /// The devices of <paramref name="options"/>' data-parallel replicas, replica 0 first (it holds the master weights and
    /// the optimizer). One replica without <c>train.gpu_ids</c> runs on <see cref="Resolve"/>'s device. Otherwise each
    /// replica runs on a CUDA device of <c>train.gpu_ids</c> (0 … <c>train.num_gpus</c> − 1 when it is empty), or, with
    /// <see cref="SslTrainerOptions.ReplicasOnCpu"/>, every replica on the CPU.
    /// </summary>
    /// <exception cref="ArgumentException">The GPUs asked for are not on this host, or <see cref="SslTrainerOptions.Device"/> names one device for several replicas; the message names the key.</exception>
    public static IReadOnlyList<Device> ResolveReplicas(SslTrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var replicas = options.DataParallelReplicas;
        if (replicas == 1 && options.GpuIds.Count == 0)
            return [Resolve(options.Device)];
        if (options.ReplicasOnCpu)
            return Enumerable.Repeat(torch.CPU, replicas).ToArray();
        var requested = options.Device?.Trim().ToLowerInvariant();
        if (!string.IsNullOrEmpty(requested) && requested != "cuda")
            throw new ArgumentException(
                $"Device '{options.Device}' names one device, but train.num_gpus is {replicas}{GpuIdsText(options)}: the replicas run on the GPUs train.gpu_ids names.");
        if (!torch.cuda.is_available())
            throw new ArgumentException(
                $"train.num_gpus is {replicas}{GpuIdsText(options)}, but libtorch finds no CUDA device on this host; set train.num_gpus to 1 to train on the CPU.");
        var available = torch.cuda.device_count();
        var ids = options.GpuIds.Count > 0 ? options.GpuIds : Enumerable.Range(0, replicas).ToArray();
        if (ids.FirstOrDefault(id => id >= available, -1) is var missing and >= 0)
            throw new ArgumentException(options.GpuIds.Count > 0
                ? $"train.gpu_ids names GPU {missing}, but this host has {available} CUDA device(s) (0 to {available - 1})."
                : $"train.num_gpus is {replicas}, but this host has {available} CUDA device(s).");
        return ids.Select(id => torch.device(DeviceType.CUDA, id)).ToArray();
    }

    /// <summary>
    /// The GPUs a worker whose configured device is <paramref name="configuredDevice"/> can give one job's data-parallel
    /// replicas (<see cref="ResolveReplicas"/>): every CUDA device libtorch sees, unless the worker is pinned to one device
    /// (<c>cpu</c>, <c>cuda:N</c>), which leaves it none.
    /// </summary>
    public static int DataParallelGpus(string? configuredDevice)
    {
        var pinned = configuredDevice?.Trim().ToLowerInvariant() is { Length: > 0 } name && name != "cuda";
        return pinned || !torch.cuda.is_available() ? 0 : torch.cuda.device_count();
    }

    private static string GpuIdsText(SslTrainerOptions options) =>
        options.GpuIds.Count > 0 ? $" (train.gpu_ids [{string.Join(", ", options.GpuIds)}])" : "";

    /// <summary>Sets libtorch's intra-op CPU threads; 0 leaves its default (one per core).</summary>
    public static void SetCpuThreads(int threads)
    {
        if (threads < 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, "must not be negative");
        if (threads > 0)
            torch.set_num_threads(threads);
    }
}
