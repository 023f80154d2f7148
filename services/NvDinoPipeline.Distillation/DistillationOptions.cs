using System.ComponentModel.DataAnnotations;

namespace NvDinoPipeline.Distillation;

/// <summary>Settings of the distillation worker, bound to the configuration section <c>Distillation</c>.</summary>
public sealed class DistillationOptions
{
    public const string SectionName = "Distillation";

    /// <summary>How often a running job publishes its latest figures (epoch, step, losses, lr, images/s).</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>"cpu", "cuda" or "cuda:N"; empty uses CUDA when libtorch finds a GPU, else the CPU.</summary>
    public string? Device { get; set; }
}
