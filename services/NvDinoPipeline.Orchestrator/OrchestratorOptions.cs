using System.ComponentModel.DataAnnotations;

namespace NvDinoPipeline.Orchestrator;

public sealed class OrchestratorOptions
{
    public const string SectionName = "Orchestrator";

    /// <summary>How often jobs whose worker stopped renewing its claim are looked for and rearmed.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan RecoveryInterval { get; set; } = TimeSpan.FromSeconds(15);
}
