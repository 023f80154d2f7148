using System.ComponentModel.DataAnnotations;

namespace NvDinoPipeline.Hosting.Health;

/// <summary>
/// How long a stopping process may take, bound to the configuration section <c>Shutdown</c>. A worker
/// stopping mid-job cancels the job, lets it save what it can, and hands it back within this time;
/// a container orchestrator's grace period (Kubernetes' <c>terminationGracePeriodSeconds</c>) must be longer.
/// </summary>
public sealed class ShutdownOptions
{
    public const string SectionName = "Shutdown";

    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);
}
