using System.ComponentModel.DataAnnotations;

namespace NvDinoPipeline.Orchestrator;

public sealed class OrchestratorOptions
{
    public const string SectionName = "Orchestrator";

    /// <summary>How often jobs whose worker stopped renewing its claim are looked for and rearmed.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan RecoveryInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// How long a job a worker ended (Done or Error) may stay unheard by the orchestrator before the recovery pass
    /// applies its end from the state database: its completion went to an error queue (the database was away longer
    /// than the orchestrator's retries) or never arrived.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan UnhandledEndAfter { get; set; } = TimeSpan.FromMinutes(1);
}
