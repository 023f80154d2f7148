namespace NvDinoPipeline.Orchestrator;

public sealed class OrchestratorOptions
{
    public const string SectionName = "Orchestrator";

    /// <summary>
    /// Send again the commands and events a stopped process may have lost. Needed on the in-memory
    /// transport, whose queues die with the process; RabbitMQ keeps them, so it is off there by default.
    /// </summary>
    public bool? RecoverLostMessages { get; set; }

    /// <summary>How often lost work is looked for.</summary>
    public TimeSpan RecoveryInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Read start, cancel and resume requests that command-line clients left in the database.</summary>
    public bool? ReadControlRequests { get; set; }

    public TimeSpan ControlPollInterval { get; set; } = TimeSpan.FromMilliseconds(500);
}
