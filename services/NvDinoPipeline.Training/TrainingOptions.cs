using System.ComponentModel.DataAnnotations;

namespace NvDinoPipeline.Training;

/// <summary>Settings of the training worker, bound to the configuration section <c>Training</c>.</summary>
public sealed class TrainingOptions
{
    public const string SectionName = "Training";

    /// <summary>How often a running job publishes its latest figures (epoch, step, losses, lr, images/s).</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>"cpu", "cuda" or "cuda:N"; empty uses CUDA when libtorch finds a GPU, else the CPU.</summary>
    public string? Device { get; set; }
}
