namespace NvDinoPipeline.Hosting.Messaging;

/// <summary>
/// The queues that are not a stage's (a stage's queue is in <see cref="NvDinoPipeline.Contracts.StageCatalog"/>).
/// Commands are sent to named queues rather than published, so a command waits in its queue until a worker for it
/// exists.
/// </summary>
public static class Queues
{
    public const string Orchestrator = "pipeline-orchestrator";
    public const string EmbedImages = "embed-images";

    public static Uri Address(string queue) => new($"queue:{queue}");
}
