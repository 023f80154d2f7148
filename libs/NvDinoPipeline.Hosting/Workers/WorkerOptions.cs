using System.ComponentModel.DataAnnotations;

namespace NvDinoPipeline.Hosting.Workers;

public sealed class WorkerOptions
{
    public const string SectionName = "Workers";

    /// <summary>Local folder for a job's temporary files (downloads, extraction, checkpoints in flight).</summary>
    [Required(AllowEmptyStrings = false)]
    public string ScratchDirectory { get; set; } = "";

    /// <summary>Least time between two progress reports of one job.</summary>
    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How often a live worker records itself, so status can tell a stage without workers.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Jobs run at once per stage and process, by stage name (e.g. <c>Training: 1</c>).</summary>
    public Dictionary<string, int> ConcurrentJobs { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}
